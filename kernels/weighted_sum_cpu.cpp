#include <vector>

#include "kernels/weighted_sum.h"

namespace spikegrad {

namespace {
// Below this many elements the OpenMP fork costs more than the loop.
constexpr int64_t kParallelMinElements = 1 << 15;
}  // namespace

template <class T> void weighted_sum_forward_cpu(const T* const* xs, int64_t count, const T* w, T* y, int64_t n) {
#pragma omp parallel for if (n * count >= kParallelMinElements)
  for (int64_t j = 0; j < n; ++j) {
    T acc = mul_rn(w[0], xs[0][j]);
    for (int64_t i = 1; i < count; ++i) acc += mul_rn(w[i], xs[i][j]);
    y[j] = acc;
  }
}

template <class T>
void weighted_sum_backward_cpu(const T* const* xs, int64_t count, const T* w, const T* gy, T* const* gxs, T* gw,
                               int64_t n) {
  if (gxs) {
    for (int64_t i = 0; i < count; ++i) {
      T* gx = gxs[i];
      if (!gx) continue;
      const T wi = w[i];
#pragma omp parallel for if (n >= kParallelMinElements)
      for (int64_t j = 0; j < n; ++j) gx[j] += mul_rn(wi, gy[j]);
    }
  }
  if (!gw) return;
  // Fixed chunks summed in chunk order: the same bits whatever the number of threads.
  const int64_t chunks = ceil_div(n, kWeightedSumCpuChunk);
  std::vector<double> partial(size_t(count * chunks), 0.0);
#pragma omp parallel for if (n * count >= kParallelMinElements)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kWeightedSumCpuChunk;
    const int64_t end = begin + kWeightedSumCpuChunk < n ? begin + kWeightedSumCpuChunk : n;
    for (int64_t i = 0; i < count; ++i) {
      double s = 0.0;
      for (int64_t j = begin; j < end; ++j) s += double(gy[j]) * double(xs[i][j]);
      partial[size_t(i * chunks + c)] = s;
    }
  }
  for (int64_t i = 0; i < count; ++i) {
    double s = 0.0;
    for (int64_t c = 0; c < chunks; ++c) s += partial[size_t(i * chunks + c)];
    gw[i] += T(s);
  }
}

#define SG_INSTANTIATE(T)                                                                                \
  template void weighted_sum_forward_cpu<T>(const T* const*, int64_t, const T*, T*, int64_t);           \
  template void weighted_sum_backward_cpu<T>(const T* const*, int64_t, const T*, const T*, T* const*, T*, \
                                             int64_t);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
