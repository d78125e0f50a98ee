// Fused log-softmax + negative log-likelihood with integer labels, mean over rows.
//
// logits x (N,K), labels y (N) int32 in [0,K):
//   lse_i  = max_k x_ik + log Σ_k exp(x_ik − max_k x_ik)      (stable log-sum-exp)
//   loss_i = lse_i − x_{i,y_i};      L = (1/N) Σ_i loss_i
// Backward: gx_ik += (g/N)·(exp(x_ik − lse_i) − [k == y_i]).
// Saved for backward: logits, labels and lse (N floats) — softmax is recomputed, never stored.
// Labels: the CPU caller range-checks them before the call. The CUDA forward checks each label as it reads
// it: a label outside [0,K) gives that row a NaN loss (nothing is read out of bounds) and is recorded into
// `labels_check`, a deferred device check (engine/cuda_context.h) that the glue turns into its error at the
// next synchronisation. Backward only compares labels with column indices, so it needs no check.
#pragma once
#include <cstdint>

#include "engine/cuda_context.h"

namespace spikegrad {

// Writes per-row losses (N) and lse (N).
template <class T> void cross_entropy_forward_cpu(const T* x, const int32_t* y, T* loss, T* lse, int64_t n, int64_t k);
// gy points to the scalar upstream gradient of the mean loss.
template <class T>
void cross_entropy_backward_cpu(const T* x, const int32_t* y, const T* lse, const T* gy, T* gx, int64_t n, int64_t k);

void cross_entropy_forward_cuda(const float* x, const int32_t* y, float* loss, float* lse, int64_t n, int64_t k,
                                const DeviceCheck& labels_check);
void cross_entropy_backward_cuda(const float* x, const int32_t* y, const float* lse, const float* gy, float* gx, int64_t n,
                                 int64_t k);

}  // namespace spikegrad
