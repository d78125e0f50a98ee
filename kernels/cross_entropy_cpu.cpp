#include <algorithm>
#include <cmath>

#include "kernels/cross_entropy.h"

namespace spikegrad {

template <class T> void cross_entropy_forward_cpu(const T* x, const int32_t* y, T* loss, T* stats, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    const T* row = x + i * k;
    const T mx = *std::max_element(row, row + k);
    // The terms other than the max, and how many terms equal it (each exp(0) = 1). A NaN logit is not
    // equal to anything, so it lands in `rest` and makes the loss NaN, as a non-finite-loss check needs.
    T rest = 0, at_max = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (row[j] == mx) at_max += T(1);
      else rest += std::exp(row[j] - mx);
    }
    const T ls = std::log1p(rest + (at_max - T(1)));
    stats[2 * i] = mx;
    stats[2 * i + 1] = ls;
    loss[i] = (mx - row[y[i]]) + ls;
  }
}

template <class T>
void cross_entropy_backward_cpu(const T* x, const int32_t* y, const T* stats, const T* gy, T* gx, int64_t n, int64_t k) {
  const T g = gy[0] / T(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      gx[i * k + j] += g * cross_entropy_grad(x[i * k + j], stats[2 * i], stats[2 * i + 1], j == y[i]);
}

template void cross_entropy_forward_cpu<float>(const float*, const int32_t*, float*, float*, int64_t, int64_t);
template void cross_entropy_forward_cpu<double>(const double*, const int32_t*, double*, double*, int64_t, int64_t);
template void cross_entropy_backward_cpu<float>(const float*, const int32_t*, const float*, const float*, float*, int64_t,
                                                int64_t);
template void cross_entropy_backward_cpu<double>(const double*, const int32_t*, const double*, const double*, double*,
                                                 int64_t, int64_t);

}  // namespace spikegrad
