#include "kernels/channel_affine.h"
#include "kernels/cuda_utils.cuh"

namespace spikegrad {

namespace {
__global__ void affine_forward_kernel(const float* x, const float* scale, const float* shift, float* y, int64_t total,
                                      int64_t c, int64_t s) {
  SG_GRID_STRIDE(idx, total) {
    const int64_t k = (idx / s) % c;
    y[idx] = channel_affine_value(x[idx], scale[k], shift[k]);
  }
}
__global__ void affine_backward_kernel(const float* gy, const float* scale, float* gx, int64_t total, int64_t c,
                                       int64_t s) {
  SG_GRID_STRIDE(idx, total) gx[idx] += gy[idx] * scale[(idx / s) % c];
}
}  // namespace

void channel_affine_forward_cuda(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                                 int64_t s) {
  SG_LAUNCH_1D(affine_forward_kernel, n * c * s, x, scale, shift, y, n * c * s, c, s);
}
void channel_affine_backward_cuda(const float* gy, const float* scale, float* gx, int64_t n, int64_t c, int64_t s) {
  SG_LAUNCH_1D(affine_backward_kernel, n * c * s, gy, scale, gx, n * c * s, c, s);
}

}  // namespace spikegrad
