// Per-channel affine map on (N,C,S) data (S = H·W, or 1): y[n,c,s] = x[n,c,s]·scale[c] + shift[c].
// The models' first op: dataset normalisation (x − mean)/std with scale = 1/std, shift = −mean/std, so
// images stay in [0,1] everywhere outside the model and attacks work in pixel space.
// Backward (accumulating): gx[n,c,s] += gy[n,c,s]·scale[c]. scale and shift are constants (no gradient).
// Saved for backward: scale only. Bytes: 2·N·C·S·sizeof(T) each way.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

// y for one element, on both backends. mul_rn keeps nvcc from fusing it into an FMA, so the normalised image
// (the first conv's input) is the same bit for bit on the CPU and CUDA.
template <class T> SG_HD T channel_affine_value(T x, T scale, T shift) { return mul_rn(x, scale) + shift; }

template <class T>
void channel_affine_forward_cpu(const T* x, const T* scale, const T* shift, T* y, int64_t n, int64_t c, int64_t s);
template <class T> void channel_affine_backward_cpu(const T* gy, const T* scale, T* gx, int64_t n, int64_t c, int64_t s);

void channel_affine_forward_cuda(const float* x, const float* scale, const float* shift, float* y, int64_t n, int64_t c,
                                 int64_t s);
void channel_affine_backward_cuda(const float* gy, const float* scale, float* gx, int64_t n, int64_t c, int64_t s);

}  // namespace spikegrad
