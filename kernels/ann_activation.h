// The activations of ANN mode (reference.md §5.3, the attacks' --attack-grad ann-relu | ann-qcfs): the same
// weights run as an artificial network, each spiking neuron replaced by one of these, on contiguous buffers.
//
// Math (per element i):
//   relu  y = max(a, 0)                                   backward ga += g·[a > 0]        (PyTorch's ReLU)
//   qcfs  y = floor(clamp(a/θ, 0, 1)·L + 1/2)/L · θ        backward ga += g·[0 <= a <= θ]
// QCFS (quantisation-clip-floor-shift, Bu et al. 2022; the [RGA]/[FEEL]/[TG] attack code) is the firing rate
// an IF neuron with threshold θ reaches in L steps; its floor has a straight-through gradient, so the
// backward is the clamp's (inclusive at both bounds, as torch.clamp). Saved for backward: a.
// Bytes moved: forward 2n·sizeof(T), backward 3n·sizeof(T).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

template <class T> SG_HD T relu_value(T a) { return a > T(0) ? a : T(0); }
template <class T> SG_HD T relu_grad(T a, T g) { return a > T(0) ? g : T(0); }
SG_HD float ann_floor(float v) { return floorf(v); }
SG_HD double ann_floor(double v) { return floor(v); }
template <class T> SG_HD T qcfs_value(T a, T theta, int levels) {
  T r = a / theta;
  r = r < T(0) ? T(0) : (r > T(1) ? T(1) : r);
  return ann_floor(r * T(levels) + T(0.5)) / T(levels) * theta;
}
template <class T> SG_HD T qcfs_grad(T a, T theta, T g) { return (a >= T(0) && a <= theta) ? g : T(0); }

// CPU reference, instantiated for float and double.
template <class T> void relu_forward_cpu(const T* a, T* y, int64_t n);
template <class T> void relu_backward_cpu(const T* a, const T* gy, T* ga, int64_t n);
template <class T> void qcfs_forward_cpu(const T* a, T theta, int levels, T* y, int64_t n);
template <class T> void qcfs_backward_cpu(const T* a, T theta, const T* gy, T* ga, int64_t n);

// CUDA, float32.
void relu_forward_cuda(const float* a, float* y, int64_t n);
void relu_backward_cuda(const float* a, const float* gy, float* ga, int64_t n);
void qcfs_forward_cuda(const float* a, float theta, int levels, float* y, int64_t n);
void qcfs_backward_cuda(const float* a, float theta, const float* gy, float* ga, int64_t n);

}  // namespace spikegrad
