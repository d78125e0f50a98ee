#include <cmath>

#include "kernels/batch_norm.h"

namespace spikegrad {

namespace {
// Below this many elements the OpenMP fork costs more than the loop.
constexpr int64_t kParallelMinElements = 1 << 15;

// Per-channel steps, shared by the one-call functions (all steps of a channel in one loop iteration, while
// its values are in cache) and the stages of synchronised batch norm (one step over all channels), so the
// two compute the same sums in the same order.
template <class T> double channel_sum(const T* x, int64_t c, int64_t N, int64_t C, int64_t S) {
  double sum = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) sum += double(x[(n * C + c) * S + s]);
  return sum;
}

// Σ (x − mean)², the second pass around the mean: no cancellation.
template <class T> double channel_squares(const T* x, int64_t c, int64_t N, int64_t C, int64_t S, double mean) {
  double squares = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const double d = double(x[(n * C + c) * S + s]) - mean;
      squares += d * d;
    }
  return squares;
}

template <class T>
void finish_channel_stats(double mean, double squares, int64_t c, int64_t M, double momentum, double eps,
                          T* running_mean, T* running_var, T* save_mean, T* save_invstd) {
  const double var = bn_variance(squares, M);
  save_mean[c] = T(mean);
  save_invstd[c] = T(1.0 / std::sqrt(var + eps));
  bn_update_running<T>(running_mean[c], running_var[c], save_mean[c], T(var), M, T(momentum));
}

template <class T>
void apply_channel(const T* x, const T* weight, const T* bias, T mean, T invstd, int64_t c, int64_t N, int64_t C,
                   int64_t S, T* y) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t o = (n * C + c) * S + s;
      y[o] = bn_normalize(x[o], mean, invstd, weight[c], bias[c]);
    }
}

// Σdy and Σdy·xhat of channel c, with xhat formed in T as the dx formula does.
template <class T>
void channel_backward_sums(const T* x, const T* gy, T mean, T invstd, int64_t c, int64_t N, int64_t C, int64_t S,
                           double& sum_dy, double& sum_dy_xhat) {
  sum_dy = 0;
  sum_dy_xhat = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t o = (n * C + c) * S + s;
      const T xhat = (x[o] - mean) * invstd;
      sum_dy += double(gy[o]);
      sum_dy_xhat += double(gy[o]) * double(xhat);
    }
}

template <class T>
void input_grad_channel(bool training, const T* x, const T* weight, T mean, T invstd, const T* gy, T sum_dy,
                        T sum_dy_xhat, int64_t c, int64_t N, int64_t C, int64_t S, int64_t M, T* gx) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t o = (n * C + c) * S + s;
      gx[o] += bn_input_grad<T>(training, x[o], gy[o], mean, invstd, weight[c], sum_dy, sum_dy_xhat, M);
    }
}
}  // namespace

template <class T>
void batch_norm_forward_cpu(const T* x, const T* weight, const T* bias, T* running_mean, T* running_var, int64_t N,
                            int64_t C, int64_t S, bool training, double momentum, double eps, T* y, T* save_mean,
                            T* save_invstd) {
  const int64_t M = N * S;
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c) {
    if (training) {
      const double mean = bn_mean(channel_sum(x, c, N, C, S), M);
      finish_channel_stats(mean, channel_squares(x, c, N, C, S, mean), c, M, momentum, eps, running_mean, running_var,
                           save_mean, save_invstd);
    } else {
      save_mean[c] = running_mean[c];
      save_invstd[c] = T(1) / std::sqrt(running_var[c] + T(eps));
    }
    if (y) apply_channel(x, weight, bias, save_mean[c], save_invstd[c], c, N, C, S, y);  // null: statistics only
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
    if (need_sums) channel_backward_sums(x, gy, mean, invstd, c, N, C, S, sum_dy, sum_dy_xhat);
    if (gweight) gweight[c] += T(sum_dy_xhat);
    if (gbias) gbias[c] += T(sum_dy);
    if (gx) input_grad_channel(training, x, weight, mean, invstd, gy, T(sum_dy), T(sum_dy_xhat), c, N, C, S, M, gx);
  }
}

template <class T> void batch_norm_channel_sums_cpu(const T* x, int64_t N, int64_t C, int64_t S, double* sums) {
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c) sums[c] = channel_sum(x, c, N, C, S);
}

template <class T>
void batch_norm_channel_squares_cpu(const T* x, int64_t N, int64_t C, int64_t S, const double* mean, double* squares) {
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c) squares[c] = channel_squares(x, c, N, C, S, mean[c]);
}

template <class T>
void batch_norm_finish_stats_cpu(const double* mean, const double* squares, int64_t C, int64_t M, double momentum,
                                 double eps, T* running_mean, T* running_var, T* save_mean, T* save_invstd) {
  for (int64_t c = 0; c < C; ++c)
    finish_channel_stats(mean[c], squares[c], c, M, momentum, eps, running_mean, running_var, save_mean, save_invstd);
}

template <class T>
void batch_norm_apply_cpu(const T* x, const T* weight, const T* bias, const T* save_mean, const T* save_invstd,
                          int64_t N, int64_t C, int64_t S, T* y) {
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c) apply_channel(x, weight, bias, save_mean[c], save_invstd[c], c, N, C, S, y);
}

template <class T>
void batch_norm_backward_sums_cpu(const T* x, const T* save_mean, const T* save_invstd, const T* gy, int64_t N,
                                  int64_t C, int64_t S, double* sums, T* gweight, T* gbias) {
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c) {
    channel_backward_sums(x, gy, save_mean[c], save_invstd[c], c, N, C, S, sums[c], sums[C + c]);
    if (gweight) gweight[c] += T(sums[C + c]);
    if (gbias) gbias[c] += T(sums[c]);
  }
}

template <class T>
void batch_norm_input_grad_cpu(const T* x, const T* weight, const T* save_mean, const T* save_invstd, const T* gy,
                               const double* sums, int64_t N, int64_t C, int64_t S, int64_t M, T* gx) {
#pragma omp parallel for if (N * C * S >= kParallelMinElements)
  for (int64_t c = 0; c < C; ++c)
    input_grad_channel(true, x, weight, save_mean[c], save_invstd[c], gy, T(sums[c]), T(sums[C + c]), c, N, C, S, M,
                       gx);
}

#define SG_INSTANTIATE(T)                                                                                          \
  template void batch_norm_forward_cpu<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t, int64_t, bool,  \
                                          double, double, T*, T*, T*);                                             \
  template void batch_norm_backward_cpu<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,     \
                                           int64_t, bool, T*, T*, T*);                                             \
  template void batch_norm_channel_sums_cpu<T>(const T*, int64_t, int64_t, int64_t, double*);                      \
  template void batch_norm_channel_squares_cpu<T>(const T*, int64_t, int64_t, int64_t, const double*, double*);    \
  template void batch_norm_finish_stats_cpu<T>(const double*, const double*, int64_t, int64_t, double, double, T*, \
                                               T*, T*, T*);                                                        \
  template void batch_norm_apply_cpu<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,        \
                                        int64_t, T*);                                                              \
  template void batch_norm_backward_sums_cpu<T>(const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                                double*, T*, T*);                                                  \
  template void batch_norm_input_grad_cpu<T>(const T*, const T*, const T*, const T*, const T*, const double*,      \
                                             int64_t, int64_t, int64_t, int64_t, T*);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
