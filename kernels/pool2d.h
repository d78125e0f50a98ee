// 2-D average and max pooling, square kernel k, stride s, no padding.
//
// Shapes: x (N,C,H,W) -> y (N,C,P,Q), P = (H−k)/s + 1, Q = (W−k)/s + 1 (floor). The N·C planes are
// independent, so kernels see `planes` = N·C planes of H×W in, P×Q out.
// Window (p,q) covers rows p·s .. p·s+k−1 and columns q·s .. q·s+k−1.
//
// avg:  y = Σ_window x / k².             Saves nothing.
//       dx(h,w) += Σ_{windows containing (h,w)} dy / k².
// max:  y = max_window x; argmax = the FIRST maximum in row-major window order (strictly greater
//       replaces), so ties route the gradient identically on both backends. A NaN counts as the
//       maximum (the first NaN of the window), so NaNs propagate as in PyTorch.
//       Saves argmax (int32, offset h·W+w inside the input plane): 4 bytes per output element; x itself
//       is not kept. dx(h,w) += Σ_{windows containing (h,w) whose argmax is (h,w)} dy.
// Backward is a gather: each input element sums over the ≤ ceil(k/s)² windows that contain it, so
// overlapping windows (k > s) need no atomics and the result is deterministic. Accumulates (+=).
// Bytes moved: forward N·C·(H·W + P·Q)·sizeof(T) (+ 4·N·C·P·Q argmax); backward about the same.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

SG_HD int64_t pool_out_size(int64_t in, int kernel, int stride) { return (in - kernel) / stride + 1; }

// Windows along one axis that contain input index h: [first, last] (empty when first > last).
SG_HD void pool_windows_containing(int64_t h, int kernel, int stride, int64_t out, int64_t& first, int64_t& last) {
  first = h >= kernel ? (h - kernel) / stride + 1 : 0;  // ceil((h − k + 1) / s), clamped at 0
  last = h / stride < out - 1 ? h / stride : out - 1;
}

template <class T> SG_HD T avg_pool_window(const T* plane, int64_t W, int64_t h0, int64_t w0, int kernel) {
  T sum = T(0);
  for (int i = 0; i < kernel; ++i)
    for (int j = 0; j < kernel; ++j) sum += plane[(h0 + i) * W + (w0 + j)];
  return sum / T(kernel * kernel);
}

// Returns the maximum of the window and writes its plane offset to `argmax`.
template <class T> SG_HD T max_pool_window(const T* plane, int64_t W, int64_t h0, int64_t w0, int kernel, int32_t& argmax) {
  int64_t best_at = h0 * W + w0;
  T best = plane[best_at];
  for (int i = 0; i < kernel; ++i)
    for (int j = 0; j < kernel; ++j) {
      const int64_t at = (h0 + i) * W + (w0 + j);
      const T v = plane[at];
      const bool best_is_nan = best != best;
      if (!best_is_nan && (v > best || v != v)) {
        best = v;
        best_at = at;
      }
    }
  argmax = int32_t(best_at);
  return best;
}

// Gradient of input element (h,w) of one plane; gy_plane is the plane's P×Q output gradient.
template <class T>
SG_HD T avg_pool_input_grad(const T* gy_plane, int64_t h, int64_t w, int kernel, int stride, int64_t P, int64_t Q) {
  int64_t p0, p1, q0, q1;
  pool_windows_containing(h, kernel, stride, P, p0, p1);
  pool_windows_containing(w, kernel, stride, Q, q0, q1);
  T sum = T(0);
  for (int64_t p = p0; p <= p1; ++p)
    for (int64_t q = q0; q <= q1; ++q) sum += gy_plane[p * Q + q];
  return sum / T(kernel * kernel);
}

template <class T>
SG_HD T max_pool_input_grad(const T* gy_plane, const int32_t* argmax_plane, int64_t h, int64_t w, int64_t W, int kernel,
                            int stride, int64_t P, int64_t Q) {
  int64_t p0, p1, q0, q1;
  pool_windows_containing(h, kernel, stride, P, p0, p1);
  pool_windows_containing(w, kernel, stride, Q, q0, q1);
  const int32_t self = int32_t(h * W + w);
  T sum = T(0);
  for (int64_t p = p0; p <= p1; ++p)
    for (int64_t q = q0; q <= q1; ++q)
      if (argmax_plane[p * Q + q] == self) sum += gy_plane[p * Q + q];
  return sum;
}

// CPU reference, instantiated for float and double. `argmax` (planes·P·Q) may be null when no
// backward will run.
template <class T> void avg_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, T* y);
template <class T>
void avg_pool2d_backward_cpu(const T* gy, int64_t planes, int64_t H, int64_t W, int kernel, int stride, T* gx);
template <class T>
void max_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, T* y, int32_t* argmax);
template <class T>
void max_pool2d_backward_cpu(const T* gy, const int32_t* argmax, int64_t planes, int64_t H, int64_t W, int kernel,
                             int stride, T* gx);

// CUDA, float32: one thread per output element forward, one per input element backward.
void avg_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, float* y);
void avg_pool2d_backward_cuda(const float* gy, int64_t planes, int64_t H, int64_t W, int kernel, int stride, float* gx);
void max_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, float* y,
                             int32_t* argmax);
void max_pool2d_backward_cuda(const float* gy, const int32_t* argmax, int64_t planes, int64_t H, int64_t W, int kernel,
                              int stride, float* gx);

}  // namespace spikegrad
