#include "kernels/pool2d.h"

namespace spikegrad {

namespace {
// Below this many elements the OpenMP fork costs more than the loop.
constexpr int64_t kParallelMinElements = 1 << 15;
}  // namespace

template <class T>
void avg_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding, T* y) {
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
  if (kernel == 2 && stride == 2 && padding == 0) {
    // The zoo's pool: the same sums in the same order as avg_pool_window (so the same bits), written as a
    // loop over an output row that the compiler vectorises.
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
    for (int64_t plane = 0; plane < planes; ++plane)
      for (int64_t p = 0; p < P; ++p) {
        const T* r0 = x + (plane * H + 2 * p) * W;
        const T* r1 = r0 + W;
        T* out = y + (plane * P + p) * Q;
        for (int64_t q = 0; q < Q; ++q) out[q] = (((r0[2 * q] + r0[2 * q + 1]) + r1[2 * q]) + r1[2 * q + 1]) / T(4);
      }
    return;
  }
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        y[(plane * P + p) * Q + q] =
            avg_pool_window(x + plane * H * W, H, W, p * stride - padding, q * stride - padding, kernel);
}

template <class T>
void avg_pool2d_backward_cpu(const T* gy, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding,
                             T* gx) {
  // The CPU scatters each output's gradient over its window (sequential within a plane, so deterministic
  // and race-free); the CUDA kernel gathers per input element instead, which avoids atomics there.
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
  const T inv = T(1) / T(kernel * kernel);
  if (kernel == 2 && stride == 2 && padding == 0) {  // the zoo's pool: windows do not overlap, one add per input
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
    for (int64_t plane = 0; plane < planes; ++plane)
      for (int64_t p = 0; p < P; ++p) {
        const T* g = gy + (plane * P + p) * Q;
        T* r0 = gx + (plane * H + 2 * p) * W;
        T* r1 = r0 + W;
        for (int64_t q = 0; q < Q; ++q) {
          const T v = g[q] * inv;
          r0[2 * q] += v;
          r0[2 * q + 1] += v;
          r1[2 * q] += v;
          r1[2 * q + 1] += v;
        }
      }
    return;
  }
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* g = gy + plane * P * Q;
    T* out = gx + plane * H * W;
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        const T v = g[p * Q + q] * inv;
        // Padded positions take their share of v too (the divisor is k²), but there is nothing to write.
        const int64_t h0 = p * stride - padding, w0 = q * stride - padding;
        const int j0 = pool_window_begin(w0), j1 = pool_window_end(w0, kernel, W);
        for (int i = pool_window_begin(h0); i < pool_window_end(h0, kernel, H); ++i) {
          T* row = out + (h0 + i) * W + w0;
          for (int j = j0; j < j1; ++j) row[j] += v;
        }
      }
  }
}

template <class T>
void max_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int kernel, int stride, int padding, T* y,
                            int32_t* argmax) {
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t o = (plane * P + p) * Q + q;
        int32_t at;
        y[o] = max_pool_window(x + plane * H * W, H, W, p * stride - padding, q * stride - padding, kernel, at);
        if (argmax) argmax[o] = at;
      }
}

template <class T>
void max_pool2d_backward_cpu(const T* gy, const int32_t* argmax, int64_t planes, int64_t H, int64_t W, int kernel,
                             int stride, int padding, T* gx) {
  // Scatter to the saved argmax of each window, in output order within a plane (deterministic).
  const int64_t P = pool_out_size(H, kernel, stride, padding), Q = pool_out_size(W, kernel, stride, padding);
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t o = 0; o < P * Q; ++o) gx[plane * H * W + argmax[plane * P * Q + o]] += gy[plane * P * Q + o];
}

template <class T>
void adaptive_avg_pool2d_forward_cpu(const T* x, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q, T* y) {
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q)
        y[(plane * P + p) * Q + q] = adaptive_avg_pool_bin(x + plane * H * W, H, W, p, q, P, Q);
}

template <class T>
void adaptive_avg_pool2d_backward_cpu(const T* gy, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q, T* gx) {
  // Scatter each bin's dy / area over the bin, bins in output order within a plane (deterministic).
#pragma omp parallel for if (planes * H * W >= kParallelMinElements)
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* out = gx + plane * H * W;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t h0 = adaptive_bin_begin(p, H, P), h1 = adaptive_bin_end(p, H, P);
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t w0 = adaptive_bin_begin(q, W, Q), w1 = adaptive_bin_end(q, W, Q);
        const T v = gy[(plane * P + p) * Q + q] / T((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) out[h * W + w] += v;
      }
    }
  }
}

#define SG_INSTANTIATE(T)                                                                                           \
  template void avg_pool2d_forward_cpu<T>(const T*, int64_t, int64_t, int64_t, int, int, int, T*);                 \
  template void avg_pool2d_backward_cpu<T>(const T*, int64_t, int64_t, int64_t, int, int, int, T*);                \
  template void max_pool2d_forward_cpu<T>(const T*, int64_t, int64_t, int64_t, int, int, int, T*, int32_t*);       \
  template void max_pool2d_backward_cpu<T>(const T*, const int32_t*, int64_t, int64_t, int64_t, int, int, int, T*); \
  template void adaptive_avg_pool2d_forward_cpu<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, T*);     \
  template void adaptive_avg_pool2d_backward_cpu<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, T*);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
