// CUDA firing rates: one block per row (t,b) for the forward reductions, a 2-D grid for the
// broadcasting backward. Napkin math for the TMI X tap (VGGSNN layer 1, B=64, T=4): rows=256,
// F=64*32*32=65536 -> 64 MiB read forward and 64 MiB read+write backward; memory bound, so the loads
// are float4 when the rows are 16-byte aligned. Sums are kept in double, as the CPU reference does, so both
// give the same float rate: the KDE-MI downstream amplifies a one-ulp rate difference ~100x (the kernel's
// slope is 1/sigma^2 per bin), which the emulated backend showed as CUDA-vs-CPU gradient mismatches.
#include <cub/block/block_reduce.cuh>

#include <cstdint>

#include "kernels/cuda_utils.cuh"
#include "kernels/firing_rate.h"

namespace spikegrad {

namespace {
constexpr int kRateBlock = 256;
constexpr int kWarps = kRateBlock / 32;
// Elements of a row handled by one backward block (grid.y covers the row).
constexpr int64_t kBackwardChunk = 4 * kRateBlock * 4;

__global__ void mean_forward_kernel(const float* spikes, float* rate, int64_t F, float scale, bool vec4) {
  const int64_t r = blockIdx.x;
  const float* s = spikes + r * F;
  double acc = 0.0;
  if (vec4) {
    const float4* s4 = reinterpret_cast<const float4*>(s);
    const int64_t n4 = F / 4;
    int64_t k = threadIdx.x;
    // Four independent loads in flight per thread: one block per row leaves few blocks per SM.
    for (; k + 3 * kRateBlock < n4; k += 4 * kRateBlock) {
      const float4 a = s4[k], b = s4[k + kRateBlock], c = s4[k + 2 * kRateBlock], d = s4[k + 3 * kRateBlock];
      acc += ((double(a.x) + a.y) + (double(a.z) + a.w)) + ((double(b.x) + b.y) + (double(b.z) + b.w)) +
             ((double(c.x) + c.y) + (double(c.z) + c.w)) + ((double(d.x) + d.y) + (double(d.z) + d.w));
    }
    for (; k < n4; k += kRateBlock) {
      const float4 a = s4[k];
      acc += (double(a.x) + a.y) + (double(a.z) + a.w);
    }
  } else {
    for (int64_t k = threadIdx.x; k < F; k += kRateBlock) acc += s[k];
  }
  using BlockReduce = cub::BlockReduce<double, kRateBlock>;
  __shared__ typename BlockReduce::TempStorage tmp;
  const double sum = BlockReduce(tmp).Sum(acc);
  if (threadIdx.x == 0) rate[r] = float(double(scale) * (sum / double(F)));
}

__global__ void mean_backward_kernel(const float* grad_rate, float* grad_spikes, int64_t F, float factor) {
  const int64_t r = blockIdx.x;
  const float g = grad_rate[r] * factor;
  float* gs = grad_spikes + r * F;
  const int64_t end = min(F, int64_t(blockIdx.y + 1) * kBackwardChunk);
  for (int64_t k = int64_t(blockIdx.y) * kBackwardChunk + threadIdx.x; k < end; k += kRateBlock) gs[k] += g;
}

// Warp w sums channels w, w+kWarps, ...; each warp keeps its first maximum, then thread 0 merges the
// warps preferring the larger sum and, on equal sums, the lower channel (the CPU's order).
__global__ void chmax_forward_kernel(const float* spikes, float* rate, int32_t* argmax, int64_t C, int64_t S, float scale) {
  const int64_t r = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  double best = 0.0;
  int64_t best_c = -1;
  for (int64_t c = warp; c < C; c += kWarps) {
    const float* s = spikes + (r * C + c) * S;
    double acc = 0.0;
    for (int64_t k = lane; k < S; k += 32) acc += s[k];
    for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (best_c < 0 || acc > best) {
      best = acc;
      best_c = c;
    }
  }
  __shared__ double warp_best[kWarps];
  __shared__ int64_t warp_c[kWarps];
  if (lane == 0) {
    warp_best[warp] = best;
    warp_c[warp] = best_c;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double b = 0.0;
    int64_t bc = -1;
    for (int w = 0; w < kWarps; ++w) {
      if (warp_c[w] < 0) continue;  // this warp had no channel (C < kWarps)
      if (bc < 0 || warp_best[w] > b || (warp_best[w] == b && warp_c[w] < bc)) {
        b = warp_best[w];
        bc = warp_c[w];
      }
    }
    rate[r] = float(double(scale) * (b / double(S)));
    argmax[r] = int32_t(bc);
  }
}

__global__ void chmax_backward_kernel(const float* grad_rate, const int32_t* argmax, float* grad_spikes, int64_t rows,
                                      int64_t C, int64_t S, float factor) {
  SG_GRID_STRIDE(i, rows * S) {
    const int64_t r = i / S, k = i % S;
    grad_spikes[(r * C + argmax[r]) * S + k] += grad_rate[r] * factor;
  }
}

void check_rows(int64_t rows, const char* op) {
  SG_CHECK(rows <= int64_t(INT32_MAX), op << ": at most 2^31-1 rows (T*B) on CUDA, got " << rows);
}
}  // namespace

void firing_rate_mean_forward_cuda(const float* spikes, float* rate, int64_t rows, int64_t F, float scale) {
  if (rows == 0) return;
  check_rows(rows, "firing_rate");
  const bool vec4 = F % 4 == 0 && reinterpret_cast<uintptr_t>(spikes) % 16 == 0;
  mean_forward_kernel<<<unsigned(rows), kRateBlock>>>(spikes, rate, F, scale, vec4);
  SG_LAUNCH_CHECK();
}

void firing_rate_mean_backward_cuda(const float* grad_rate, float* grad_spikes, int64_t rows, int64_t F, float factor) {
  if (rows == 0 || F == 0) return;
  check_rows(rows, "firing_rate backward");
  const int64_t chunks = ceil_div(F, kBackwardChunk);
  SG_CHECK(chunks <= 65535, "firing_rate backward: rows of at most " << 65535 * kBackwardChunk << " elements, got " << F);
  mean_backward_kernel<<<dim3(unsigned(rows), unsigned(chunks)), kRateBlock>>>(grad_rate, grad_spikes, F, factor);
  SG_LAUNCH_CHECK();
}

void firing_rate_chmax_forward_cuda(const float* spikes, float* rate, int32_t* argmax, int64_t rows, int64_t C, int64_t S,
                                    float scale) {
  if (rows == 0) return;
  check_rows(rows, "firing_rate");
  chmax_forward_kernel<<<unsigned(rows), kRateBlock>>>(spikes, rate, argmax, C, S, scale);
  SG_LAUNCH_CHECK();
}

void firing_rate_chmax_backward_cuda(const float* grad_rate, const int32_t* argmax, float* grad_spikes, int64_t rows,
                                     int64_t C, int64_t S, float factor) {
  SG_LAUNCH_1D(chmax_backward_kernel, rows * S, grad_rate, argmax, grad_spikes, rows, C, S, factor);
}

}  // namespace spikegrad
