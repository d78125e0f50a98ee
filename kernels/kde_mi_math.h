// KDE mutual information math shared by the CPU references and the CUDA kernels (kernels/kde_mi.h has the
// contract and formulas): the Gaussian kernel, the entropy terms, the support windows, and the marginal,
// joint and owner-rule logic of the windowed (fused) formulation. Everything is SG_HD, so the CPU and the
// CUDA code evaluate the same expressions in the same order and cannot drift apart (as the neurons do).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

// Per-sample statistics written by the forward, layout (B, kKdeStatCount).
enum KdeStat : int {
  kKdeMi = 0,   // MI_b = H_x + H_z - H_xz (bits)
  kKdeHx,       // H(px)
  kKdeHz,       // H(pz)
  kKdeHxz,      // H(P)
  kKdeUx,       // normaliser sum_i m_i of x (before + eps)
  kKdeUz,
  kKdeUxz,      // sum_ij J_ij
  kKdeCx,       // sum_i g(px_i) px_i, used by the backward
  kKdeCz,
  kKdeCxz,
  kKdeStatCount
};
// The forward's per-sample sums before kde_store_stats: hx, cx, hz, cz, hxz, cxz.
constexpr int kKdeEntropySums = 6;

SG_HD float kde_exp(float v) { return expf(v); }
SG_HD double kde_exp(double v) { return exp(v); }
SG_HD float kde_log2(float v) { return log2f(v); }
SG_HD double kde_log2(double v) { return log2(v); }

template <class T>
SG_HD T kde_kernel(T v, int i, T sigma) {
  const T d = (v - T(i)) / sigma;
  return kde_exp(T(-0.5) * d * d);
}
// dK/dv given K = kde_kernel(v, i, sigma).
template <class T>
SG_HD T kde_kernel_dv(T k, T v, int i, T sigma) {
  return -k * (v - T(i)) / (sigma * sigma);
}
// One cell's share of H = -sum q log2(q + eps), and dH/dq.
template <class T>
SG_HD T kde_entropy_term(T q, T eps) {
  return -q * kde_log2(q + eps);
}
template <class T>
SG_HD T kde_entropy_grad(T q, T eps) {
  return -(kde_log2(q + eps) + q / ((q + eps) * T(0.69314718055994530942)));
}
// Adds one cell of probability q to an entropy H and to its gradient sum c = sum g(q) q.
template <class T>
SG_HD void kde_entropy_add(T q, T eps, T& h, T& c) {
  h += kde_entropy_term(q, eps);
  c += kde_entropy_grad(q, eps) * q;
}

// Writes one sample's statistics row: entropies (bits), normalisers, and the entropy-gradient sums
// c = sum g(q) q that the backward needs. Shared by the CPU references and both CUDA formulations.
template <class T>
SG_HD void kde_store_stats(T* st, T hx, T cx, T hz, T cz, T hxz, T cxz, T ux, T uz, T uxz) {
  st[kKdeMi] = hx + hz - hxz;
  st[kKdeHx] = hx;
  st[kKdeHz] = hz;
  st[kKdeHxz] = hxz;
  st[kKdeUx] = ux;
  st[kKdeUz] = uz;
  st[kKdeUxz] = uxz;
  st[kKdeCx] = cx;
  st[kKdeCz] = cz;
  st[kKdeCxz] = cxz;
}

// ---- dense formulation: full (T, bins) kernel rows, row t at k + t * bins ----------------------------
// m_i = (1/T) sum_t K[t, i], summed in t order.
template <class T>
SG_HD T kde_dense_marginal(const T* k, int64_t steps, int bins, int i) {
  T m = T(0);
  for (int64_t t = 0; t < steps; ++t) m += k[t * bins + i];
  return m / T(steps);
}

// ---- windowed (fused) formulation ------------------------------------------------------------------------
// Bins [lo, lo+len) where the kernel of v can be nonzero. NaN gets the first `window` bins so that it
// propagates; the clamps keep huge or infinite v away from integer overflow.
template <class T>
SG_HD void kde_window(T v, T radius, int bins, int window, int& lo, int& len) {
  if (!(v == v)) {
    lo = 0;
    len = window;
    return;
  }
  const T a = fmin(fmax(v - radius, T(-1)), T(bins));
  const T b = fmin(fmax(v + radius, T(-1)), T(bins));
  int l = int(ceil(a)), h = int(floor(b));
  if (l < 0) l = 0;
  if (h > bins - 1) h = bins - 1;
  int n = h - l + 1;
  if (n < 0) n = 0;
  if (n > window) n = window;
  lo = l;
  len = n;
}

// Slot k of a window starting at bin lo: K(v, lo + k), or exactly 0 past the window's len bins.
template <class T>
SG_HD T kde_window_value(T v, int lo, int len, int k, T sigma) {
  return k < len ? kde_kernel(v, lo + k, sigma) : T(0);
}

// One side (x or z) of one sample, windowed: K[t, lo[t] + k] = values[t * W + k] for k < len[t], and
// exactly 0 elsewhere (the value exp() rounds to there, see kernels/kde_mi.h). Views memory the caller owns
// (std::vectors on the CPU, shared memory on CUDA).
template <class T>
struct KdeWindows {
  const T* values;
  const int* lo;
  const int* len;
  int W;
  int64_t steps;

  SG_HD bool contains(int64_t t, int i) const { return i >= lo[t] && i < lo[t] + len[t]; }
  // K[t, i].
  SG_HD T at(int64_t t, int i) const {
    const int k = i - lo[t];
    return k >= 0 && k < len[t] ? values[t * W + k] : T(0);
  }
  // Owner rule: true when a step u < t's window already contains bin i (that step evaluates it).
  SG_HD bool owned_before(int64_t t, int i) const {
    for (int64_t u = 0; u < t; ++u)
      if (contains(u, i)) return true;
    return false;
  }
  // m_i = (1/T) sum over every t of K[t, i]: the dense formula's terms in its order (zeros outside windows).
  SG_HD T marginal(int i) const {
    T m = T(0);
    for (int64_t u = 0; u < steps; ++u) m += at(u, i);
    return m / T(steps);
  }
  // S_t = sum_k K[t, lo[t] + k], over all W slots in order (the slots past len[t] hold 0).
  SG_HD T row_sum(int64_t t) const {
    T s = T(0);
    for (int k = 0; k < W; ++k) s += values[t * W + k];
    return s;
  }
};

// J[i, j] = sum_t Kx[t, i] Kz[t, j], in t order. Symmetric in its sides (a * b == b * a exactly), so the
// z side's gradient may call it as kde_joint(z, x, j, i).
template <class T>
SG_HD T kde_joint(const KdeWindows<T>& x, const KdeWindows<T>& z, int i, int j) {
  T s = T(0);
  for (int64_t u = 0; u < x.steps; ++u) s += x.at(u, i) * z.at(u, j);
  return s;
}
// Owner rule for joint cells: true when a step u < t's rectangle already contains cell (i, j).
template <class T>
SG_HD bool kde_cell_owned_before(const KdeWindows<T>& x, const KdeWindows<T>& z, int64_t t, int i, int j) {
  for (int64_t u = 0; u < t; ++u)
    if (x.contains(u, i) && z.contains(u, j)) return true;
  return false;
}

// Normalisers from the window row sums: Ux = (1/T) sum_t Sx_t, Uz likewise, Uxz = sum_t Sx_t Sz_t.
template <class T>
SG_HD void kde_normalisers(const T* sx, const T* sz, int64_t steps, T& ux, T& uz, T& uxz) {
  ux = T(0);
  uz = T(0);
  uxz = T(0);
  for (int64_t t = 0; t < steps; ++t) {
    ux += sx[t];
    uz += sz[t];
    uxz += sx[t] * sz[t];
  }
  ux /= T(steps);
  uz /= T(steps);
}

// The backward's per-sample factors for one side (kernels/kde_mi.h): a = gm / ((U + eps) T) for the
// marginal term, axz = -gm / (Uxz + eps) for the joint term (H_xz enters MI with sign -1), with the
// saved normalisers and gradient sums.
template <class T>
struct KdeSideGrad {
  T a, u_eps, c;       // marginal: factor, U + eps, c
  T axz, uxz_eps, cxz;  // joint
};
template <class T>
SG_HD KdeSideGrad<T> kde_side_grad(const T* st, bool zside, T gm, T eps, int64_t steps) {
  const T u_eps = st[zside ? kKdeUz : kKdeUx] + eps, uxz_eps = st[kKdeUxz] + eps;
  return KdeSideGrad<T>{gm / (u_eps * T(steps)), u_eps, st[zside ? kKdeCz : kKdeCx], -gm / uxz_eps, uxz_eps,
                        st[kKdeCxz]};
}

// dMI/dv_t's share from slot k of step t's window on side `own` (x or z; `other` is the other side):
// dMI/dK[t, i] (marginal term plus the joint terms over the other side's window at t) times dK/dv,
// with i = own.lo[t] + k and v the step's rate. 0 past the window.
template <class T>
SG_HD T kde_slot_grad(const KdeWindows<T>& own, const KdeWindows<T>& other, const KdeSideGrad<T>& g, T v, int64_t t,
                      int k, T sigma, T eps) {
  if (k >= own.len[t]) return T(0);
  const int i = own.lo[t] + k;
  T dk = g.a * (kde_entropy_grad(own.marginal(i) / g.u_eps, eps) - g.c);
  for (int kj = 0; kj < other.len[t]; ++kj) {
    const T q = kde_joint(own, other, i, other.lo[t] + kj) / g.uxz_eps;
    dk += g.axz * (kde_entropy_grad(q, eps) - g.cxz) * other.values[t * other.W + kj];
  }
  return dk * kde_kernel_dv(own.values[t * own.W + k], v, i, sigma);
}

}  // namespace spikegrad
