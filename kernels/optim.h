// Optimizer updates and the global gradient norm, on contiguous buffers of n elements.
//
// SGD (torch.optim.SGD, maximize=False), per element, with d = g:
//   d += wd * p                                  (weight_decay != 0: L2 folded into the gradient)
//   momentum != 0:  buf = d on the parameter's first step (PyTorch clones d_p; dampening is ignored),
//                   else buf = momentum * buf + (1 - dampening) * d
//                   d = nesterov ? d + momentum * buf : buf
//   p -= lr * d
// Adam / AdamW (torch.optim.Adam / AdamW, amsgrad=False), per element, at the parameter's step t >= 1:
//   AdamW: p *= 1 - lr * wd (decoupled decay, applied before the update)    Adam: g += wd * p (L2)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The per-step scalars (bias corrections, decay factor) are computed once on the host in double and
// passed in, so a kernel reads p, g and the state once and writes p and the state once:
//   bytes per element, float32: SGD with momentum 3 reads + 2 writes, Adam 4 reads + 3 writes.
// Global norm (clip_grad_norm): sum of squares accumulated in double. The CUDA version is a two-pass
// reduction with a grid that depends only on n and a fixed tree order, so the result is bit-identical
// from run to run; the CPU version sums fixed-size chunks in index order for the same reason.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

template <class T>
struct SgdScalars {
  T lr;
  T momentum;   // 0: no momentum buffer (buf may be null)
  T dampening;
  T weight_decay;
  bool nesterov;
  bool first_step;  // this parameter has never been updated: buf = d
};

template <class T>
struct AdamScalars {
  T beta1;
  T beta2;
  T eps;
  T l2;         // Adam's weight_decay (added to the gradient); 0 for AdamW
  T decay;      // AdamW's 1 - lr * weight_decay; 1 for Adam
  T step_size;  // lr / (1 - beta1^t)
  T bc2_sqrt;   // sqrt(1 - beta2^t)
};

SG_HD float sg_sqrt(float x) { return sqrtf(x); }
SG_HD double sg_sqrt(double x) { return sqrt(x); }

// buf is null exactly when s.momentum == 0.
template <class T>
SG_HD void sgd_element(T& p, T g, T* buf, const SgdScalars<T>& s) {
  T d = g;
  if (s.weight_decay != T(0)) d += s.weight_decay * p;
  if (buf) {
    T b = s.first_step ? d : s.momentum * *buf + (T(1) - s.dampening) * d;
    *buf = b;
    d = s.nesterov ? d + s.momentum * b : b;
  }
  p -= s.lr * d;
}

template <class T>
SG_HD void adam_element(T& p, T g, T& m, T& v, const AdamScalars<T>& s) {
  if (s.l2 != T(0)) g += s.l2 * p;
  m = s.beta1 * m + (T(1) - s.beta1) * g;
  v = s.beta2 * v + (T(1) - s.beta2) * g * g;
  const T denom = sg_sqrt(v) / s.bc2_sqrt + s.eps;
  p = p * s.decay - s.step_size * (m / denom);
}

// CPU reference, instantiated for float and double. buf is null when momentum == 0.
template <class T> void sgd_step_cpu(T* p, const T* g, T* buf, int64_t n, const SgdScalars<T>& s);
template <class T> void adam_step_cpu(T* p, const T* g, T* m, T* v, int64_t n, const AdamScalars<T>& s);
// Sum of x[i]^2 in double, deterministic (chunks of fixed size summed in order).
template <class T> double sum_squares_cpu(const T* x, int64_t n);

// CUDA, float32. Asynchronous (default stream).
void sgd_step_cuda(float* p, const float* g, float* buf, int64_t n, const SgdScalars<float>& s);
void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars<float>& s);
// Multi-tensor updates: one launch for up to kMultiTensorMax tensors (a VGG has 34-38 parameter tensors, so a
// whole model), instead of one launch per tensor — most tensors of a network are biases and BN parameters of
// a few hundred elements, whose per-launch cost (several µs each) dominates their update. The descriptors
// travel by value in the kernel parameters (under 4 KB). Each block takes chunks of kMultiTensorChunk
// elements that never straddle two tensors; per element the arithmetic is sgd_element / adam_element, so
// the result is bit-identical to the per-tensor kernels. Per-tensor scalars carry what differs between
// tensors (the parameter's own step count t).
constexpr int kMultiTensorMax = 40;
constexpr int64_t kMultiTensorChunk = 16384;
struct AdamTensorArgs {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
  float step_size;  // lr / (1 - beta1^t) for this tensor's t
  float bc2_sqrt;   // sqrt(1 - beta2^t)
};
struct SgdTensorArgs {
  float* p;
  const float* g;
  float* buf;  // null without momentum
  int64_t n;
  bool first_step;
};
// `shared` supplies the scalars common to all tensors (step_size, bc2_sqrt / first_step are per tensor).
void adam_multi_step_cuda(const AdamTensorArgs* tensors, int count, const AdamScalars<float>& shared);
void sgd_multi_step_cuda(const SgdTensorArgs* tensors, int count, const SgdScalars<float>& shared);

// Pass 1: writes sum_squares_partial_count(n) partial sums of x[i]^2 to partials (one per block; n may be 0).
int64_t sum_squares_partial_count(int64_t n);
void sum_squares_partials_cuda(const float* x, int64_t n, double* partials);
// Pass 2: out[0] = sum of partials[0..count), in a fixed order (one block).
void sum_partials_cuda(const double* partials, int64_t count, double* out);

}  // namespace spikegrad
