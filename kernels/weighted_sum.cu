#include <algorithm>

#include "engine/check.h"
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/weighted_sum.h"

namespace spikegrad {

namespace {

// Blocks of the weight-gradient pass: one per kBlock elements up to this cap (then grid-stride), so the split
// — and with it the order of the sums — depends on n only, never on the device.
constexpr int64_t kMaxSplits = 1024;

int64_t backward_splits(int64_t n) { return std::max<int64_t>(1, std::min<int64_t>(ceil_div(n, kBlock), kMaxSplits)); }

// Up to kWeightedSumInputsPerLaunch inputs, passed by value so a launch needs no pointer array in device memory.
struct InputChunk {
  const float* x[kWeightedSumInputsPerLaunch];
  float* gx[kWeightedSumInputsPerLaunch];  // backward only; null entries are not wanted
  int count;
};

// y[j] (or, for a later chunk, y[j] plus) Σ_i w[i]·x_i[j] over the chunk, in the CPU reference's order.
__global__ void weighted_sum_forward_kernel(InputChunk in, const float* __restrict__ w, bool first_chunk,
                                            float* __restrict__ y, int64_t n) {
  SG_GRID_STRIDE(j, n) {
    float acc = first_chunk ? mul_rn(w[0], in.x[0][j]) : y[j] + mul_rn(w[0], in.x[0][j]);
    // Unrolled with a bound test, so in.x[i] is a constant index (no copy of the struct to local memory).
#pragma unroll
    for (int i = 1; i < kWeightedSumInputsPerLaunch; ++i)
      if (i < in.count) acc += mul_rn(w[i], in.x[i][j]);
    y[j] = acc;
  }
}

// One pass over gy: gx_i += w[i]·gy for the wanted gx_i and, when `partial` is set, block b's Σ gy·x_i to
// partial[i·gridDim.x + b]. Launched with exactly kBlock threads per block (block_reduce_each).
__global__ void __launch_bounds__(kBlock)
    weighted_sum_backward_kernel(InputChunk in, const float* __restrict__ w, const float* __restrict__ gy,
                                 float* __restrict__ partial, int64_t n) {
  float dot[kWeightedSumInputsPerLaunch] = {};
  SG_GRID_STRIDE(j, n) {
    const float g = gy[j];
#pragma unroll
    for (int i = 0; i < kWeightedSumInputsPerLaunch; ++i) {
      if (i >= in.count) break;
      if (in.gx[i]) in.gx[i][j] += mul_rn(w[i], g);
      if (partial) dot[i] += g * in.x[i][j];
    }
  }
  if (!partial) return;  // the same for every thread of the grid, so no barrier is skipped by some only
  block_reduce_each<kBlock>(dot, SumOp{});
  if (threadIdx.x == 0)
    for (int i = 0; i < in.count; ++i) partial[int64_t(i) * gridDim.x + blockIdx.x] = dot[i];
}

// Block i: gw[i] += the sum of weight i's `splits` partials (thread t takes t, t + kBlock, ...; then the tree).
__global__ void __launch_bounds__(kBlock)
    weighted_sum_finish_kernel(const float* __restrict__ partial, int64_t splits, float* __restrict__ gw) {
  float s = 0.f;
  for (int64_t k = threadIdx.x; k < splits; k += kBlock) s += partial[blockIdx.x * splits + k];
  s = block_sum<kBlock>(s);
  if (threadIdx.x == 0) gw[blockIdx.x] += s;
}

InputChunk chunk_at(const float* const* xs, float* const* gxs, int64_t base, int64_t count) {
  InputChunk c{};
  c.count = int(std::min<int64_t>(count - base, kWeightedSumInputsPerLaunch));
  for (int i = 0; i < c.count; ++i) {
    c.x[i] = xs ? xs[base + i] : nullptr;
    c.gx[i] = gxs ? gxs[base + i] : nullptr;
  }
  return c;
}

}  // namespace

void weighted_sum_forward_cuda(const float* const* xs, int64_t count, const float* w, float* y, int64_t n) {
  for (int64_t base = 0; base < count; base += kWeightedSumInputsPerLaunch)
    SG_LAUNCH_1D(weighted_sum_forward_kernel, n, chunk_at(xs, nullptr, base, count), w + base, base == 0, y, n);
}

size_t weighted_sum_backward_cuda_scratch_bytes(int64_t count, int64_t n) {
  return sizeof(float) * size_t(count) * size_t(backward_splits(n));
}

void weighted_sum_backward_cuda(const float* const* xs, int64_t count, const float* w, const float* gy,
                                float* const* gxs, float* gw, int64_t n, void* scratch, size_t scratch_bytes) {
  if (n == 0) return;
  const int64_t splits = backward_splits(n);
  float* partial = nullptr;
  if (gw) {
    SG_CHECK(scratch && scratch_bytes >= weighted_sum_backward_cuda_scratch_bytes(count, n),
             "weighted_sum backward: scratch of " << weighted_sum_backward_cuda_scratch_bytes(count, n)
                                                  << " bytes expected, got " << scratch_bytes);
    partial = static_cast<float*>(scratch);
  }
  for (int64_t base = 0; base < count; base += kWeightedSumInputsPerLaunch) {
    const InputChunk chunk = chunk_at(gw ? xs : nullptr, gxs, base, count);
    bool any_gx = false;
    for (int i = 0; i < chunk.count; ++i) any_gx = any_gx || chunk.gx[i];
    if (!any_gx && !gw) continue;
    weighted_sum_backward_kernel<<<unsigned(splits), kBlock>>>(chunk, w + base, gy,
                                                                 partial ? partial + base * splits : nullptr, n);
    SG_LAUNCH_CHECK();
  }
  if (gw) {
    weighted_sum_finish_kernel<<<unsigned(count), kBlock>>>(partial, splits, gw);
    SG_LAUNCH_CHECK();
  }
}

}  // namespace spikegrad
