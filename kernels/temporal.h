// Time-axis ops on the time-major layout (T, B, ...). M = number of elements of one time step.
//
// repeat_time: y[t·M + i] = x[i] for t < T               backward: gx[i] += Σ_t gy[t·M + i]
// mean_time:   y[i] = (1/T) Σ_t x[t·M + i]               backward: gx[t·M + i] += gy[i] / T
// swap_leading_dims: (A,B,...) -> (B,A,...): y[(b·A + a)·M + i] = x[(a·B + b)·M + i], M = numel / (A·B)
//                   backward: gx[(a·B + b)·M + i] += gy[(b·A + a)·M + i]. Turns batch-major event frames
//                   (B,T,C,H,W) into the engine's time-major layout.
// Saved for backward: nothing but the sizes (all three ops are linear).
// Bytes: repeat (1 + T)·M·sizeof(T) forward; mean the same in the other direction; swap 2·numel·sizeof(T).
#pragma once
#include <cstdint>

namespace spikegrad {

template <class T> void repeat_time_forward_cpu(const T* x, T* y, int64_t steps, int64_t m);
template <class T> void repeat_time_backward_cpu(const T* gy, T* gx, int64_t steps, int64_t m);
template <class T> void mean_time_forward_cpu(const T* x, T* y, int64_t steps, int64_t m);
template <class T> void mean_time_backward_cpu(const T* gy, T* gx, int64_t steps, int64_t m);

template <class T> void swap_leading_dims_forward_cpu(const T* x, T* y, int64_t a, int64_t b, int64_t m);
template <class T> void swap_leading_dims_backward_cpu(const T* gy, T* gx, int64_t a, int64_t b, int64_t m);

void repeat_time_forward_cuda(const float* x, float* y, int64_t steps, int64_t m);
void repeat_time_backward_cuda(const float* gy, float* gx, int64_t steps, int64_t m);
void mean_time_forward_cuda(const float* x, float* y, int64_t steps, int64_t m);
void mean_time_backward_cuda(const float* gy, float* gx, int64_t steps, int64_t m);
void swap_leading_dims_forward_cuda(const float* x, float* y, int64_t a, int64_t b, int64_t m);
void swap_leading_dims_backward_cuda(const float* gy, float* gx, int64_t a, int64_t b, int64_t m);

}  // namespace spikegrad
