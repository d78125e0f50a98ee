// CUDA firing rates: one block per row (t,b) for the forward reductions, a 2-D grid for the
// broadcasting backward. Napkin math for the TMI X tap (VGGSNN layer 1, B=64, T=4): rows=256,
// F=64*32*32=65536 -> 64 MiB read forward and 64 MiB read+write backward; memory bound, so the loads
// are float4 when a row is 16-byte aligned (kernels/vector_io.cuh). Sums are kept in double, as the CPU
// reference does, so both give the same float rate: the KDE-MI downstream amplifies a one-ulp rate
// difference ~100x (the kernel's slope is 1/sigma^2 per bin), which the emulated backend showed as
// CUDA-vs-CPU gradient mismatches.
#include <cstdint>
#include <type_traits>

#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/firing_rate.h"
#include "kernels/vector_io.cuh"

namespace spikegrad {

namespace {
constexpr int kRateBlock = 256;
constexpr int kWarps = kRateBlock / 32;
// Elements of a row handled by one backward block (grid.y covers the row).
constexpr int64_t kBackwardChunk = 4 * kRateBlock * 4;

__global__ void mean_forward_kernel(const float* spikes, float* rate, int64_t F, float scale) {
  const int64_t r = blockIdx.x;
  double acc = 0.0;
  // Four loads in flight per thread: one block per row leaves few blocks per SM. Packs add their floats
  // pairwise in double; a misaligned row (a view, or F % 4 != 0) goes one float at a time.
  strided_for_each<4>(spikes + r * F, F, threadIdx.x, kRateBlock, [&](const auto& v) {
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, float4>)
      acc += (double(v.x) + v.y) + (double(v.z) + v.w);
    else
      acc += v;
  });
  const double sum = block_sum<kRateBlock>(acc);
  if (threadIdx.x == 0) rate[r] = float(double(scale) * (sum / double(F)));
}

__global__ void mean_backward_kernel(const float* grate, float* gspikes, int64_t F, float factor) {
  const int64_t r = blockIdx.x;
  const float g = grate[r] * factor;
  float* gs = gspikes + r * F;
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
    acc = warp_sum(acc);
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

__global__ void chmax_backward_kernel(const float* grate, const int32_t* argmax, float* gspikes, int64_t rows,
                                      int64_t C, int64_t S, float factor) {
  SG_GRID_STRIDE(i, rows * S) {
    const int64_t r = i / S, k = i % S;
    gspikes[(r * C + argmax[r]) * S + k] += grate[r] * factor;
  }
}

void check_rows(int64_t rows, const char* op) {
  SG_CHECK(rows <= int64_t(INT32_MAX), op << ": at most 2^31-1 rows (T*B) on CUDA, got " << rows);
}
}  // namespace

void firing_rate_mean_forward_cuda(const float* spikes, float* rate, int64_t rows, int64_t F, float scale) {
  if (rows == 0) return;
  check_rows(rows, "firing_rate");
  mean_forward_kernel<<<unsigned(rows), kRateBlock>>>(spikes, rate, F, scale);
  SG_LAUNCH_CHECK();
}

void firing_rate_mean_backward_cuda(const float* grate, float* gspikes, int64_t rows, int64_t F, float factor) {
  if (rows == 0 || F == 0) return;
  check_rows(rows, "firing_rate backward");
  const int64_t chunks = ceil_div(F, kBackwardChunk);
  SG_CHECK(chunks <= 65535, "firing_rate backward: rows of at most " << 65535 * kBackwardChunk << " elements, got " << F);
  mean_backward_kernel<<<dim3(unsigned(rows), unsigned(chunks)), kRateBlock>>>(grate, gspikes, F, factor);
  SG_LAUNCH_CHECK();
}

void firing_rate_chmax_forward_cuda(const float* spikes, float* rate, int32_t* argmax, int64_t rows, int64_t C, int64_t S,
                                    float scale) {
  if (rows == 0) return;
  check_rows(rows, "firing_rate");
  chmax_forward_kernel<<<unsigned(rows), kRateBlock>>>(spikes, rate, argmax, C, S, scale);
  SG_LAUNCH_CHECK();
}

void firing_rate_chmax_backward_cuda(const float* grate, const int32_t* argmax, float* gspikes, int64_t rows,
                                     int64_t C, int64_t S, float factor) {
  SG_LAUNCH_1D(chmax_backward_kernel, rows * S, grate, argmax, gspikes, rows, C, S, factor);
}

}  // namespace spikegrad
