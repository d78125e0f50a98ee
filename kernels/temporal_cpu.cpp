#include "kernels/temporal.h"

namespace spikegrad {

template <class T> void repeat_time_forward_cpu(const T* x, T* y, int64_t steps, int64_t m) {
  for (int64_t t = 0; t < steps; ++t)
    for (int64_t i = 0; i < m; ++i) y[t * m + i] = x[i];
}
template <class T> void repeat_time_backward_cpu(const T* gy, T* gx, int64_t steps, int64_t m) {
  for (int64_t i = 0; i < m; ++i) {
    T s = 0;
    for (int64_t t = 0; t < steps; ++t) s += gy[t * m + i];
    gx[i] += s;
  }
}
template <class T> void mean_time_forward_cpu(const T* x, T* y, int64_t steps, int64_t m) {
  for (int64_t i = 0; i < m; ++i) {
    T s = 0;
    for (int64_t t = 0; t < steps; ++t) s += x[t * m + i];
    y[i] = s / T(steps);
  }
}
template <class T> void mean_time_backward_cpu(const T* gy, T* gx, int64_t steps, int64_t m) {
  for (int64_t t = 0; t < steps; ++t)
    for (int64_t i = 0; i < m; ++i) gx[t * m + i] += gy[i] / T(steps);
}

template <class T> void swap_leading_dims_forward_cpu(const T* x, T* y, int64_t a, int64_t b, int64_t m) {
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < m; ++k) y[(j * a + i) * m + k] = x[(i * b + j) * m + k];
}
template <class T> void swap_leading_dims_backward_cpu(const T* gy, T* gx, int64_t a, int64_t b, int64_t m) {
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < m; ++k) gx[(i * b + j) * m + k] += gy[(j * a + i) * m + k];
}

#define SG_INSTANTIATE(T)                                                           \
  template void repeat_time_forward_cpu<T>(const T*, T*, int64_t, int64_t);        \
  template void repeat_time_backward_cpu<T>(const T*, T*, int64_t, int64_t);       \
  template void mean_time_forward_cpu<T>(const T*, T*, int64_t, int64_t);          \
  template void mean_time_backward_cpu<T>(const T*, T*, int64_t, int64_t);          \
  template void swap_leading_dims_forward_cpu<T>(const T*, T*, int64_t, int64_t, int64_t); \
  template void swap_leading_dims_backward_cpu<T>(const T*, T*, int64_t, int64_t, int64_t);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
