// Entropy of the softmax of each row of logits: the output-entropy regulariser (the paper's -H baseline).
//
// Math, per row n of logits a (N,K), natural log (nats):
//   lse_n = log sum_k exp(a_nk)      (computed as max + log sum exp(a - max))
//   p_nk = exp(a_nk - lse_n),  H_n = -sum_k p_nk (a_nk - lse_n)      (log p written as a - lse: finite
//   even where p underflows to 0, so such terms are exactly 0 instead of 0 * -inf = NaN)
// Backward (accumulating, +=): dH_n/da_nk = -p_nk (log p_nk + H_n), so ga_nk += g_n * that.
// Saved for backward: lse (N) and H (N); p is recomputed from the logits.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

// CPU reference, float and double. h and lse: (N).
template <class T> void softmax_entropy_forward_cpu(const T* logits, T* h, T* lse, int64_t N, int64_t K);
template <class T>
void softmax_entropy_backward_cpu(const T* logits, const T* h, const T* lse, const T* gh, T* glogits, int64_t N,
                                  int64_t K);

// CUDA, float32: one warp per row.
void softmax_entropy_forward_cuda(const float* logits, float* h, float* lse, int64_t N, int64_t K);
void softmax_entropy_backward_cuda(const float* logits, const float* h, const float* lse, const float* gh,
                                   float* glogits, int64_t N, int64_t K);

}  // namespace spikegrad
