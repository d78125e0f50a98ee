#include "kernels/argmax.h"

namespace spikegrad {

template <class T> void argmax_rows_cpu(const T* x, int32_t* out, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    const T* row = x + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (row[j] > row[best]) best = j;
    out[i] = int32_t(best);
  }
}
template void argmax_rows_cpu<float>(const float*, int32_t*, int64_t, int64_t);
template void argmax_rows_cpu<double>(const double*, int32_t*, int64_t, int64_t);

}  // namespace spikegrad
