#include "kernels/range_check.h"

namespace spikegrad {

template <class T> int64_t first_outside_range_cpu(const T* x, int64_t n, T lo, T hi) {
  for (int64_t i = 0; i < n; ++i)
    if (!in_range(x[i], lo, hi)) return i;
  return -1;
}
template int64_t first_outside_range_cpu<float>(const float*, int64_t, float, float);
template int64_t first_outside_range_cpu<double>(const double*, int64_t, double, double);

}  // namespace spikegrad
