#include "kernels/cuda_utils.cuh"
#include "kernels/dropout.h"

namespace spikegrad {

namespace {
__global__ void dropout_forward_kernel(const float* x, int64_t n, double p, float scale, uint64_t seed, uint64_t offset,
                                       float* y) {
  SG_GRID_STRIDE(i, n) y[i] = dropout_keep(offset + uint64_t(i), seed, p) ? x[i] * scale : 0.f;
}
__global__ void dropout_backward_kernel(const float* gy, int64_t n, double p, float scale, uint64_t seed,
                                        uint64_t offset, float* gx) {
  SG_GRID_STRIDE(i, n) {
    if (dropout_keep(offset + uint64_t(i), seed, p)) gx[i] += gy[i] * scale;
  }
}
}  // namespace

void dropout_forward_cuda(const float* x, int64_t n, double p, float scale, uint64_t seed, uint64_t offset, float* y) {
  SG_LAUNCH_1D(dropout_forward_kernel, n, x, n, p, scale, seed, offset, y);
}
void dropout_backward_cuda(const float* gy, int64_t n, double p, float scale, uint64_t seed, uint64_t offset, float* gx) {
  SG_LAUNCH_1D(dropout_backward_kernel, n, gy, n, p, scale, seed, offset, gx);
}

}  // namespace spikegrad
