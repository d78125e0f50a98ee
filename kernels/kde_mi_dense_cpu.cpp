// Dense KDE mutual information on the CPU: the formulas of kernels/kde_mi.h evaluated on every bin and
// every cell of the bins x bins joint, with no windows. It is the oracle the fused paths are tested
// against (in double) and the CPU baseline of bench/bench_kde_mi. Deliberately plain: one sample at a
// time, full matrices, the backward written as the chain rule of spec §1.3 step by step.
#include <vector>

#include "kernels/kde_mi.h"

namespace spikegrad {

namespace {

template <class T> struct Entropy {
  T h = 0, c = 0;  // H = -sum q log2(q+eps), c = sum g(q) q
};

// q = u / (sum u + eps) in place; returns the normaliser sum u.
template <class T> T normalise(std::vector<T>& u, T eps) {
  T sum = 0;
  for (T v : u) sum += v;
  for (T& v : u) v /= sum + eps;
  return sum;
}

template <class T> Entropy<T> entropy(const std::vector<T>& q, T eps) {
  Entropy<T> e;
  for (T v : q) kde_entropy_add(v, eps, e.h, e.c);
  return e;
}

}  // namespace

template <class T>
void kde_mi_dense_cpu(const T* x, const T* z, T* stats, T* mean_mi, const T* gmean, T* gx, T* gz,
                      const KdeMiParams& p) {
  const int64_t nt = p.T;
  const int n = p.bins;
  const T sigma = T(p.sigma), eps = T(p.eps);
  const T gm = gmean ? gmean[0] / T(p.B) : T(0);
  T mi_sum = 0;
  for (int64_t b = 0; b < p.B; ++b) {
    // Kernels (T, bins).
    std::vector<T> kx(nt * n), kz(nt * n);
    for (int64_t t = 0; t < nt; ++t)
      for (int i = 0; i < n; ++i) {
        kx[t * n + i] = kde_kernel(x[t * p.B + b], i, sigma);
        kz[t * n + i] = kde_kernel(z[t * p.B + b], i, sigma);
      }
    // Marginals m_i = mean_t K[t,i], then p = m / (sum m + eps).
    std::vector<T> px(n), pz(n);
    for (int i = 0; i < n; ++i) {
      px[i] = kde_dense_marginal(kx.data(), nt, n, i);
      pz[i] = kde_dense_marginal(kz.data(), nt, n, i);
    }
    const T ux = normalise(px, eps), uz = normalise(pz, eps);
    // Joint J = Kx^T Kz (bins, bins), then P = J / (sum J + eps).
    std::vector<T> joint(size_t(n) * n, T(0));
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        for (int64_t t = 0; t < nt; ++t) joint[size_t(i) * n + j] += kx[t * n + i] * kz[t * n + j];
    const T uxz = normalise(joint, eps);
    const Entropy<T> ex = entropy(px, eps), ez = entropy(pz, eps), exz = entropy(joint, eps);

    T* st = stats + b * kKdeStatCount;
    kde_store_stats(st, ex.h, ex.c, ez.h, ez.c, exz.h, exz.c, ux, uz, uxz);
    mi_sum += st[kKdeMi];
    if (!gx && !gz) continue;

    // dMI/dm (marginals, +1) and dMI/dJ (joint, -1) through the normalisations.
    std::vector<T> dm_x(n), dm_z(n), dj(size_t(n) * n);
    for (int i = 0; i < n; ++i) {
      dm_x[i] = gm * (kde_entropy_grad(px[i], eps) - ex.c) / (ux + eps);
      dm_z[i] = gm * (kde_entropy_grad(pz[i], eps) - ez.c) / (uz + eps);
    }
    for (size_t c = 0; c < dj.size(); ++c) dj[c] = -gm * (kde_entropy_grad(joint[c], eps) - exz.c) / (uxz + eps);
    // dMI/dK, then through the Gaussian to the rates.
    for (int64_t t = 0; t < nt; ++t) {
      T dx = 0, dz = 0;
      for (int i = 0; i < n; ++i) {
        T dkx = dm_x[i] / T(nt), dkz = dm_z[i] / T(nt);
        for (int j = 0; j < n; ++j) {
          dkx += dj[size_t(i) * n + j] * kz[t * n + j];
          dkz += dj[size_t(j) * n + i] * kx[t * n + j];
        }
        dx += dkx * kde_kernel_dv(kx[t * n + i], x[t * p.B + b], i, sigma);
        dz += dkz * kde_kernel_dv(kz[t * n + i], z[t * p.B + b], i, sigma);
      }
      if (gx) gx[t * p.B + b] += dx;
      if (gz) gz[t * p.B + b] += dz;
    }
  }
  mean_mi[0] = mi_sum / T(p.B);
}

template void kde_mi_dense_cpu<float>(const float*, const float*, float*, float*, const float*, float*, float*,
                                      const KdeMiParams&);
template void kde_mi_dense_cpu<double>(const double*, const double*, double*, double*, const double*, double*, double*,
                                       const KdeMiParams&);

}  // namespace spikegrad
