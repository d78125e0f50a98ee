#include <algorithm>
#include <cmath>

#include "kernels/cross_entropy.h"

namespace spikegrad {

template <class T> void cross_entropy_forward_cpu(const T* x, const int32_t* y, T* loss, T* lse, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    const T* row = x + i * k;
    const T mx = *std::max_element(row, row + k);
    T s = 0;
    for (int64_t j = 0; j < k; ++j) s += std::exp(row[j] - mx);
    lse[i] = mx + std::log(s);
    loss[i] = lse[i] - row[y[i]];
  }
}

template <class T>
void cross_entropy_backward_cpu(const T* x, const int32_t* y, const T* lse, const T* gy, T* gx, int64_t n, int64_t k) {
  const T g = gy[0] / T(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      gx[i * k + j] += g * (std::exp(x[i * k + j] - lse[i]) - (j == y[i] ? T(1) : T(0)));
}

template void cross_entropy_forward_cpu<float>(const float*, const int32_t*, float*, float*, int64_t, int64_t);
template void cross_entropy_forward_cpu<double>(const double*, const int32_t*, double*, double*, int64_t, int64_t);
template void cross_entropy_backward_cpu<float>(const float*, const int32_t*, const float*, const float*, float*, int64_t,
                                                int64_t);
template void cross_entropy_backward_cpu<double>(const double*, const int32_t*, const double*, const double*, double*,
                                                 int64_t, int64_t);

}  // namespace spikegrad
