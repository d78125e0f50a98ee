// Batch norm on CUDA. The per-channel reductions (training statistics; backward Σdy, Σdy·xhat) are split:
// each channel's M = N·S elements are cut into `splits` contiguous ranges, one block per (channel, range)
// writes a double partial to scratch, and a small finalize kernel (one warp per channel) sums each
// channel's partials in a fixed order and finishes. The split is chosen on the host so that C·splits
// blocks fill about one wave of resident blocks on the GPU even when C is small (C = 64 of 262,144
// elements each in a spiking VGG's first layers); when it comes out as 1 (C alone fills the GPU, or the
// channels are small) one fused launch per reduction does everything. Every sum runs in a fixed order
// (per-thread sequential, fixed warp-shuffle tree, fixed cross-warp step, fixed order over partials), so
// results are deterministic run to run on a given GPU (the split depends on its SM count and on the
// kernels' occupancy). Accumulation is in double, as the CPU reference. The elementwise kernels (apply,
// dx) run over all N·C·S elements. Synchronised batch norm runs the same partial kernels, but the
// finalize kernels only write the channel sums, which the caller all-reduces before the small finish
// kernels (the one-launch path for splits == 1 is not used there: the all-reduce sits between its passes).
// Nothing here allocates: the partials live in the caller's scratch (batch_norm_cuda_scratch_size).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "engine/check.h"
#include "kernels/batch_norm.h"
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/vector_io.cuh"

namespace spikegrad {

namespace {

// Reduction blocks: 256 threads (a multiple of the warp size, as block_reduce_each needs), each keeping
// kUnroll independent loads in flight per step.
constexpr int kReduceBlock = 256;
constexpr int kUnroll = 4;
// A block gets at least this many units (floats or float4s) of its channel: below, splitting further
// only adds partials.
constexpr int64_t kMinUnitsPerBlock = 2 * kReduceBlock * kUnroll;
// Finalize kernels: one warp per channel.
constexpr int kFinalizeBlock = 256;
constexpr int kChannelsPerFinalizeBlock = kFinalizeBlock / 32;

int sm_count() {
  static const int count = [] {
    int device = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return std::max(sms, 1);
  }();
  return count;
}

template <class Kernel>
int resident_blocks_per_sm(Kernel kernel) {
  int blocks = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kReduceBlock, 0));
  return std::max(blocks, 1);
}

// Blocks per channel for C channels of `units` units each, given how many reduction blocks fit on the GPU
// at once (`wave`): as many as keep C·splits within one wave (rounded down: a second, nearly empty wave
// would cost more than the few idle slots), at least 1, and no block with fewer than kMinUnitsPerBlock.
int choose_splits(int64_t C, int64_t units, int64_t wave) {
  int64_t splits = wave / C;
  splits = std::min(splits, ceil_div(units, kMinUnitsPerBlock));
  return int(std::max<int64_t>(splits, 1));
}

// Unit u (in [0, N·S')) of channel c in the (N, C, S') layout, S' = S / width of a unit, stepped by a fixed
// number of units without divisions (two at construction).
struct ChannelCursor {
  int64_t s, off;            // u % S', flat offset (in units) of unit u
  int64_t S, wrap;           // S'; (C − 1)·S': from the end of one run of channel c to the start of its next
  int64_t step_s, step_off;  // for a step of `step` units: step % S' and (step / S')·C·S' + step % S'
  __device__ ChannelCursor(int64_t u, int64_t step, int64_t c, int64_t C, int64_t S_) : S(S_), wrap((C - 1) * S_) {
    const int64_t n = u / S;
    s = u - n * S;
    off = (n * C + c) * S + s;
    const int64_t step_n = step / S;
    step_s = step - step_n * S;
    step_off = step_n * C * S + step_s;
  }
  // u += step: s + step_s < 2·S', so at most one carry into the next run.
  __device__ __forceinline__ void advance() {
    s += step_s;
    off += step_off;
    if (s >= S) {
      s -= S;
      off += wrap;
    }
  }
};

// Sums of a and b over the block (kernels/block_reduce.cuh: fixed order, valid in every thread).
__device__ __forceinline__ void block_sum2(double& a, double& b) {
  double sums[2] = {a, b};
  block_reduce_each<kReduceBlock>(sums, SumOp{});
  a = sums[0];
  b = sums[1];
}

// Block b = c·splits + k reduces the k-th of `splits` contiguous ranges of channel c's `units` units.
__device__ __forceinline__ void block_range(int64_t units, int splits, int64_t& c, int64_t& begin, int64_t& end) {
  c = int64_t(blockIdx.x) / splits;
  const int64_t k = int64_t(blockIdx.x) - c * splits;
  const int64_t chunk = (units + splits - 1) / splits;
  begin = min(units, k * chunk);
  end = min(units, begin + chunk);
}

// Block b = c·splits + k walks the k-th of `splits` contiguous ranges of channel c's units and returns this
// thread's share: Σ x (kSquares false) or Σ (x − m)² (kSquares true; m is the mean in double, as the CPU
// reference). V is float, or float4 when S % 4 == 0 and x is 16-byte aligned (a float4 never straddles two
// runs of a channel then). Per thread the order is fixed: units t, t + 256, ... of the range.
template <class V, bool kSquares>
__device__ __forceinline__ double stats_thread_sum(const V* __restrict__ x, int64_t begin, int64_t end, int64_t c,
                                                   int64_t C, int64_t S, double m) {
  double acc = 0.0;
  int64_t u = begin + threadIdx.x;
  ChannelCursor cur(u, kReduceBlock, c, C, S);
  for (; u < end; u += int64_t(kUnroll) * kReduceBlock) {
    V v[kUnroll];
    bool ok[kUnroll];
#pragma unroll
    for (int i = 0; i < kUnroll; ++i) {  // all loads first: kUnroll in flight
      ok[i] = u + int64_t(i) * kReduceBlock < end;
      if (ok[i]) v[i] = x[cur.off];
      cur.advance();
    }
#pragma unroll
    for (int i = 0; i < kUnroll; ++i)
      if (ok[i]) for_each_float(v[i], [&](float f) {
          if (kSquares) {
            const double d = double(f) - m;
            acc += d * d;
          } else {
            acc += double(f);
          }
        });
  }
  return acc;
}

__device__ __forceinline__ double finish_mean(double sum, int64_t c, int64_t M, double* mean, float* save_mean) {
  const double m = bn_mean(sum, M);
  if (mean) mean[c] = m;
  save_mean[c] = float(m);
  return m;
}

// Biased variance from the squared deviations; invstd and the running buffers as the CPU reference.
__device__ __forceinline__ void finish_var(double sum, int64_t c, int64_t M, float momentum, float eps,
                                           const float* save_mean, float* running_mean, float* running_var,
                                           float* save_invstd) {
  const double var = bn_variance(sum, M);
  save_invstd[c] = float(1.0 / sqrt(var + double(eps)));
  bn_update_running<float>(running_mean[c], running_var[c], save_mean[c], float(var), M, momentum);
}

// One pass of the split statistics: partial[b] = block b's sum.
template <class V, bool kSquares>
__global__ void __launch_bounds__(kReduceBlock)
    bn_stats_partial_kernel(const V* __restrict__ x, int64_t units, int64_t C, int64_t S, int splits,
                            const double* __restrict__ mean, double* __restrict__ partial) {
  int64_t c, begin, end;
  block_range(units, splits, c, begin, end);
  const double m = kSquares ? mean[c] : 0.0;
  const double acc = block_sum<kReduceBlock>(stats_thread_sum<V, kSquares>(x, begin, end, c, C, S, m));
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// splits == 1 (C alone fills the GPU, or channels too small to split): block c does both passes over its
// channel and finishes, in one launch instead of four. Same sums in the same order as the split path with
// one split.
template <class V>
__global__ void __launch_bounds__(kReduceBlock)
    bn_stats_fused_kernel(const V* __restrict__ x, int64_t units, int64_t C, int64_t S, int64_t M, float momentum,
                          float eps, float* __restrict__ running_mean, float* __restrict__ running_var,
                          float* __restrict__ save_mean, float* __restrict__ save_invstd) {
  const int64_t c = blockIdx.x;
  const double sum = block_sum<kReduceBlock>(stats_thread_sum<V, false>(x, 0, units, c, C, S, 0.0));
  const double mean = bn_mean(sum, M);  // every thread has the sum
  if (threadIdx.x == 0) finish_mean(sum, c, M, nullptr, save_mean);
  const double acc = block_sum<kReduceBlock>(stats_thread_sum<V, true>(x, 0, units, c, C, S, mean));
  if (threadIdx.x == 0) finish_var(acc, c, M, momentum, eps, save_mean, running_mean, running_var, save_invstd);
}

// Warp w of the grid finalizes channel w: the sum of its `splits` partials (lane l takes k = l, l + 32, ...
// in order, then a fixed shuffle tree). Returns false (whole warp) past the last channel.
__device__ __forceinline__ bool finalize_channel(const double* __restrict__ partial, int splits, int64_t C,
                                                 int64_t& c, double& sum) {
  c = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (c >= C) return false;
  const int lane = threadIdx.x & 31;
  double s = 0.0;
  for (int k = lane; k < splits; k += 32) s += partial[c * splits + k];
  sum = warp_sum(s);
  return true;
}

__global__ void bn_finalize_mean_kernel(const double* __restrict__ partial, int splits, int64_t C, int64_t M,
                                        double* __restrict__ mean, float* __restrict__ save_mean) {
  int64_t c;
  double sum;
  if (!finalize_channel(partial, splits, C, c, sum) || (threadIdx.x & 31)) return;
  finish_mean(sum, c, M, mean, save_mean);
}

__global__ void bn_finalize_var_kernel(const double* __restrict__ partial, int splits, int64_t C, int64_t M,
                                       float momentum, float eps, const float* __restrict__ save_mean,
                                       float* __restrict__ running_mean, float* __restrict__ running_var,
                                       float* __restrict__ save_invstd) {
  int64_t c;
  double sum;
  if (!finalize_channel(partial, splits, C, c, sum) || (threadIdx.x & 31)) return;
  finish_var(sum, c, M, momentum, eps, save_mean, running_mean, running_var, save_invstd);
}

__global__ void bn_eval_stats_kernel(const float* running_mean, const float* running_var, int64_t C, float eps,
                                     float* save_mean, float* save_invstd) {
  SG_GRID_STRIDE(c, C) {
    save_mean[c] = running_mean[c];
    save_invstd[c] = 1.f / sqrtf(running_var[c] + eps);
  }
}

__global__ void bn_apply_kernel(const float* x, const float* weight, const float* bias, const float* mean,
                                const float* invstd, int64_t n, int64_t C, int64_t S, float* y) {
  SG_GRID_STRIDE(i, n) {
    const int64_t c = bn_channel_of(i, C, S);
    y[i] = bn_normalize(x[i], mean[c], invstd[c], weight[c], bias[c]);
  }
}

// Backward: this thread's share of Σ dy and Σ dy·xhat over units [begin, end) of channel c, with xhat
// formed in float and the product and sums in double, as the CPU reference.
template <class V>
__device__ __forceinline__ void backward_thread_sums(const V* __restrict__ x, const V* __restrict__ gy, float mean,
                                                     float invstd, int64_t begin, int64_t end, int64_t c, int64_t C,
                                                     int64_t S, double& sum_dy, double& sum_dy_xhat) {
  sum_dy = 0.0;
  sum_dy_xhat = 0.0;
  int64_t u = begin + threadIdx.x;
  ChannelCursor cur(u, kReduceBlock, c, C, S);
  for (; u < end; u += int64_t(kUnroll) * kReduceBlock) {
    V xv[kUnroll], dv[kUnroll];
    bool ok[kUnroll];
#pragma unroll
    for (int i = 0; i < kUnroll; ++i) {
      ok[i] = u + int64_t(i) * kReduceBlock < end;
      if (ok[i]) {
        xv[i] = x[cur.off];
        dv[i] = gy[cur.off];
      }
      cur.advance();
    }
#pragma unroll
    for (int i = 0; i < kUnroll; ++i)
      if (ok[i]) for_each_float_pair(xv[i], dv[i], [&](float xf, float dyf) {
          const float xhat = (xf - mean) * invstd;
          const double dy = double(dyf);
          sum_dy += dy;
          sum_dy_xhat += dy * double(xhat);  // exact product (24 + 24 bits), so contraction changes nothing
        });
  }
}

// Channel sums (Σdy, Σdy·xhat) into channel_sums[c], channel_sums[C + c] (float, for the dx kernel) or
// totals[c], totals[C + c] (double, to be all-reduced first); the parameter gradients accumulate when
// wanted.
__device__ __forceinline__ void finish_backward(double sum_dy, double sum_dy_xhat, int64_t c, int64_t C,
                                                float* channel_sums, double* totals, float* gweight, float* gbias) {
  if (channel_sums) {
    channel_sums[c] = float(sum_dy);
    channel_sums[C + c] = float(sum_dy_xhat);
  }
  if (totals) {
    totals[c] = sum_dy;
    totals[C + c] = sum_dy_xhat;
  }
  if (gweight) gweight[c] += float(sum_dy_xhat);
  if (gbias) gbias[c] += float(sum_dy);
}

// Split backward: partial[b] = block b's Σ dy, partial[C·splits + b] its Σ dy·xhat. With splits == 1
// (`fused`), block c finishes channel c itself and `partial` is unused.
template <class V>
__global__ void __launch_bounds__(kReduceBlock)
    bn_backward_partial_kernel(const V* __restrict__ x, const V* __restrict__ gy, const float* __restrict__ save_mean,
                               const float* __restrict__ save_invstd, int64_t units, int64_t C, int64_t S, int splits,
                               double* __restrict__ partial, bool fused, float* __restrict__ channel_sums,
                               double* __restrict__ totals, float* __restrict__ gweight, float* __restrict__ gbias) {
  int64_t c, begin, end;
  block_range(units, splits, c, begin, end);
  double sum_dy, sum_dy_xhat;
  backward_thread_sums(x, gy, save_mean[c], save_invstd[c], begin, end, c, C, S, sum_dy, sum_dy_xhat);
  block_sum2(sum_dy, sum_dy_xhat);
  if (threadIdx.x != 0) return;
  if (fused) {
    finish_backward(sum_dy, sum_dy_xhat, c, C, channel_sums, totals, gweight, gbias);
  } else {
    partial[blockIdx.x] = sum_dy;
    partial[C * splits + blockIdx.x] = sum_dy_xhat;
  }
}

__global__ void bn_finalize_backward_kernel(const double* __restrict__ partial, int splits, int64_t C,
                                            float* __restrict__ channel_sums, double* __restrict__ totals,
                                            float* __restrict__ gweight, float* __restrict__ gbias) {
  int64_t c;
  double sum_dy = 0.0, sum_dy_xhat = 0.0;  // both set: the two finalize calls test the same channel
  if (!finalize_channel(partial, splits, C, c, sum_dy)) return;
  finalize_channel(partial + C * splits, splits, C, c, sum_dy_xhat);
  if (threadIdx.x & 31) return;
  finish_backward(sum_dy, sum_dy_xhat, c, C, channel_sums, totals, gweight, gbias);
}

// channel_sums (float: this GPU's own sums; double: all replicas' sums, synchronised batch norm) is read
// only in training mode (eval dx needs no reduction) and may be null otherwise. M: elements per channel.
template <class Sum>
__global__ void bn_input_grad_kernel(const float* x, const float* weight, const float* save_mean,
                                     const float* save_invstd, const float* gy, const Sum* channel_sums, int64_t n,
                                     int64_t M, int64_t C, int64_t S, bool training, float* gx) {
  SG_GRID_STRIDE(i, n) {
    const int64_t c = bn_channel_of(i, C, S);
    const float sum_dy = training ? float(channel_sums[c]) : 0.f;
    const float sum_dy_xhat = training ? float(channel_sums[C + c]) : 0.f;
    gx[i] += bn_input_grad<float>(training, x[i], gy[i], save_mean[c], save_invstd[c], weight[c], sum_dy, sum_dy_xhat,
                                  M);
  }
}

// Synchronised statistics: the channel sums of `splits` partials each (one warp per channel).
__global__ void bn_finalize_sum_kernel(const double* __restrict__ partial, int splits, int64_t C,
                                       double* __restrict__ sums) {
  int64_t c;
  double sum;
  if (!finalize_channel(partial, splits, C, c, sum) || (threadIdx.x & 31)) return;
  sums[c] = sum;
}

// Synchronised statistics, from all replicas' sums: the means (in place) and save_mean ...
__global__ void bn_finish_mean_kernel(double* sums_to_mean, int64_t C, int64_t M, float* save_mean) {
  SG_GRID_STRIDE(c, C) finish_mean(sums_to_mean[c], c, M, sums_to_mean, save_mean);
}

// ... then invstd and the running buffers' step.
__global__ void bn_finish_var_kernel(const double* squares, int64_t C, int64_t M, float momentum, float eps,
                                     const float* save_mean, float* running_mean, float* running_var,
                                     float* save_invstd) {
  SG_GRID_STRIDE(c, C) finish_var(squares[c], c, M, momentum, eps, save_mean, running_mean, running_var, save_invstd);
}

// The float4 paths read whole channel runs: S % 4 == 0 and every pointer 16-byte aligned.
bool use_float4(int64_t S, const void* a, const void* b = nullptr) {
  return S % 4 == 0 && is_aligned16(a) && (!b || is_aligned16(b));
}

unsigned finalize_grid(int64_t C) { return unsigned(ceil_div(C, kChannelsPerFinalizeBlock)); }

// Units of V per channel (S and units counted in V).
template <class V> int64_t units_of(int64_t N, int64_t S) { return N * (S / int64_t(sizeof(V) / sizeof(float))); }

// Blocks per channel of the statistics and backward reductions for unit type V; the occupancy of both
// statistics passes is taken, as they share one split.
template <class V> int stats_splits(int64_t N, int64_t C, int64_t S) {
  static const int per_sm = std::min(resident_blocks_per_sm(bn_stats_partial_kernel<V, false>),
                                     resident_blocks_per_sm(bn_stats_partial_kernel<V, true>));
  return choose_splits(C, units_of<V>(N, S), int64_t(sm_count()) * per_sm);
}
template <class V> int backward_splits(int64_t N, int64_t C, int64_t S) {
  static const int per_sm = resident_blocks_per_sm(bn_backward_partial_kernel<V>);
  return choose_splits(C, units_of<V>(N, S), int64_t(sm_count()) * per_sm);
}

// Scratch doubles each reduction needs at `splits`: the forward's C·splits partials (reused by both passes:
// the finalize of the first reads them before the second writes, in stream order) plus the C means in
// double; the backward's Σdy and Σdy·xhat partials. splits == 1 needs none (one fused launch, or the
// partial kernel writing the channel sums directly).
int64_t stats_scratch(int64_t C, int splits) { return splits == 1 ? 0 : C * splits + C; }
int64_t backward_scratch(int64_t C, int splits) { return splits == 1 ? 0 : 2 * C * splits; }

int64_t checked_blocks(int64_t C, int splits, const char* what) {
  const int64_t blocks = C * splits;
  SG_CHECK(blocks <= INT_MAX, what << " (cuda): " << C << " channels exceed the grid limit");
  return blocks;
}
void check_scratch(int64_t needed, int64_t given, const char* what) {
  SG_CHECK(given >= needed, what << " (cuda): scratch holds " << given << " doubles, needs " << needed
                                 << " (batch_norm_cuda_scratch_size)");
}

// Training statistics for unit type V: four launches (partial sums, means, partial squared deviations,
// variances), or one when the split is 1.
template <class V>
void train_stats(const float* x, int64_t N, int64_t C, int64_t S, float momentum, float eps, float* running_mean,
                 float* running_var, float* save_mean, float* save_invstd, double* scratch, int64_t scratch_size) {
  const int64_t Su = S / int64_t(sizeof(V) / sizeof(float)), units = N * Su, M = N * S;
  const int splits = stats_splits<V>(N, C, S);
  const int64_t blocks = checked_blocks(C, splits, "batch_norm");
  const V* xv = reinterpret_cast<const V*>(x);
  if (splits == 1) {
    bn_stats_fused_kernel<V><<<unsigned(C), kReduceBlock>>>(xv, units, C, Su, M, momentum, eps, running_mean,
                                                            running_var, save_mean, save_invstd);
    SG_LAUNCH_CHECK();
    return;
  }
  check_scratch(stats_scratch(C, splits), scratch_size, "batch_norm");
  double* partial = scratch;
  double* mean = partial + blocks;
  bn_stats_partial_kernel<V, false><<<unsigned(blocks), kReduceBlock>>>(xv, units, C, Su, splits, nullptr, partial);
  SG_LAUNCH_CHECK();
  bn_finalize_mean_kernel<<<finalize_grid(C), kFinalizeBlock>>>(partial, splits, C, M, mean, save_mean);
  SG_LAUNCH_CHECK();
  bn_stats_partial_kernel<V, true><<<unsigned(blocks), kReduceBlock>>>(xv, units, C, Su, splits, mean, partial);
  SG_LAUNCH_CHECK();
  bn_finalize_var_kernel<<<finalize_grid(C), kFinalizeBlock>>>(partial, splits, C, M, momentum, eps, save_mean,
                                                               running_mean, running_var, save_invstd);
  SG_LAUNCH_CHECK();
}

// One synchronised statistics pass for unit type V: per-channel Σx (kSquares false) or Σ(x − mean)² into
// out (C doubles). With splits == 1 block c's partial is channel c's sum and goes straight to out.
template <class V, bool kSquares>
void channel_pass(const float* x, int64_t N, int64_t C, int64_t S, const double* mean, double* out, double* scratch,
                  int64_t scratch_size) {
  const int64_t Su = S / int64_t(sizeof(V) / sizeof(float)), units = N * Su;
  const int splits = stats_splits<V>(N, C, S);
  const int64_t blocks = checked_blocks(C, splits, "batch_norm");
  if (splits > 1) check_scratch(blocks, scratch_size, "batch_norm");
  double* partial = splits == 1 ? out : scratch;
  bn_stats_partial_kernel<V, kSquares><<<unsigned(blocks), kReduceBlock>>>(reinterpret_cast<const V*>(x), units, C,
                                                                           Su, splits, mean, partial);
  SG_LAUNCH_CHECK();
  if (splits == 1) return;
  bn_finalize_sum_kernel<<<finalize_grid(C), kFinalizeBlock>>>(partial, splits, C, out);
  SG_LAUNCH_CHECK();
}

// Backward channel sums for unit type V: partials + finalize, or one launch when the split is 1. The sums
// go to channel_sums (float, this GPU's) or totals (double, to be all-reduced); gweight, gbias accumulate.
template <class V>
void backward_sums(const float* x, const float* save_mean, const float* save_invstd, const float* gy, int64_t N,
                   int64_t C, int64_t S, float* channel_sums, double* totals, float* gweight, float* gbias,
                   double* scratch, int64_t scratch_size) {
  const int64_t Su = S / int64_t(sizeof(V) / sizeof(float)), units = N * Su;
  const int splits = backward_splits<V>(N, C, S);
  const int64_t blocks = checked_blocks(C, splits, "batch_norm backward");
  const bool fused = splits == 1;
  if (!fused) check_scratch(backward_scratch(C, splits), scratch_size, "batch_norm backward");
  double* partial = fused ? nullptr : scratch;  // Σdy partials, then Σdy·xhat partials
  bn_backward_partial_kernel<V><<<unsigned(blocks), kReduceBlock>>>(
      reinterpret_cast<const V*>(x), reinterpret_cast<const V*>(gy), save_mean, save_invstd, units, C, Su, splits,
      partial, fused, channel_sums, totals, gweight, gbias);
  SG_LAUNCH_CHECK();
  if (fused) return;
  bn_finalize_backward_kernel<<<finalize_grid(C), kFinalizeBlock>>>(partial, splits, C, channel_sums, totals, gweight,
                                                                    gbias);
  SG_LAUNCH_CHECK();
}

}  // namespace

int64_t batch_norm_cuda_scratch_size(int64_t N, int64_t C, int64_t S) {
  if (N * C * S == 0) return 0;
  int64_t size = std::max(stats_scratch(C, stats_splits<float>(N, C, S)),
                          backward_scratch(C, backward_splits<float>(N, C, S)));
  if (S % 4 == 0)  // the float4 paths split their own way (fewer, wider units)
    size = std::max({size, stats_scratch(C, stats_splits<float4>(N, C, S)),
                     backward_scratch(C, backward_splits<float4>(N, C, S))});
  return size;
}

void batch_norm_forward_cuda(const float* x, const float* weight, const float* bias, float* running_mean,
                             float* running_var, int64_t N, int64_t C, int64_t S, bool training, float momentum,
                             float eps, float* y, float* save_mean, float* save_invstd, double* scratch,
                             int64_t scratch_size) {
  if (C == 0) return;
  if (training) {
    if (use_float4(S, x))
      train_stats<float4>(x, N, C, S, momentum, eps, running_mean, running_var, save_mean, save_invstd, scratch,
                          scratch_size);
    else
      train_stats<float>(x, N, C, S, momentum, eps, running_mean, running_var, save_mean, save_invstd, scratch,
                         scratch_size);
  } else {
    SG_LAUNCH_1D(bn_eval_stats_kernel, C, running_mean, running_var, C, eps, save_mean, save_invstd);
  }
  if (y) batch_norm_apply_cuda(x, weight, bias, save_mean, save_invstd, N, C, S, y);  // null: statistics only
}

void batch_norm_backward_cuda(const float* x, const float* weight, const float* save_mean, const float* save_invstd,
                              const float* gy, int64_t N, int64_t C, int64_t S, bool training, float* channel_sums,
                              float* gx, float* gweight, float* gbias, double* scratch, int64_t scratch_size) {
  if (C == 0) return;
  if (training || gweight || gbias) {
    if (use_float4(S, x, gy))
      backward_sums<float4>(x, save_mean, save_invstd, gy, N, C, S, channel_sums, nullptr, gweight, gbias, scratch,
                            scratch_size);
    else
      backward_sums<float>(x, save_mean, save_invstd, gy, N, C, S, channel_sums, nullptr, gweight, gbias, scratch,
                           scratch_size);
  }
  if (gx) {
    const int64_t n = N * C * S;
    SG_LAUNCH_1D(bn_input_grad_kernel<float>, n, x, weight, save_mean, save_invstd, gy, channel_sums, n, N * S, C, S,
                 training, gx);
  }
}

void batch_norm_channel_sums_cuda(const float* x, int64_t N, int64_t C, int64_t S, double* sums, double* scratch,
                                  int64_t scratch_size) {
  if (C == 0) return;
  if (use_float4(S, x))
    channel_pass<float4, false>(x, N, C, S, nullptr, sums, scratch, scratch_size);
  else
    channel_pass<float, false>(x, N, C, S, nullptr, sums, scratch, scratch_size);
}

void batch_norm_finish_mean_cuda(double* sums_to_mean, int64_t C, int64_t M, float* save_mean) {
  SG_LAUNCH_1D(bn_finish_mean_kernel, C, sums_to_mean, C, M, save_mean);
}

void batch_norm_channel_squares_cuda(const float* x, int64_t N, int64_t C, int64_t S, const double* mean,
                                     double* squares, double* scratch, int64_t scratch_size) {
  if (C == 0) return;
  if (use_float4(S, x))
    channel_pass<float4, true>(x, N, C, S, mean, squares, scratch, scratch_size);
  else
    channel_pass<float, true>(x, N, C, S, mean, squares, scratch, scratch_size);
}

void batch_norm_finish_stats_cuda(const double* squares, int64_t C, int64_t M, float momentum, float eps,
                                  const float* save_mean, float* running_mean, float* running_var,
                                  float* save_invstd) {
  SG_LAUNCH_1D(bn_finish_var_kernel, C, squares, C, M, momentum, eps, save_mean, running_mean, running_var,
               save_invstd);
}

void batch_norm_apply_cuda(const float* x, const float* weight, const float* bias, const float* save_mean,
                           const float* save_invstd, int64_t N, int64_t C, int64_t S, float* y) {
  const int64_t n = N * C * S;
  SG_LAUNCH_1D(bn_apply_kernel, n, x, weight, bias, save_mean, save_invstd, n, C, S, y);
}

void batch_norm_backward_sums_cuda(const float* x, const float* save_mean, const float* save_invstd, const float* gy,
                                   int64_t N, int64_t C, int64_t S, double* sums, float* gweight, float* gbias,
                                   double* scratch, int64_t scratch_size) {
  if (C == 0) return;
  if (use_float4(S, x, gy))
    backward_sums<float4>(x, save_mean, save_invstd, gy, N, C, S, nullptr, sums, gweight, gbias, scratch,
                          scratch_size);
  else
    backward_sums<float>(x, save_mean, save_invstd, gy, N, C, S, nullptr, sums, gweight, gbias, scratch, scratch_size);
}

void batch_norm_input_grad_cuda(const float* x, const float* weight, const float* save_mean, const float* save_invstd,
                                const float* gy, const double* sums, int64_t N, int64_t C, int64_t S, int64_t M,
                                float* gx) {
  const int64_t n = N * C * S;
  SG_LAUNCH_1D(bn_input_grad_kernel<double>, n, x, weight, save_mean, save_invstd, gy, sums, n, M, C, S, true, gx);
}

}  // namespace spikegrad
