#include "kernels/firing_rate.h"

namespace spikegrad {

namespace {
// Rows are independent; below this much work the OpenMP fork costs more than it saves.
constexpr int64_t kParallelMinElements = 1 << 15;
}  // namespace

template <class T> void firing_rate_mean_forward_cpu(const T* spikes, T* rate, int64_t rows, int64_t F, double scale) {
#pragma omp parallel for schedule(static) if (rows * F >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = spikes + r * F;
    double sum = 0;
    for (int64_t f = 0; f < F; ++f) sum += s[f];
    rate[r] = T(scale * (sum / double(F)));
  }
}

template <class T> void firing_rate_mean_backward_cpu(const T* grate, T* gspikes, int64_t rows, int64_t F, T factor) {
#pragma omp parallel for schedule(static) if (rows * F >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const T g = grate[r] * factor;
    T* gs = gspikes + r * F;
    for (int64_t f = 0; f < F; ++f) gs[f] += g;
  }
}

template <class T>
void firing_rate_chmax_forward_cpu(const T* spikes, T* rate, int32_t* argmax, int64_t rows, int64_t C, int64_t S,
                                   double scale) {
#pragma omp parallel for schedule(static) if (rows * C * S >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    double best = 0;
    int32_t best_c = 0;
    for (int64_t c = 0; c < C; ++c) {
      const T* s = spikes + (r * C + c) * S;
      double sum = 0;
      for (int64_t k = 0; k < S; ++k) sum += s[k];
      // Strict '>' keeps the lowest channel on ties; S is shared by all channels, so comparing sums
      // compares means.
      if (c == 0 || sum > best) {
        best = sum;
        best_c = int32_t(c);
      }
    }
    rate[r] = T(scale * (best / double(S)));
    argmax[r] = best_c;
  }
}

template <class T>
void firing_rate_chmax_backward_cpu(const T* grate, const int32_t* argmax, T* gspikes, int64_t rows, int64_t C,
                                    int64_t S, T factor) {
  for (int64_t r = 0; r < rows; ++r) {
    const T g = grate[r] * factor;
    T* gs = gspikes + (r * C + argmax[r]) * S;
    for (int64_t k = 0; k < S; ++k) gs[k] += g;
  }
}

#define SG_INSTANTIATE(T)                                                                                  \
  template void firing_rate_mean_forward_cpu<T>(const T*, T*, int64_t, int64_t, double);                  \
  template void firing_rate_mean_backward_cpu<T>(const T*, T*, int64_t, int64_t, T);                      \
  template void firing_rate_chmax_forward_cpu<T>(const T*, T*, int32_t*, int64_t, int64_t, int64_t, double); \
  template void firing_rate_chmax_backward_cpu<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t, T);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
