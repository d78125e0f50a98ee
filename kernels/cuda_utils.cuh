// Launch helpers for .cu files: a 1-D grid for n elements and the post-launch check.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>

#include "engine/cuda_check.h"
#include "kernels/common.h"

namespace spikegrad {

constexpr int kBlock = 256;

// Grid for a grid-stride loop over n elements; capped so huge n reuses threads instead of
// launching millions of blocks.
inline unsigned grid_for(int64_t n, int block = kBlock) {
  int64_t g = ceil_div(n, block);
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(g, 65535LL * 8)));
}

#define SG_GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

#define SG_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

// Launches a grid-stride kernel over n elements (nothing for n == 0) and checks the launch.
#define SG_LAUNCH_1D(kernel, n, ...)              \
  do {                                            \
    if ((n) == 0) break;                          \
    kernel<<<grid_for(n), kBlock>>>(__VA_ARGS__); \
    SG_LAUNCH_CHECK();                            \
  } while (0)

}  // namespace spikegrad
