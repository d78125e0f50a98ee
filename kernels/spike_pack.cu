// Byte packing of level-valued tensors on CUDA (see kernels/spike_pack.h). Four elements per thread step
// when the pointers allow it would be faster still; these are memory-bound one-pass kernels either way.
#include "kernels/cuda_utils.cuh"
#include "kernels/spike_pack.h"

namespace spikegrad {

namespace {

__global__ void pack_levels_kernel(const float* __restrict__ x, uint8_t* __restrict__ q, int64_t n, float scale) {
  SG_GRID_STRIDE(i, n) q[i] = uint8_t(fminf(fmaxf(rintf(x[i] * scale), 0.f), 255.f));
}

__global__ void unpack_levels_kernel(const uint8_t* __restrict__ q, float* __restrict__ x, int64_t n, float inv) {
  SG_GRID_STRIDE(i, n) x[i] = float(q[i]) * inv;
}

}  // namespace

void pack_levels_cuda(const float* x, uint8_t* q, int64_t n, int levels) {
  SG_LAUNCH_1D(pack_levels_kernel, n, x, q, n, float(levels));
}

void unpack_levels_cuda(const uint8_t* q, float* x, int64_t n, int levels) {
  SG_LAUNCH_1D(unpack_levels_kernel, n, q, x, n, 1.f / float(levels));
}

}  // namespace spikegrad
