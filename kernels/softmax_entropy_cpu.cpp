#include <cmath>

#include "kernels/softmax_entropy.h"

namespace spikegrad {

template <class T> void softmax_entropy_forward_cpu(const T* logits, T* h, T* lse, int64_t N, int64_t K) {
  for (int64_t n = 0; n < N; ++n) {
    const T* a = logits + n * K;
    T m = a[0];
    for (int64_t k = 1; k < K; ++k) m = a[k] > m ? a[k] : m;
    T s = 0;
    for (int64_t k = 0; k < K; ++k) s += std::exp(a[k] - m);
    const T l = m + std::log(s);
    T e = 0;
    for (int64_t k = 0; k < K; ++k) e -= std::exp(a[k] - l) * (a[k] - l);
    lse[n] = l;
    h[n] = e;
  }
}

template <class T>
void softmax_entropy_backward_cpu(const T* logits, const T* h, const T* lse, const T* gh, T* glogits, int64_t N,
                                  int64_t K) {
  for (int64_t n = 0; n < N; ++n) {
    const T* a = logits + n * K;
    T* ga = glogits + n * K;
    for (int64_t k = 0; k < K; ++k) {
      const T logp = a[k] - lse[n];
      ga[k] += gh[n] * (-std::exp(logp) * (logp + h[n]));
    }
  }
}

template void softmax_entropy_forward_cpu<float>(const float*, float*, float*, int64_t, int64_t);
template void softmax_entropy_forward_cpu<double>(const double*, double*, double*, int64_t, int64_t);
template void softmax_entropy_backward_cpu<float>(const float*, const float*, const float*, const float*, float*, int64_t,
                                                  int64_t);
template void softmax_entropy_backward_cpu<double>(const double*, const double*, const double*, const double*, double*,
                                                   int64_t, int64_t);

}  // namespace spikegrad
