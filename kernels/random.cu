#include "kernels/cuda_utils.cuh"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace spikegrad {

namespace {
__global__ void uniform_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  SG_GRID_STRIDE(i, n) out[i] = philox_uniform(offset + uint64_t(i), seed);
}
__global__ void normal_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  SG_GRID_STRIDE(i, n) out[i] = float(philox_normal(offset + uint64_t(i), seed));
}
}  // namespace

void rand_uniform_cuda(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  SG_LAUNCH_1D(uniform_kernel, n, out, n, seed, offset);
}
void rand_normal_cuda(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  SG_LAUNCH_1D(normal_kernel, n, out, n, seed, offset);
}

}  // namespace spikegrad
