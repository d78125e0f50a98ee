// Histogram mutual information, CPU reference. The slots, owner rule, marginals, joints and per-step
// gradients are kernels/hist_mi.h's shared functions, which the CUDA kernels (kernels/hist_mi.cu) call too,
// so the two backends differ only by their reduction trees.
#include <vector>

#include "kernels/hist_mi.h"

namespace spikegrad {

namespace {

// One sample's slots on both sides (storage for the two HistSlots views).
template <class T> struct SampleSlots {
  std::vector<int> bx, bz;
  std::vector<T> wx, wz, ax, az;
  HistSlots<T> x, z;

  SampleSlots(const T* x_in, const T* z_in, int64_t b, int64_t steps, int64_t B, int bins, bool soft)
      : bx(2 * steps), bz(2 * steps), wx(2 * steps), wz(2 * steps), ax(steps), az(steps),
        x{bx.data(), wx.data(), steps}, z{bz.data(), wz.data(), steps} {
    for (int64_t t = 0; t < steps; ++t) {
      hist_slots(x_in[t * B + b], bins, soft, bx[2 * t], bx[2 * t + 1], wx[2 * t], wx[2 * t + 1], ax[t]);
      hist_slots(z_in[t * B + b], bins, soft, bz[2 * t], bz[2 * t + 1], wz[2 * t], wz[2 * t + 1], az[t]);
    }
  }
  // Not copyable: x and z point into this object's vectors.
  SampleSlots(const SampleSlots&) = delete;
  SampleSlots& operator=(const SampleSlots&) = delete;
};

}  // namespace

template <class T> void hist_mi_forward_cpu(const T* x, const T* z, T* stats, T* mean_mi, const HistMiParams& p) {
  const T eps = T(p.eps);
#pragma omp parallel for schedule(static) if (p.B >= 16)
  for (int64_t b = 0; b < p.B; ++b) {
    const SampleSlots<T> s(x, z, b, p.T, p.B, p.bins, p.soft_forward);
    T h[3] = {T(0), T(0), T(0)};  // H(px), H(pz), H(P)
    for (int64_t c = 0; c < 8 * p.T; ++c) hist_entropy_cell(s.x, s.z, c, eps, h);
    T* st = stats + b * kKdeStatCount;
    for (int k = 0; k < kKdeStatCount; ++k) st[k] = T(0);
    st[kKdeMi] = h[0] + h[1] - h[2];
    st[kKdeHx] = h[0];
    st[kKdeHz] = h[1];
    st[kKdeHxz] = h[2];
  }
  T sum = 0;
  for (int64_t b = 0; b < p.B; ++b) sum += stats[b * kKdeStatCount + kKdeMi];
  mean_mi[0] = sum / T(p.B);
}

template <class T>
void hist_mi_backward_cpu(const T* x, const T* z, const T* gmean, T* gx, T* gz, const HistMiParams& p) {
  const T eps = T(p.eps);
  const T gm = gmean[0] / T(p.B);
#pragma omp parallel for schedule(static) if (p.B >= 16)
  for (int64_t b = 0; b < p.B; ++b) {
    const SampleSlots<T> s(x, z, b, p.T, p.B, p.bins, /*soft=*/true);  // the surrogate, whatever the forward
    for (int64_t t = 0; t < p.T; ++t) {
      if (gx) gx[t * p.B + b] += gm * hist_step_grad(s.x, s.z, s.ax.data(), t, eps, true);
      if (gz) gz[t * p.B + b] += gm * hist_step_grad(s.z, s.x, s.az.data(), t, eps, false);
    }
  }
}

#define SG_INSTANTIATE(T)                                                                      \
  template void hist_mi_forward_cpu<T>(const T*, const T*, T*, T*, const HistMiParams&);      \
  template void hist_mi_backward_cpu<T>(const T*, const T*, const T*, T*, T*, const HistMiParams&);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
