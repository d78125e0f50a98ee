#include <vector>

#include "kernels/optim.h"

namespace spikegrad {

// Elements are independent, so the OpenMP split changes nothing in the result; small tensors stay serial
// because a parallel region costs more than their whole update.
constexpr int64_t kParallelMin = int64_t(1) << 15;

template <class T> void sgd_step_cpu(T* p, const T* g, T* buf, int64_t n, const SgdScalars<T>& s) {
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) sgd_element(p[i], g[i], buf ? buf + i : nullptr, s);
}

template <class T> void adam_step_cpu(T* p, const T* g, T* m, T* v, int64_t n, const AdamScalars<T>& s) {
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) adam_element(p[i], g[i], m[i], v[i], s);
}

// Fixed chunks summed in index order: the same bits for any thread count.
template <class T> double sum_squares_cpu(const T* x, int64_t n) {
  constexpr int64_t kChunk = int64_t(1) << 14;
  const int64_t chunks = ceil_div(n, kChunk);
  std::vector<double> partial(size_t(chunks), 0.0);
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    double acc = 0;
    const int64_t end = c * kChunk + kChunk < n ? c * kChunk + kChunk : n;
    for (int64_t i = c * kChunk; i < end; ++i) acc += double(x[i]) * double(x[i]);
    partial[size_t(c)] = acc;
  }
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

#define SG_INSTANTIATE(T)                                                                    \
  template void sgd_step_cpu<T>(T*, const T*, T*, int64_t, const SgdScalars<T>&);            \
  template void adam_step_cpu<T>(T*, const T*, T*, T*, int64_t, const AdamScalars<T>&);      \
  template double sum_squares_cpu<T>(const T*, int64_t);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
