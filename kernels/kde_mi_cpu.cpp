// Fused (windowed) KDE mutual information, CPU reference. Loops are written to mirror the CUDA kernel
// (kernels/kde_mi.cu) one to one: the same windows, owner rule, factor placement and summation order per
// window, so the two backends differ only by reduction trees and FMA contraction.
#include <vector>

#include "kernels/kde_mi.h"

namespace spikegrad {

namespace {

// The windows and kernel values of one sample: Kx[t, lo_x[t] + k] = kx[t*W + k] for k < len_x[t].
template <class T> struct SampleKernels {
  const KdeMiParams& p;
  int W;
  std::vector<T> xv, zv, kx, kz, sx, sz;
  std::vector<int> lo_x, len_x, lo_z, len_z;

  SampleKernels(const T* x, const T* z, int64_t b, const KdeMiParams& params)
      : p(params), W(params.window), xv(params.T), zv(params.T), kx(params.T * W), kz(params.T * W), sx(params.T),
        sz(params.T), lo_x(params.T), len_x(params.T), lo_z(params.T), len_z(params.T) {
    const T sigma = T(p.sigma), radius = T(p.radius);
    for (int64_t t = 0; t < p.T; ++t) {
      xv[t] = x[t * p.B + b];
      zv[t] = z[t * p.B + b];
      kde_window(xv[t], radius, p.bins, W, lo_x[t], len_x[t]);
      kde_window(zv[t], radius, p.bins, W, lo_z[t], len_z[t]);
      T s_x = 0, s_z = 0;
      for (int k = 0; k < W; ++k) {
        kx[t * W + k] = k < len_x[t] ? kde_kernel(xv[t], lo_x[t] + k, sigma) : T(0);
        kz[t * W + k] = k < len_z[t] ? kde_kernel(zv[t], lo_z[t] + k, sigma) : T(0);
        s_x += kx[t * W + k];
        s_z += kz[t * W + k];
      }
      sx[t] = s_x;
      sz[t] = s_z;
    }
  }
  // Kx[t,i], exactly 0 outside the window (the value exp() would round to there).
  T kx_at(int64_t t, int i) const {
    const int k = i - lo_x[t];
    return k >= 0 && k < len_x[t] ? kx[t * W + k] : T(0);
  }
  T kz_at(int64_t t, int j) const {
    const int k = j - lo_z[t];
    return k >= 0 && k < len_z[t] ? kz[t * W + k] : T(0);
  }
  bool in_x(int64_t t, int i) const { return i >= lo_x[t] && i < lo_x[t] + len_x[t]; }
  bool in_z(int64_t t, int j) const { return j >= lo_z[t] && j < lo_z[t] + len_z[t]; }
  // Full sums over every t (the dense formula's terms, in its order; zeros outside windows).
  T marginal_x(int i) const {
    T m = 0;
    for (int64_t u = 0; u < p.T; ++u) m += kx_at(u, i);
    return m / T(p.T);
  }
  T marginal_z(int j) const {
    T m = 0;
    for (int64_t u = 0; u < p.T; ++u) m += kz_at(u, j);
    return m / T(p.T);
  }
  T joint(int i, int j) const {
    T s = 0;
    for (int64_t u = 0; u < p.T; ++u) s += kx_at(u, i) * kz_at(u, j);
    return s;
  }
  // Owner rule: true when a lower t' < t's window already contains the bin (or cell).
  bool x_owned_before(int64_t t, int i) const {
    for (int64_t u = 0; u < t; ++u)
      if (in_x(u, i)) return true;
    return false;
  }
  bool z_owned_before(int64_t t, int j) const {
    for (int64_t u = 0; u < t; ++u)
      if (in_z(u, j)) return true;
    return false;
  }
  bool cell_owned_before(int64_t t, int i, int j) const {
    for (int64_t u = 0; u < t; ++u)
      if (in_x(u, i) && in_z(u, j)) return true;
    return false;
  }
};

}  // namespace

template <class T> void kde_mi_forward_cpu(const T* x, const T* z, T* stats, T* mean_mi, const KdeMiParams& p) {
  const T eps = T(p.eps);
#pragma omp parallel for schedule(static) if (p.B >= 16)
  for (int64_t b = 0; b < p.B; ++b) {
    const SampleKernels<T> s(x, z, b, p);
    T ux = 0, uz = 0, uxz = 0;
    for (int64_t t = 0; t < p.T; ++t) {
      ux += s.sx[t];
      uz += s.sz[t];
      uxz += s.sx[t] * s.sz[t];
    }
    ux /= T(p.T);
    uz /= T(p.T);
    T hx = 0, cx = 0, hz = 0, cz = 0, hxz = 0, cxz = 0;
    for (int64_t t = 0; t < p.T; ++t) {
      for (int k = 0; k < s.len_x[t]; ++k) {
        const int i = s.lo_x[t] + k;
        if (s.x_owned_before(t, i)) continue;
        const T q = s.marginal_x(i) / (ux + eps);
        hx += kde_entropy_term(q, eps);
        cx += kde_entropy_grad(q, eps) * q;
      }
      for (int k = 0; k < s.len_z[t]; ++k) {
        const int j = s.lo_z[t] + k;
        if (s.z_owned_before(t, j)) continue;
        const T q = s.marginal_z(j) / (uz + eps);
        hz += kde_entropy_term(q, eps);
        cz += kde_entropy_grad(q, eps) * q;
      }
      for (int ki = 0; ki < s.len_x[t]; ++ki) {
        for (int kj = 0; kj < s.len_z[t]; ++kj) {
          const int i = s.lo_x[t] + ki, j = s.lo_z[t] + kj;
          if (s.cell_owned_before(t, i, j)) continue;
          const T q = s.joint(i, j) / (uxz + eps);
          hxz += kde_entropy_term(q, eps);
          cxz += kde_entropy_grad(q, eps) * q;
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
void kde_mi_backward_cpu(const T* x, const T* z, const T* stats, const T* grad_mean, T* gx, T* gz, const KdeMiParams& p) {
  const T eps = T(p.eps), sigma = T(p.sigma);
  const T gm = grad_mean[0] / T(p.B);
#pragma omp parallel for schedule(static) if (p.B >= 16)
  for (int64_t b = 0; b < p.B; ++b) {
    const SampleKernels<T> s(x, z, b, p);
    const T* st = stats + b * kKdeStatCount;
    const T ax = gm / ((st[kKdeUx] + eps) * T(p.T)), az = gm / ((st[kKdeUz] + eps) * T(p.T));
    const T axz = -gm / (st[kKdeUxz] + eps);  // H_xz enters MI with sign -1
    for (int64_t t = 0; t < p.T; ++t) {
      if (gx) {
        T dx = 0;
        for (int k = 0; k < s.len_x[t]; ++k) {
          const int i = s.lo_x[t] + k;
          T dk = ax * (kde_entropy_grad(s.marginal_x(i) / (st[kKdeUx] + eps), eps) - st[kKdeCx]);
          for (int kj = 0; kj < s.len_z[t]; ++kj) {
            const T q = s.joint(i, s.lo_z[t] + kj) / (st[kKdeUxz] + eps);
            dk += axz * (kde_entropy_grad(q, eps) - st[kKdeCxz]) * s.kz[t * s.W + kj];
          }
          dx += dk * kde_kernel_dv(s.kx[t * s.W + k], s.xv[t], i, sigma);
        }
        gx[t * p.B + b] += dx;
      }
      if (gz) {
        T dz = 0;
        for (int k = 0; k < s.len_z[t]; ++k) {
          const int j = s.lo_z[t] + k;
          T dk = az * (kde_entropy_grad(s.marginal_z(j) / (st[kKdeUz] + eps), eps) - st[kKdeCz]);
          for (int ki = 0; ki < s.len_x[t]; ++ki) {
            const T q = s.joint(s.lo_x[t] + ki, j) / (st[kKdeUxz] + eps);
            dk += axz * (kde_entropy_grad(q, eps) - st[kKdeCxz]) * s.kx[t * s.W + ki];
          }
          dz += dk * kde_kernel_dv(s.kz[t * s.W + k], s.zv[t], j, sigma);
        }
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
