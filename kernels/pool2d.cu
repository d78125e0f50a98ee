#include "kernels/cuda_utils.cuh"
#include "kernels/pool2d.h"

namespace spikegrad {

namespace {

// Thread per output element o = (plane·P + p)·Q + q.
__global__ void avg_pool_forward_kernel(const float* x, int64_t n_out, int64_t H, int64_t W, int64_t P, int64_t Q,
                                        int kernel, int stride, int padding, float* y) {
  SG_GRID_STRIDE(o, n_out) {
    const int64_t plane = o / (P * Q), p = (o / Q) % P, q = o % Q;
    y[o] = avg_pool_window(x + plane * H * W, H, W, p * stride - padding, q * stride - padding, kernel);
  }
}

// argmax may be null (no backward will run).
__global__ void max_pool_forward_kernel(const float* x, int64_t n_out, int64_t H, int64_t W, int64_t P, int64_t Q,
                                        int kernel, int stride, int padding, float* y, int32_t* argmax) {
  SG_GRID_STRIDE(o, n_out) {
    const int64_t plane = o / (P * Q), p = (o / Q) % P, q = o % Q;
    int32_t at;
    y[o] = max_pool_window(x + plane * H * W, H, W, p * stride - padding, q * stride - padding, kernel, at);
    if (argmax) argmax[o] = at;
  }
}

__global__ void adaptive_avg_pool_forward_kernel(const float* x, int64_t n_out, int64_t H, int64_t W, int64_t P,
                                                 int64_t Q, float* y) {
  SG_GRID_STRIDE(o, n_out) {
    const int64_t plane = o / (P * Q), p = (o / Q) % P, q = o % Q;
    y[o] = adaptive_avg_pool_bin(x + plane * H * W, H, W, p, q, P, Q);
  }
}

// Thread per input element i = (plane·H + h)·W + w, gathering from the windows that contain it.
__global__ void avg_pool_backward_kernel(const float* gy, int64_t n_in, int64_t H, int64_t W, int64_t P, int64_t Q,
                                         int kernel, int stride, int padding, float* gx) {
  SG_GRID_STRIDE(i, n_in) {
    const int64_t plane = i / (H * W), h = (i / W) % H, w = i % W;
    gx[i] += avg_pool_input_grad(gy + plane * P * Q, h, w, kernel, stride, padding, P, Q);
  }
}

__global__ void max_pool_backward_kernel(const float* gy, const int32_t* argmax, int64_t n_in, int64_t H, int64_t W,
                                         int64_t P, int64_t Q, int kernel, int stride, int padding, float* gx) {
  SG_GRID_STRIDE(i, n_in) {
    const int64_t plane = i / (H * W), h = (i / W) % H, w = i % W;
    gx[i] += max_pool_input_grad(gy + plane * P * Q, argmax + plane * P * Q, h, w, W, kernel, stride, padding, P, Q);
  }
}

__global__ void adaptive_avg_pool_backward_kernel(const float* gy, int64_t n_in, int64_t H, int64_t W, int64_t P,
                                                  int64_t Q, float* gx) {
  SG_GRID_STRIDE(i, n_in) {
    const int64_t plane = i / (H * W), h = (i / W) % H, w = i % W;
    gx[i] += adaptive_avg_pool_input_grad(gy + plane * P * Q, h, w, H, W, P, Q);
  }
}

}  // namespace

void avg_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding,
                             float* y) {
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
  const int64_t n_out = planes * P * Q;
  SG_LAUNCH_1D(avg_pool_forward_kernel, n_out, x, n_out, H, W, P, Q, kernel, stride, padding, y);
}

void avg_pool2d_backward_cuda(const float* gy, int64_t planes, int64_t H, int64_t W, int kernel, int stride,
                              int padding, float* gx) {
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
  const int64_t n_in = planes * H * W;
  SG_LAUNCH_1D(avg_pool_backward_kernel, n_in, gy, n_in, H, W, P, Q, kernel, stride, padding, gx);
}

void max_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding,
                             float* y, int32_t* argmax) {
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
  const int64_t n_out = planes * P * Q;
  SG_LAUNCH_1D(max_pool_forward_kernel, n_out, x, n_out, H, W, P, Q, kernel, stride, padding, y, argmax);
}

void max_pool2d_backward_cuda(const float* gy, const int32_t* argmax, int64_t planes, int64_t H, int64_t W, int kernel,
                              int stride, int padding, float* gx) {
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
  const int64_t n_in = planes * H * W;
  SG_LAUNCH_1D(max_pool_backward_kernel, n_in, gy, argmax, n_in, H, W, P, Q, kernel, stride, padding, gx);
}

void adaptive_avg_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                      float* y) {
  const int64_t n_out = planes * P * Q;
  SG_LAUNCH_1D(adaptive_avg_pool_forward_kernel, n_out, x, n_out, H, W, P, Q, y);
}

void adaptive_avg_pool2d_backward_cuda(const float* gy, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                       float* gx) {
  const int64_t n_in = planes * H * W;
  SG_LAUNCH_1D(adaptive_avg_pool_backward_kernel, n_in, gy, n_in, H, W, P, Q, gx);
}

}  // namespace spikegrad
