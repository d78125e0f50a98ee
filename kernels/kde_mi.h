// KDE mutual information between two rate time series, batched over samples (TMI spec §1.3).
//
// Inputs x, z: (T,B) rates in bin units (time-major, x[t*B+b]); bins have centres i = 0..bins-1
// (spacing 1; the reference uses 256 bins and rates = 255 * firing rate). Per sample b, with s = sigma:
//   Kx[t,i] = exp(-0.5*((x_t - i)/s)^2)             (no 1/(s*sqrt(2pi)): everything is renormalised)
//   m_i = (1/T) sum_t Kx[t,i],  Ux = sum_i m_i,      px_i = m_i / (Ux + eps)       (same for z)
//   J[i,j] = sum_t Kx[t,i] Kz[t,j],  Uxz = sum_ij J,  P_ij = J_ij / (Uxz + eps)
//   H(q) = -sum q log2(q + eps);   MI_b = H(px) + H(pz) - H(P);   output = (1/B) sum_b MI_b
// Backward (spec §1.3), per sample with upstream gm = gmean / B (gmean: dL/d output) and g(q) = dH/dq:
//   g(q) = -(log2(q+eps) + q/((q+eps) ln 2)),  c = sum g(q) q  (one c per entropy, saved by the forward)
//   dMI/dKx[t,i] = gm (g(px_i) - cx) / ((Ux+eps) T)  -  gm sum_j (g(P_ij) - cxz) Kz[t,j] / (Uxz+eps)
//   dMI/dx_t     = sum_i dMI/dKx[t,i] * (-Kx[t,i] (x_t - i) / s^2)                  (z symmetric)
//
// Sparsity, and why the fused result equals the dense formula: Kx[t,i] is exactly 0 in the working
// precision once 0.5((x_t-i)/s)^2 > -ln(denorm_min) + 1 (exp rounds to 0 below half the smallest
// subnormal; the +1 keeps the argument's own rounding harmless). That gives a window radius
// r = s*sqrt(2(-ln denorm_min + 1)): 4.62 bins in float32, 12.36 in float64 at s = 0.32, so each t touches
// at most `window` = floor(2r)+2 bins (capped at `bins`). The joint is then a sum of T outer products on
// rectangles R_t = win_x(t) x win_z(t); every cell outside their union is exactly 0 and contributes
// exactly 0 * log2(eps) = 0 to H, so skipping it is exact. Overlapping rectangles are handled by an owner
// rule: a cell (marginal bin) is evaluated once, by the lowest t whose rectangle (window) contains it, and
// its value is the full sum over all t (same terms, same order as the dense sum). The normalisers come
// from window sums: Ux = (1/T) sum_t Sx_t, Uxz = sum_t Sx_t Sz_t with Sx_t = sum_i Kx[t,i]. Work per sample
// is O(T^2 window^2) instead of O(T bins^2).
//
// Saved by the forward for backward: stats (B, kKdeStatCount) below; the backward recomputes the windows
// and kernel values from x and z (cheaper than storing them). Accumulation: backward does += into gx/gz.
// NaN rates give NaN outputs (as the dense formula); +-inf rates give an all-zero kernel row (as exp(-inf)).
//
// CUDA: one block per sample, windows and kernel values in shared memory; T <= kKdeCudaMaxT and
// 4*T*window floats of shared memory (window = floor(2·4.62)+2 = 11 in float32 at s = 0.32, so T <= 32 always fits).
// Deterministic: fixed per-thread cell assignment and fixed reduction trees, no atomics.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/common.h"
#include "kernels/kde_mi_math.h"  // the stats layout and the math both backends share

namespace spikegrad {

constexpr int kKdeCudaMaxT = 32;
constexpr int kKdeCudaMaxSharedFloats = 48 * 1024 / 4;  // default dynamic shared memory limit

struct KdeMiParams {
  int64_t T = 0, B = 0;
  int bins = 256;
  double sigma = 0.32;
  double eps = 1e-10;
  double radius = 0;  // kernel support in the working precision (see above)
  int window = 0;     // bins per window: floor(2*radius) + 2, at most bins
};

// Fills radius and window for the working precision (float32 or float64).
inline KdeMiParams kde_mi_params(int64_t T, int64_t B, int bins, double sigma, double eps, bool double_precision) {
  KdeMiParams p;
  p.T = T;
  p.B = B;
  p.bins = bins;
  p.sigma = sigma;
  p.eps = eps;
  const double tiny = double_precision ? std::numeric_limits<double>::denorm_min()
                                       : double(std::numeric_limits<float>::denorm_min());
  p.radius = sigma * std::sqrt(2.0 * (-std::log(tiny) + 1.0));
  const double w = std::floor(2.0 * p.radius) + 2.0;
  p.window = w >= double(bins) ? bins : int(w);
  return p;
}

// ---- fused (windowed) path -----------------------------------------------------------------------------
// CPU reference, float and double. stats: (B, kKdeStatCount); mean_mi: one element.
template <class T> void kde_mi_forward_cpu(const T* x, const T* z, T* stats, T* mean_mi, const KdeMiParams& p);
// gmean: the upstream gradient of mean_mi (one element). gx/gz: (T,B) or null, accumulated.
template <class T>
void kde_mi_backward_cpu(const T* x, const T* z, const T* stats, const T* gmean, T* gx, T* gz, const KdeMiParams& p);

// CUDA, float32; all pointers on the device (gmean too: no host round trip).
void kde_mi_forward_cuda(const float* x, const float* z, float* stats, float* mean_mi, const KdeMiParams& p);
void kde_mi_backward_cuda(const float* x, const float* z, const float* stats, const float* gmean, float* gx, float* gz,
                          const KdeMiParams& p);
// mean_mi[0] = (1/B) sum_b stats[b, kKdeMi], one block with a fixed tree (deterministic); used by both
// CUDA formulations.
void kde_mi_batch_mean_cuda(const float* stats, int64_t B, float* mean_mi);

// ---- dense formulation (kernels/kde_mi_dense_cpu.cpp, kernels/kde_mi_dense.cu) ---------------------------
// Straight from the formulas above with full (T,bins) kernels and (bins,bins) joints; the test oracle
// (CPU, double) and the benchmark baseline (CUDA: batched cuBLAS GEMM). stats as the fused path
// (all kKdeStatCount entries). gx/gz may be null (forward only); otherwise accumulated.
template <class T>
void kde_mi_dense_cpu(const T* x, const T* z, T* stats, T* mean_mi, const T* gmean, T* gx, T* gz,
                      const KdeMiParams& p);

// Device workspace for the dense CUDA formulation, in floats: 4*B*T*bins (Kx, Kz, dKx, dKz) + B*bins^2 (joint,
// overwritten by dMI/dJ in the backward).
inline int64_t kde_mi_dense_workspace_floats(const KdeMiParams& p) {
  return 4 * p.B * p.T * p.bins + p.B * int64_t(p.bins) * p.bins;
}
void kde_mi_dense_forward_cuda(const float* x, const float* z, float* stats, float* mean_mi, float* workspace,
                               const KdeMiParams& p);
// Needs the workspace as left by kde_mi_dense_forward_cuda on the same inputs.
void kde_mi_dense_backward_cuda(const float* x, const float* z, const float* stats, const float* gmean, float* gx,
                                float* gz, float* workspace, const KdeMiParams& p);

}  // namespace spikegrad
