#include "kernels/ann_activation.h"

namespace spikegrad {

template <class T> void relu_forward_cpu(const T* a, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = relu_value(a[i]);
}
template <class T> void relu_backward_cpu(const T* a, const T* gy, T* ga, int64_t n) {
  for (int64_t i = 0; i < n; ++i) ga[i] += relu_grad(a[i], gy[i]);
}
template <class T> void qcfs_forward_cpu(const T* a, T theta, int levels, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = qcfs_value(a[i], theta, levels);
}
template <class T> void qcfs_backward_cpu(const T* a, T theta, const T* gy, T* ga, int64_t n) {
  for (int64_t i = 0; i < n; ++i) ga[i] += qcfs_grad(a[i], theta, gy[i]);
}

#define SG_INSTANTIATE(T)                                                      \
  template void relu_forward_cpu<T>(const T*, T*, int64_t);                   \
  template void relu_backward_cpu<T>(const T*, const T*, T*, int64_t);        \
  template void qcfs_forward_cpu<T>(const T*, T, int, T*, int64_t);           \
  template void qcfs_backward_cpu<T>(const T*, T, const T*, T*, int64_t);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
