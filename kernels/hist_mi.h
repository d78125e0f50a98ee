// Histogram (plug-in) mutual information between two rate time series, batched over samples: the
// AIMIE-style baseline the TMI paper compares its KDE estimator with (reference.md §1.5 leaves AIMIE's
// exact definition open; this is the textbook histogram estimator on TMI's own rate sequences).
//
// Inputs x, z: (T,B) rates in bin units (time-major, x[t*B+b]), bins with centres i = 0..bins-1 (spacing
// 1; the loss scales firing rates by bins-1, so a rate r lands at r*(bins-1)). Per sample b the T time
// steps are the samples of the distribution, as in KDE-MI.
//
// Binning. Each value v puts weight on (at most) two bins, its two "slots":
//   hard (the forward):  all of its mass on the nearest centre, i = clamp(floor(v + 0.5), 0, bins-1)
//                        (a tie v = i + 0.5 goes up), i.e. counting;
//   soft (the gradient surrogate): linear interpolation (triangular kernel of width 1) between
//                        lo = clamp(floor(v), 0, bins-2) and hi = lo + 1 with weights 1-f and f,
//                        f = clamp(v - lo, 0, 1) (bins = 1: one bin, weight 1).
// The hard bin is the soft slot with the larger weight, so both describe the same histogram up to how a
// value's mass is split between its two nearest centres.
// Distributions and MI, for either binning, with w_t(i) the weight value t puts on bin i:
//   px_i = (1/T) sum_t wx_t(i),   pz_j likewise,   P_ij = (1/T) sum_t wx_t(i) wz_t(j)   (each sums to 1)
//   H(q) = -sum q log2(q + eps);  MI_b = H(px) + H(pz) - H(P) (bits);  output = (1/B) sum_b MI_b
// With hard binning the q are counts / T and MI_b is the plug-in estimate; it is at most log2(T) and at
// most log2(bins) (T values fill at most T cells).
//
// Gradient (straight-through): hard counts are piecewise constant in v, so their gradient is 0 almost
// everywhere. The backward instead returns the exact gradient of the SOFT-binned MI evaluated at the same
// inputs; the forward value stays the hard one (HistMiParams::soft_forward = true makes the forward the
// soft MI too: what the finite-difference checks differentiate). With g(q) = dH/dq = -(log2(q+eps) +
// q/((q+eps) ln 2)) (kernels/kde_mi_math.h), gm = gmean / B, and a = 1 when 0 < v < bins-1 (else the clamp
// is active and the derivative is 0), for step t of sample b (lo, hi: x_t's soft slots):
//   dMI/dx_t = gm a (1/T) ( g(px_hi) - g(px_lo) - sum_{j in z_t's slots} wz_t(j) (g(P_hi,j) - g(P_lo,j)) )
// and symmetrically for z. The soft MI is piecewise smooth: it has kinks where a value crosses an integer
// (its slots change), so the surrogate's gradient is that of the piece containing v.
//
// Work per sample is O(T^2) on both backends, independent of bins: every nonzero cell is one of the
// 2 slots (marginals) or 4 slot pairs (joint) of some step, and a cell is evaluated once, by its owner,
// the first slot (in t, then slot order) that lands on it, with q summed over all steps (the same terms in
// the same order on both backends; the KDE estimator's owner rule, kernels/kde_mi.h).
//
// Saved by the forward for backward: nothing (the backward rebuilds the slots from x and z). stats
// (B, kKdeStatCount) use the KDE layout (kernels/kde_mi_math.h) so the batch mean and the per-sample
// report are shared; only kKdeMi, kKdeHx, kKdeHz, kKdeHxz are written, the rest is 0. Accumulation:
// backward does += into gx/gz (gx and gz may be the same buffer). A NaN rate makes its sample's MI NaN
// and its own gradient NaN (and every gradient of that sample that reads bin 0); +-inf is clamped like any
// out-of-range rate.
//
// CUDA: one block per sample, slots in shared memory (16 bytes per step and side), T <= kHistCudaMaxT.
// Deterministic: fixed per-thread cell assignment and fixed reduction trees, no atomics.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/kde_mi_math.h"  // stats layout, log2 and the entropy gradient g(q)

namespace spikegrad {

constexpr int kHistCudaMaxT = 1024;

struct HistMiParams {
  int64_t T = 0, B = 0;
  int bins = 16;
  double eps = 1e-10;
  bool soft_forward = false;  // forward = the soft-binned MI (gradient checks) instead of the counts
};

// ---- math shared by the CPU reference and the CUDA kernels --------------------------------------------
SG_HD float hist_floor(float v) { return floorf(v); }
SG_HD double hist_floor(double v) { return floor(v); }

// The two slots of value v: bins lo, hi and weights wlo, whi; `active` is df/dv (1 inside (0, bins-1), else 0).
template <class T>
SG_HD void hist_slots(T v, int bins, bool soft, int& lo, int& hi, T& wlo, T& whi, T& active) {
  active = T(0);
  if (!(v == v)) {  // NaN: weight NaN on bin 0, so the sample's MI and gradient are NaN
    lo = hi = 0;
    wlo = v;
    whi = T(0);
    active = v;
    return;
  }
  if (!soft) {
    const T r = hist_floor(v + T(0.5));
    lo = hi = r <= T(0) ? 0 : (r >= T(bins - 1) ? bins - 1 : int(r));
    wlo = T(1);
    whi = T(0);
    return;
  }
  if (bins == 1) {
    lo = hi = 0;
    wlo = T(1);
    whi = T(0);
    return;
  }
  const T fl = hist_floor(v);
  lo = fl <= T(0) ? 0 : (fl >= T(bins - 2) ? bins - 2 : int(fl));
  hi = lo + 1;
  T f = v - T(lo);
  if (f < T(0)) f = T(0);
  if (f > T(1)) f = T(1);
  wlo = T(1) - f;
  whi = f;
  active = v > T(0) && v < T(bins - 1) ? T(1) : T(0);
}

// One side's slots for one sample: bin[2t+k], w[2t+k] for step t, slot k.
template <class T>
struct HistSlots {
  const int* bin;
  const T* w;
  int64_t steps;
  // sum_k [bin(t,k) == i] w(t,k): the weight step t puts on bin i.
  SG_HD T weight(int64_t t, int i) const {
    return (bin[2 * t] == i ? w[2 * t] : T(0)) + (bin[2 * t + 1] == i ? w[2 * t + 1] : T(0));
  }
  // px_i, summed in t order.
  SG_HD T marginal(int i) const {
    T m = T(0);
    for (int64_t t = 0; t < steps; ++t) m += weight(t, i);
    return m / T(steps);
  }
  // Whether an earlier slot than (t, k) lands on bin i (then that slot owns the bin).
  SG_HD bool owned_before(int64_t t, int k, int i) const {
    for (int64_t s = 0; s <= t; ++s)
      for (int kk = 0; kk < 2; ++kk) {
        if (s == t && kk >= k) return false;
        if (bin[2 * s + kk] == i) return true;
      }
    return false;
  }
};

template <class T>
SG_HD T hist_joint(const HistSlots<T>& x, const HistSlots<T>& z, int i, int j) {
  T m = T(0);
  for (int64_t t = 0; t < x.steps; ++t) m += x.weight(t, i) * z.weight(t, j);
  return m / T(x.steps);
}

// Whether an earlier slot pair than (t, kx, kz) (in t, kx, kz order) lands on cell (i, j).
template <class T>
SG_HD bool hist_cell_owned_before(const HistSlots<T>& x, const HistSlots<T>& z, int64_t t, int kx, int kz, int i,
                                  int j) {
  const int here = kx * 2 + kz;
  for (int64_t s = 0; s <= t; ++s)
    for (int c = 0; c < 4; ++c) {
      if (s == t && c >= here) return false;
      if (x.bin[2 * s + c / 2] == i && z.bin[2 * s + c % 2] == j) return true;
    }
  return false;
}

// Cell c of a sample's forward sweep: c in [0, 2T) are x's slots (t = c/2, k = c%2), [2T, 4T) z's, and
// [4T, 8T) the joint's slot pairs (t = (c-4T)/4). Adds the owned cell's -q log2(q+eps) to h[0..2]
// (x, z, joint). The CPU runs c = 0.. in order; CUDA threads split the range.
template <class T>
SG_HD void hist_entropy_cell(const HistSlots<T>& x, const HistSlots<T>& z, int64_t c, T eps, T* h) {
  const int64_t n = x.steps;
  if (c < 4 * n) {
    const bool zs = c >= 2 * n;
    const HistSlots<T>& side = zs ? z : x;
    const int64_t s = zs ? c - 2 * n : c, t = s / 2;
    const int k = int(s % 2);
    const int i = side.bin[s];
    if (!side.owned_before(t, k, i)) h[zs ? 1 : 0] += kde_entropy_term(side.marginal(i), eps);
    return;
  }
  const int64_t s = c - 4 * n, t = s / 4;
  const int kx = int(s % 4) / 2, kz = int(s % 2);
  const int i = x.bin[2 * t + kx], j = z.bin[2 * t + kz];
  if (!hist_cell_owned_before(x, z, t, kx, kz, i, j)) h[2] += kde_entropy_term(hist_joint(x, z, i, j), eps);
}

// dMI/dv_t / gm for step t of `self` (x or z; `other` is the other side), soft slots, per the header.
template <class T>
SG_HD T hist_step_grad(const HistSlots<T>& self, const HistSlots<T>& other, const T* active, int64_t t, T eps,
                       bool self_is_x) {
  const int lo = self.bin[2 * t], hi = self.bin[2 * t + 1];
  if (lo == hi || active[t] == T(0)) return active[t] == active[t] ? T(0) : active[t];  // NaN propagates
  T d = kde_entropy_grad(self.marginal(hi), eps) - kde_entropy_grad(self.marginal(lo), eps);
  for (int k = 0; k < 2; ++k) {
    const int j = other.bin[2 * t + k];
    const T wj = other.w[2 * t + k];
    const T p_hi = self_is_x ? hist_joint(self, other, hi, j) : hist_joint(other, self, j, hi);
    const T p_lo = self_is_x ? hist_joint(self, other, lo, j) : hist_joint(other, self, j, lo);
    d -= wj * (kde_entropy_grad(p_hi, eps) - kde_entropy_grad(p_lo, eps));
  }
  return active[t] * d / T(self.steps);
}

// ---- CPU reference (float and double) -----------------------------------------------------------------
// stats: (B, kKdeStatCount); mean_mi: one element.
template <class T> void hist_mi_forward_cpu(const T* x, const T* z, T* stats, T* mean_mi, const HistMiParams& p);
// gmean: the upstream gradient of mean_mi (one element). gx/gz: (T,B) or null, accumulated.
template <class T>
void hist_mi_backward_cpu(const T* x, const T* z, const T* gmean, T* gx, T* gz, const HistMiParams& p);

// ---- CUDA, float32; all pointers on the device (gmean too) --------------------------------------------
void hist_mi_forward_cuda(const float* x, const float* z, float* stats, float* mean_mi, const HistMiParams& p);
void hist_mi_backward_cuda(const float* x, const float* z, const float* gmean, float* gx, float* gz,
                           const HistMiParams& p);

}  // namespace spikegrad
