#include <cmath>

#include "kernels/batch_norm.h"

namespace spikegrad {

namespace {
// Below this many elements the OpenMP fork costs more than the loop.
constexpr int64_t kParallelMinElements = 1 << 15;
}  // namespace

template <class T>
void batch_norm_forward_cpu(const T* x, const T* weight, const T* bias, T* running_mean, T* running_var, int64_t N,
                            int64_t C, int64_t S, bool training, double momentum, double eps, T* y, T* save_mean,
                            T* save_invstd) {
  const int64_t M = N * S;
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c) {
    T mean, invstd;
    if (training) {
      double sum = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) sum += double(x[(n * C + c) * S + s]);
      const double mean_d = sum / double(M);
      double squares = 0;  // second pass around the mean: no cancellation
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) {
          const double d = double(x[(n * C + c) * S + s]) - mean_d;
          squares += d * d;
        }
      const double var_d = squares / double(M);
      mean = T(mean_d);
      invstd = T(1.0 / std::sqrt(var_d + eps));
      bn_update_running<T>(running_mean[c], running_var[c], mean, T(var_d), M, T(momentum));
    } else {
      mean = running_mean[c];
      invstd = T(1) / std::sqrt(running_var[c] + T(eps));
    }
    save_mean[c] = mean;
    save_invstd[c] = invstd;
    if (!y) continue;  // statistics only (the fused BN + neuron op applies them itself)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t o = (n * C + c) * S + s;
        y[o] = bn_normalize(x[o], mean, invstd, weight[c], bias[c]);
      }
  }
}

template <class T>
void batch_norm_backward_cpu(const T* x, const T* weight, const T* save_mean, const T* save_invstd, const T* gy,
                             int64_t N, int64_t C, int64_t S, bool training, T* gx, T* gweight, T* gbias) {
  const int64_t M = N * S;
  // Eval-mode dx is a per-element scale; the channel sums are needed only for training dx or the
  // parameter gradients.
  const bool need_sums = training || gweight || gbias;
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c) {
    const T mean = save_mean[c], invstd = save_invstd[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    if (need_sums) {
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t o = (n * C + c) * S + s;
          const T xhat = (x[o] - mean) * invstd;
          sum_dy += double(gy[o]);
          sum_dy_xhat += double(gy[o]) * double(xhat);
        }
    }
    if (gweight) gweight[c] += T(sum_dy_xhat);
    if (gbias) gbias[c] += T(sum_dy);
    if (!gx) continue;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t o = (n * C + c) * S + s;
        gx[o] += bn_input_grad<T>(training, x[o], gy[o], mean, invstd, weight[c], T(sum_dy), T(sum_dy_xhat), M);
      }
  }
}

#define SG_INSTANTIATE(T)                                                                                         \
  template void batch_norm_forward_cpu<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t, bool, \
                                          double, double, T*, T*, T*);                                            \
  template void batch_norm_backward_cpu<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,    \
                                           int64_t, bool, T*, T*, T*);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
