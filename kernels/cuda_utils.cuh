// Launch helpers for .cu files: a 1-D grid for n elements, the post-launch check, and the device side of
// the deferred input checks.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>

#include "engine/cuda_check.h"
#include "engine/cuda_context.h"
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

// After every launch: the launch error, named with this file:line; with SPIKEGRAD_SYNC_AFTER_LAUNCH=1 it also
// waits for the kernel, so a kernel that faults is named too (engine/cuda_context.h, check_launch).
#define SG_LAUNCH_CHECK() ::spikegrad::check_launch(__FILE__, __LINE__)

// Launches a grid-stride kernel over n elements (nothing for n == 0) and checks the launch.
#define SG_LAUNCH_1D(kernel, n, ...)              \
  do {                                            \
    if ((n) == 0) break;                          \
    kernel<<<grid_for(n), kBlock>>>(__VA_ARGS__); \
    SG_LAUNCH_CHECK();                            \
  } while (0)

// Reports a bad input element to a deferred device check (engine/cuda_context.h): the first failure since
// the host last read the record wins, later ones leave it alone. The plain read first keeps a tensor that
// is wrong everywhere (0..255 pixels) from queueing every thread on one atomic.
__device__ inline void record_check_failure(const DeviceCheck& check, int64_t index, double value) {
  if (*static_cast<volatile int32_t*>(&check.record->failed) != 0) return;
  if (atomicCAS(&check.record->failed, 0, 1) == 0) {
    check.record->tag = check.tag;
    check.record->index = index;
    check.record->value = value;
  }
}

}  // namespace spikegrad
