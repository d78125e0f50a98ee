// Fused (windowed) KDE mutual information, CPU reference. The windows, owner rule, marginals, joints and
// per-slot gradients are kernels/kde_mi_math.h's, which the CUDA kernel (kernels/kde_mi.cu) calls too, in
// the same order per window, so the two backends differ only by reduction trees and FMA contraction.
#include <vector>

#include "kernels/kde_mi.h"

namespace spikegrad {

namespace {

// The windows and kernel values of one sample (storage for the two KdeWindows views of kernels/kde_mi_math.h).
template <class T> struct SampleKernels {
  std::vector<T> xv, zv, kx, kz, sx, sz;
  std::vector<int> lo_x, len_x, lo_z, len_z;
  KdeWindows<T> x, z;

  SampleKernels(const T* x_in, const T* z_in, int64_t b, const KdeMiParams& p)
      : xv(p.T), zv(p.T), kx(p.T * p.window), kz(p.T * p.window), sx(p.T), sz(p.T), lo_x(p.T), len_x(p.T),
        lo_z(p.T), len_z(p.T), x{kx.data(), lo_x.data(), len_x.data(), p.window, p.T},
        z{kz.data(), lo_z.data(), len_z.data(), p.window, p.T} {
    const T sigma = T(p.sigma), radius = T(p.radius);
    const int W = p.window;
    for (int64_t t = 0; t < p.T; ++t) {
      xv[t] = x_in[t * p.B + b];
      zv[t] = z_in[t * p.B + b];
      kde_window(xv[t], radius, p.bins, W, lo_x[t], len_x[t]);
      kde_window(zv[t], radius, p.bins, W, lo_z[t], len_z[t]);
      for (int k = 0; k < W; ++k) {
        kx[t * W + k] = kde_window_value(xv[t], lo_x[t], len_x[t], k, sigma);
        kz[t * W + k] = kde_window_value(zv[t], lo_z[t], len_z[t], k, sigma);
      }
      sx[t] = x.row_sum(t);
      sz[t] = z.row_sum(t);
    }
  }
  // Not copyable: x and z point into this object's vectors.
  SampleKernels(const SampleKernels&) = delete;
  SampleKernels& operator=(const SampleKernels&) = delete;
};

}  // namespace

template <class T> void kde_mi_forward_cpu(const T* x, const T* z, T* stats, T* mean_mi, const KdeMiParams& p) {
  const T eps = T(p.eps);
#pragma omp parallel for schedule(static) if (p.B >= 16)
  for (int64_t b = 0; b < p.B; ++b) {
    const SampleKernels<T> s(x, z, b, p);
    T ux, uz, uxz;
    kde_normalisers(s.sx.data(), s.sz.data(), p.T, ux, uz, uxz);
    T hx = 0, cx = 0, hz = 0, cz = 0, hxz = 0, cxz = 0;
    for (int64_t t = 0; t < p.T; ++t) {
      for (int k = 0; k < s.len_x[t]; ++k) {
        const int i = s.lo_x[t] + k;
        if (!s.x.owned_before(t, i)) kde_entropy_add(s.x.marginal(i) / (ux + eps), eps, hx, cx);
      }
      for (int k = 0; k < s.len_z[t]; ++k) {
        const int j = s.lo_z[t] + k;
        if (!s.z.owned_before(t, j)) kde_entropy_add(s.z.marginal(j) / (uz + eps), eps, hz, cz);
      }
      for (int ki = 0; ki < s.len_x[t]; ++ki) {
        for (int kj = 0; kj < s.len_z[t]; ++kj) {
          const int i = s.lo_x[t] + ki, j = s.lo_z[t] + kj;
          if (kde_cell_owned_before(s.x, s.z, t, i, j)) continue;
          kde_entropy_add(kde_joint(s.x, s.z, i, j) / (uxz + eps), eps, hxz, cxz);
        }
      }
    }
    T* st = stats + b * kKdeStatCount;
    kde_store_stats(st, hx, cx, hz, cz, hxz, cxz, ux, uz, uxz);
  }
  T sum = 0;
  for (int64_t b = 0; b < p.B; ++b) sum += stats[b * kKdeStatCount + kKdeMi];
  mean_mi[0] = sum / T(p.B);
}

template <class T>
void kde_mi_backward_cpu(const T* x, const T* z, const T* stats, const T* gmean, T* gx, T* gz, const KdeMiParams& p) {
  const T eps = T(p.eps), sigma = T(p.sigma);
  const T gm = gmean[0] / T(p.B);
#pragma omp parallel for schedule(static) if (p.B >= 16)
  for (int64_t b = 0; b < p.B; ++b) {
    const SampleKernels<T> s(x, z, b, p);
    const T* st = stats + b * kKdeStatCount;
    const KdeSideGrad<T> gxs = kde_side_grad(st, false, gm, eps, p.T);
    const KdeSideGrad<T> gzs = kde_side_grad(st, true, gm, eps, p.T);
    for (int64_t t = 0; t < p.T; ++t) {
      if (gx) {
        T dx = 0;
        for (int k = 0; k < s.len_x[t]; ++k) dx += kde_slot_grad(s.x, s.z, gxs, s.xv[t], t, k, sigma, eps);
        gx[t * p.B + b] += dx;
      }
      if (gz) {
        T dz = 0;
        for (int k = 0; k < s.len_z[t]; ++k) dz += kde_slot_grad(s.z, s.x, gzs, s.zv[t], t, k, sigma, eps);
        gz[t * p.B + b] += dz;
      }
    }
  }
}

#define SG_INSTANTIATE(T)                                                                         \
  template void kde_mi_forward_cpu<T>(const T*, const T*, T*, T*, const KdeMiParams&);           \
  template void kde_mi_backward_cpu<T>(const T*, const T*, const T*, const T*, T*, T*, const KdeMiParams&);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
