#include "kernels/elementwise.h"

namespace spikegrad {

template <class T> void add_forward_cpu(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
template <class T> void mul_forward_cpu(const T* a, const T* b, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
template <class T> void mul_backward_cpu(const T* a, const T* b, const T* gy, T* ga, T* gb, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (ga) ga[i] += gy[i] * b[i];
    if (gb) gb[i] += gy[i] * a[i];
  }
}
template <class T> void scale_forward_cpu(const T* a, T s, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = s * a[i];
}
template <class T> void add_scalar_forward_cpu(const T* a, T s, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + s;
}
template <class T> void clamp_forward_cpu(const T* a, T lo, T hi, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = clamp_value(a[i], lo, hi);
}
template <class T> void clamp_backward_cpu(const T* a, T lo, T hi, const T* gy, T* ga, int64_t n) {
  for (int64_t i = 0; i < n; ++i) ga[i] += clamp_grad(a[i], lo, hi, gy[i]);
}
template <class T> void sign_forward_cpu(const T* a, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = sign_value(a[i]);
}
template <class T> void axpy_cpu(T* y, const T* x, T alpha, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

#define SG_INSTANTIATE(T)                                                              \
  template void add_forward_cpu<T>(const T*, const T*, T*, int64_t);                  \
  template void mul_forward_cpu<T>(const T*, const T*, T*, int64_t);                  \
  template void mul_backward_cpu<T>(const T*, const T*, const T*, T*, T*, int64_t);   \
  template void scale_forward_cpu<T>(const T*, T, T*, int64_t);                       \
  template void add_scalar_forward_cpu<T>(const T*, T, T*, int64_t);                  \
  template void clamp_forward_cpu<T>(const T*, T, T, T*, int64_t);                    \
  template void clamp_backward_cpu<T>(const T*, T, T, const T*, T*, int64_t);         \
  template void sign_forward_cpu<T>(const T*, T*, int64_t);                           \
  template void axpy_cpu<T>(T*, const T*, T, int64_t);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
