// 2-D average and max pooling (square kernel k, stride s, zero/-inf padding p), and adaptive average pooling.
//
// Shapes: x (N,C,H,W) -> y (N,C,P,Q), P = (H+2p−k)/s + 1, Q = (W+2p−k)/s + 1 (floor, PyTorch's
// ceil_mode=False), with p <= k/2 (PyTorch's rule; it also keeps every window at least one input wide and
// inside the padded plane). The N·C planes are independent, so kernels see `planes` = N·C planes of H×W in,
// P×Q out. Window (p,q) covers rows p·s−pad .. p·s−pad+k−1 and columns q·s−pad .. q·s−pad+k−1; the rows and
// columns outside the plane are padding.
//
// avg:  y = Σ_{window, in bounds} x / k² — padding counts as zeros in the divisor (PyTorch's default
//       count_include_pad=True: every window divides by k²).  Saves nothing.
//       dx(h,w) += Σ_{windows containing (h,w)} dy / k².
// max:  y = max over the window's in-bounds positions (padding is −inf: never the maximum); argmax = the
//       FIRST maximum in row-major scan order over those positions (strictly greater replaces), which is
//       PyTorch's rule, so ties — constant on binary spike maps — route the gradient identically on both
//       backends and as PyTorch does. A NaN counts as the maximum (the first NaN of the window), so NaNs
//       propagate as in PyTorch.
//       Saves argmax (int32, offset h·W+w inside the input plane): 4 bytes per output element; x itself
//       is not kept. dx(h,w) += Σ_{windows containing (h,w) whose argmax is (h,w)} dy.
// adaptive avg (PyTorch AdaptiveAvgPool2d): (H,W) -> (P,Q) chosen by the caller (P > H allowed: bins then
//       overlap or repeat). Output row bin i covers rows [floor(i·H/P), ceil((i+1)·H/P)), columns likewise;
//       y = mean over the bin (divided by its own area). Saves nothing.
//       dx(h,w) += Σ_{bins containing (h,w)} dy / area(bin).
// Backward on CUDA is a gather: each input element sums over the windows (≤ ceil(k/s)² of them) or bins that
// contain it, so overlapping windows need no atomics and the result is deterministic; the CPU reference
// scatters plane by plane (also deterministic). Accumulates (+=).
// Bytes moved: forward N·C·(H·W + P·Q)·sizeof(T) (+ 4·N·C·P·Q argmax); backward about the same.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

SG_HD int64_t pool_out_size(int64_t in, int kernel, int stride, int padding) {
  return (in + 2 * int64_t(padding) - kernel) / stride + 1;
}

// Windows along one axis that contain input index h: [first, last] (empty when first > last). In padded
// coordinates (h + padding) window o starts at o·s, so it contains h when o·s <= h+pad <= o·s+k−1.
SG_HD void pool_windows_containing(int64_t h, int kernel, int stride, int padding, int64_t out, int64_t& first,
                                   int64_t& last) {
  const int64_t hp = h + padding;
  first = hp >= kernel ? (hp - kernel) / stride + 1 : 0;  // ceil((hp − k + 1) / s), clamped at 0
  last = hp / stride < out - 1 ? hp / stride : out - 1;
}

// The in-bounds part [begin, end) of a window's k offsets along one axis of length n, for a window starting at
// `start` (negative inside the padding).
SG_HD int pool_window_begin(int64_t start) { return start < 0 ? int(-start) : 0; }
SG_HD int pool_window_end(int64_t start, int kernel, int64_t n) { return start + kernel > n ? int(n - start) : kernel; }

// Window starting at (h0, w0) (padded coordinates minus the padding: may be negative) of an H×W plane.
template <class T>
SG_HD T avg_pool_window(const T* plane, int64_t H, int64_t W, int64_t h0, int64_t w0, int kernel) {
  const int i0 = pool_window_begin(h0), i1 = pool_window_end(h0, kernel, H);
  const int j0 = pool_window_begin(w0), j1 = pool_window_end(w0, kernel, W);
  T sum = T(0);
  for (int i = i0; i < i1; ++i)
    for (int j = j0; j < j1; ++j) sum += plane[(h0 + i) * W + (w0 + j)];
  return sum / T(kernel * kernel);
}

// Returns the maximum of the window's in-bounds positions and writes its plane offset to `argmax`. The
// caller's p <= k/2 makes every window hold at least one in-bounds position.
template <class T>
SG_HD T max_pool_window(const T* plane, int64_t H, int64_t W, int64_t h0, int64_t w0, int kernel, int32_t& argmax) {
  const int i0 = pool_window_begin(h0), i1 = pool_window_end(h0, kernel, H);
  const int j0 = pool_window_begin(w0), j1 = pool_window_end(w0, kernel, W);
  int64_t best_at = (h0 + i0) * W + (w0 + j0);
  T best = plane[best_at];
  for (int i = i0; i < i1; ++i)
    for (int j = j0; j < j1; ++j) {
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
SG_HD T avg_pool_input_grad(const T* gy_plane, int64_t h, int64_t w, int kernel, int stride, int padding, int64_t P,
                            int64_t Q) {
  int64_t p0, p1, q0, q1;
  pool_windows_containing(h, kernel, stride, padding, P, p0, p1);
  pool_windows_containing(w, kernel, stride, padding, Q, q0, q1);
  T sum = T(0);
  for (int64_t p = p0; p <= p1; ++p)
    for (int64_t q = q0; q <= q1; ++q) sum += gy_plane[p * Q + q];
  return sum / T(kernel * kernel);
}

template <class T>
SG_HD T max_pool_input_grad(const T* gy_plane, const int32_t* argmax_plane, int64_t h, int64_t w, int64_t W, int kernel,
                            int stride, int padding, int64_t P, int64_t Q) {
  int64_t p0, p1, q0, q1;
  pool_windows_containing(h, kernel, stride, padding, P, p0, p1);
  pool_windows_containing(w, kernel, stride, padding, Q, q0, q1);
  const int32_t self = int32_t(h * W + w);
  T sum = T(0);
  for (int64_t p = p0; p <= p1; ++p)
    for (int64_t q = q0; q <= q1; ++q)
      if (argmax_plane[p * Q + q] == self) sum += gy_plane[p * Q + q];
  return sum;
}

// Adaptive pooling bins along one axis (PyTorch's start_index/end_index): bin i of `out` over `in` inputs is
// [floor(i·in/out), ceil((i+1)·in/out)).
SG_HD int64_t adaptive_bin_begin(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
SG_HD int64_t adaptive_bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// Bins along one axis that contain input index h: [first, last]. begin(i) <= h  <=>  i <= ceil((h+1)·out/in) − 1
// and end(i) > h  <=>  i >= floor(h·out/in).
SG_HD void adaptive_bins_containing(int64_t h, int64_t in, int64_t out, int64_t& first, int64_t& last) {
  first = (h * out) / in;
  const int64_t l = ((h + 1) * out + in - 1) / in - 1;
  last = l < out - 1 ? l : out - 1;
}

template <class T> SG_HD T adaptive_avg_pool_bin(const T* plane, int64_t H, int64_t W, int64_t p, int64_t q, int64_t P,
                                                 int64_t Q) {
  const int64_t h0 = adaptive_bin_begin(p, H, P), h1 = adaptive_bin_end(p, H, P);
  const int64_t w0 = adaptive_bin_begin(q, W, Q), w1 = adaptive_bin_end(q, W, Q);
  T sum = T(0);
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t w = w0; w < w1; ++w) sum += plane[h * W + w];
  return sum / T((h1 - h0) * (w1 - w0));
}

template <class T>
SG_HD T adaptive_avg_pool_input_grad(const T* gy_plane, int64_t h, int64_t w, int64_t H, int64_t W, int64_t P,
                                     int64_t Q) {
  int64_t p0, p1, q0, q1;
  adaptive_bins_containing(h, H, P, p0, p1);
  adaptive_bins_containing(w, W, Q, q0, q1);
  T sum = T(0);
  for (int64_t p = p0; p <= p1; ++p) {
    const int64_t rows = adaptive_bin_end(p, H, P) - adaptive_bin_begin(p, H, P);
    for (int64_t q = q0; q <= q1; ++q) {
      const int64_t cols = adaptive_bin_end(q, W, Q) - adaptive_bin_begin(q, W, Q);
      sum += gy_plane[p * Q + q] / T(rows * cols);
    }
  }
  return sum;
}

// CPU reference, instantiated for float and double. `argmax` (planes·P·Q) may be null when no
// backward will run.
template <class T>
void avg_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding,
                            T* y);
template <class T>
void avg_pool2d_backward_cpu(const T* gy, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding,
                             T* gx);
template <class T>
void max_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding, T* y,
                            int32_t* argmax);
template <class T>
void max_pool2d_backward_cpu(const T* gy, const int32_t* argmax, int64_t planes, int64_t H, int64_t W, int kernel,
                             int stride, int padding, T* gx);
template <class T>
void adaptive_avg_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q, T* y);
template <class T>
void adaptive_avg_pool2d_backward_cpu(const T* gy, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q, T* gx);

// CUDA, float32: one thread per output element forward, one per input element backward.
void avg_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding,
                             float* y);
void avg_pool2d_backward_cuda(const float* gy, int64_t planes, int64_t H, int64_t W, int kernel, int stride,
                              int padding, float* gx);
void max_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding,
                             float* y, int32_t* argmax);
void max_pool2d_backward_cuda(const float* gy, const int32_t* argmax, int64_t planes, int64_t H, int64_t W, int kernel,
                              int stride, int padding, float* gx);
void adaptive_avg_pool2d_forward_cuda(const float* x, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                      float* y);
void adaptive_avg_pool2d_backward_cuda(const float* gy, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                                       float* gx);

}  // namespace spikegrad
