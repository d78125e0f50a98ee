// Fused log-softmax + negative log-likelihood with integer labels, mean over rows.
//
// logits x (N,K), labels y (N) int32 in [0,K), per row i with m_i = max_k x_ik:
//   r_i    = Σ_{k: x_ik ≠ m_i} exp(x_ik − m_i) + (count of k with x_ik = m_i) − 1     (= Σ_k exp(x_ik − m_i) − 1)
//   ls_i   = log1p(r_i)                                  (= log Σ_k exp(x_ik − m_i))
//   loss_i = (m_i − x_{i,y_i}) + ls_i;   L = (1/N) Σ_i loss_i
// Backward, with z_ik = (x_ik − m_i) − ls_i = log p_ik:
//   gx_ik += (g/N)·exp(z_ik)  for k ≠ y_i,   (g/N)·expm1(z_ik) = (g/N)·(p − 1)  for k = y_i.
// Why not one lse = m + log s: on a confident example (1 − p < 1e-3) lse rounds to an ulp of the largest
// logit, and exp(x − lse) − 1 then carries that ulp divided by 1 − p (a relative error of up to 1e-2 in
// float32). Keeping m and ls apart, summing the small terms apart from the 1 (r, log1p) and taking
// p − 1 as expm1 keeps each gradient within a few ulps of its own size (tests/test_losses.cpp).
// Saved for backward: logits, labels and the row stats (N,2) = (m_i, ls_i); softmax is recomputed, never
// stored. The per-element math is cross_entropy_grad below, shared by both backends.
// Labels: the CPU caller range-checks them before the call. The CUDA forward checks each label as it reads
// it: a label outside [0,K) gives that row a NaN loss (nothing is read out of bounds) and is recorded into
// `labels_check`, a deferred device check (engine/cuda_context.h) that the glue turns into its error at the
// next synchronisation. Backward only compares labels with column indices, so it needs no check.
#pragma once
#include <cstdint>

#include <cmath>

#include "engine/cuda_context.h"
#include "kernels/common.h"

namespace spikegrad {

// d loss_i / d x_ik for one element: x the logit, (m, ls) its row's stats, is_label whether k = y_i.
template <class T>
SG_HD T cross_entropy_grad(T x, T m, T ls, bool is_label) {
  using std::exp;
  using std::expm1;
  const T z = (x - m) - ls;
  return is_label ? expm1(z) : exp(z);
}

// Writes per-row losses (N) and row stats (N,2): (max, log Σ exp(x − max)).
template <class T> void cross_entropy_forward_cpu(const T* x, const int32_t* y, T* loss, T* stats, int64_t n, int64_t k);
// gy points to the scalar upstream gradient of the mean loss.
template <class T>
void cross_entropy_backward_cpu(const T* x, const int32_t* y, const T* stats, const T* gy, T* gx, int64_t n, int64_t k);

void cross_entropy_forward_cuda(const float* x, const int32_t* y, float* loss, float* stats, int64_t n, int64_t k,
                                const DeviceCheck& labels_check);
void cross_entropy_backward_cuda(const float* x, const int32_t* y, const float* stats, const float* gy, float* gx,
                                 int64_t n, int64_t k);

}  // namespace spikegrad
