#include <cub/device/device_reduce.cuh>

#include "kernels/cuda_utils.cuh"
#include "kernels/reduce.h"

namespace spikegrad {

namespace {
__global__ void broadcast_add_kernel(const float* gy, float scale, float* gx, int64_t n) {
  const float g = scale * gy[0];
  SG_GRID_STRIDE(i, n) gx[i] += g;
}
}  // namespace

void sum_cuda(const float* x, float* y, int64_t n, void* scratch, size_t& scratch_bytes) {
  CUDA_CHECK(cub::DeviceReduce::Sum(scratch, scratch_bytes, x, y, n, 0));
}

void broadcast_add_cuda(const float* gy, float scale, float* gx, int64_t n) {
  SG_LAUNCH_1D(broadcast_add_kernel, n, gy, scale, gx, n);
}

}  // namespace spikegrad
