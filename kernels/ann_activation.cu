#include "kernels/ann_activation.h"
#include "kernels/cuda_utils.cuh"

namespace spikegrad {

namespace {
__global__ void relu_kernel(const float* a, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = relu_value(a[i]);
}
__global__ void relu_backward_kernel(const float* a, const float* gy, float* ga, int64_t n) {
  SG_GRID_STRIDE(i, n) ga[i] += relu_grad(a[i], gy[i]);
}
__global__ void qcfs_kernel(const float* a, float theta, int levels, float* y, int64_t n) {
  SG_GRID_STRIDE(i, n) y[i] = qcfs_value(a[i], theta, levels);
}
__global__ void qcfs_backward_kernel(const float* a, float theta, const float* gy, float* ga, int64_t n) {
  SG_GRID_STRIDE(i, n) ga[i] += qcfs_grad(a[i], theta, gy[i]);
}
}  // namespace

void relu_forward_cuda(const float* a, float* y, int64_t n) { SG_LAUNCH_1D(relu_kernel, n, a, y, n); }
void relu_backward_cuda(const float* a, const float* gy, float* ga, int64_t n) {
  SG_LAUNCH_1D(relu_backward_kernel, n, a, gy, ga, n);
}
void qcfs_forward_cuda(const float* a, float theta, int levels, float* y, int64_t n) {
  SG_LAUNCH_1D(qcfs_kernel, n, a, theta, levels, y, n);
}
void qcfs_backward_cuda(const float* a, float theta, const float* gy, float* ga, int64_t n) {
  SG_LAUNCH_1D(qcfs_backward_kernel, n, a, theta, gy, ga, n);
}

}  // namespace spikegrad
