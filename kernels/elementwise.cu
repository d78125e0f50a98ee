#include "kernels/cuda_utils.cuh"
#include "kernels/elementwise.h"

namespace spikegrad {

namespace {
__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
__global__ void mul_kernel(const float* a, const float* b, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}
__global__ void mul_backward_kernel(const float* a, const float* b, const float* gy, float* ga, float* gb, int64_t n) {
  SG_GRID_STRIDE(i, n) {
    if (ga) ga[i] += gy[i] * b[i];
    if (gb) gb[i] += gy[i] * a[i];
  }
}
__global__ void scale_kernel(const float* a, float s, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = s * a[i];
}
__global__ void add_scalar_kernel(const float* a, float s, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = a[i] + s;
}
__global__ void clamp_kernel(const float* a, float lo, float hi, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = clamp_value(a[i], lo, hi);
}
__global__ void clamp_backward_kernel(const float* a, float lo, float hi, const float* gy, float* ga, int64_t n) {
  SG_GRID_STRIDE(i, n) ga[i] += clamp_grad(a[i], lo, hi, gy[i]);
}
__global__ void sign_kernel(const float* a, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = sign_value(a[i]);
}
__global__ void axpy_kernel(float* y, const float* x, float alpha, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}
}  // namespace


void add_forward_cuda(const float* a, const float* b, float* y, int64_t n) { SG_LAUNCH_1D(add_kernel, n, a, b, y, n); }
void mul_forward_cuda(const float* a, const float* b, float* y, int64_t n) { SG_LAUNCH_1D(mul_kernel, n, a, b, y, n); }
void mul_backward_cuda(const float* a, const float* b, const float* gy, float* ga, float* gb, int64_t n) {
  SG_LAUNCH_1D(mul_backward_kernel, n, a, b, gy, ga, gb, n);
}
void scale_forward_cuda(const float* a, float s, float* y, int64_t n) { SG_LAUNCH_1D(scale_kernel, n, a, s, y, n); }
void add_scalar_forward_cuda(const float* a, float s, float* y, int64_t n) { SG_LAUNCH_1D(add_scalar_kernel, n, a, s, y, n); }
void clamp_forward_cuda(const float* a, float lo, float hi, float* y, int64_t n) {
  SG_LAUNCH_1D(clamp_kernel, n, a, lo, hi, y, n);
}
void clamp_backward_cuda(const float* a, float lo, float hi, const float* gy, float* ga, int64_t n) {
  SG_LAUNCH_1D(clamp_backward_kernel, n, a, lo, hi, gy, ga, n);
}
void sign_forward_cuda(const float* a, float* y, int64_t n) { SG_LAUNCH_1D(sign_kernel, n, a, y, n); }
void axpy_cuda(float* y, const float* x, float alpha, int64_t n) { SG_LAUNCH_1D(axpy_kernel, n, y, x, alpha, n); }

}  // namespace spikegrad
