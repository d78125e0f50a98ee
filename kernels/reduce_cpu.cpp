#include "kernels/reduce.h"

namespace spikegrad {

template <class T> T sum_cpu(const T* x, int64_t n) {
  double s = 0;  // double accumulation: a float running sum loses digits on large tensors
  for (int64_t i = 0; i < n; ++i) s += double(x[i]);
  return T(s);
}
template <class T> void broadcast_add_cpu(const T* gy, T scale, T* gx, int64_t n) {
  const T g = scale * gy[0];
  for (int64_t i = 0; i < n; ++i) gx[i] += g;
}

template float sum_cpu<float>(const float*, int64_t);
template double sum_cpu<double>(const double*, int64_t);
template void broadcast_add_cpu<float>(const float*, float, float*, int64_t);
template void broadcast_add_cpu<double>(const double*, double, double*, int64_t);

}  // namespace spikegrad
