// Full reductions to a scalar.
//
// sum:  y = Σ_i x[i]          backward: gx[i] += scale·gy  with scale = 1
// mean: y = (1/n) Σ_i x[i]    backward: the same with scale = 1/n  (mean is sum scaled by the caller)
// Saved for backward: nothing but n. The upstream gradient is read from device memory by the
// backward kernel itself, so no host synchronisation happens in backward.
// CPU float sums accumulate in double; CUDA uses CUB's DeviceReduce (deterministic for a fixed size).
#pragma once
#include <cstddef>
#include <cstdint>

namespace spikegrad {

template <class T> T sum_cpu(const T* x, int64_t n);
template <class T> void broadcast_add_cpu(const T* gy, T scale, T* gx, int64_t n);  // gx[i] += scale * gy[0]

// Writes the sum of x to y[0] (device pointers). `scratch`/`scratch_bytes`: temporary device memory;
// call with scratch == nullptr to get the size needed in scratch_bytes.
void sum_cuda(const float* x, float* y, int64_t n, void* scratch, size_t& scratch_bytes);
void broadcast_add_cuda(const float* gy, float scale, float* gx, int64_t n);

}  // namespace spikegrad
