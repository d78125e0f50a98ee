#include "kernels/dropout.h"

namespace spikegrad {

namespace {
// Each element costs a Philox block (10 rounds), so forking pays off earlier than for plain copies.
constexpr int64_t kParallelMinElements = 1 << 13;
}  // namespace

template <class T> void dropout_forward_cpu(const T* x, int64_t n, double p, T scale, uint64_t seed, uint64_t offset, T* y) {
#pragma omp parallel for if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) y[i] = dropout_keep(offset + uint64_t(i), seed, p) ? x[i] * scale : T(0);
}

template <class T>
void dropout_backward_cpu(const T* gy, int64_t n, double p, T scale, uint64_t seed, uint64_t offset, T* gx) {
#pragma omp parallel for if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    if (dropout_keep(offset + uint64_t(i), seed, p)) gx[i] += gy[i] * scale;
}

#define SG_INSTANTIATE(T)                                                                              \
  template void dropout_forward_cpu<T>(const T*, int64_t, double, T, uint64_t, uint64_t, T*);        \
  template void dropout_backward_cpu<T>(const T*, int64_t, double, T, uint64_t, uint64_t, T*);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
