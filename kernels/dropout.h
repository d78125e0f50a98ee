// Inverted dropout with a mask drawn from the counter-based generator (kernels/philox.h).
//
// Math (per element i of n, probability p in [0,1), scale = 1/(1−p)):
//   keep_i = philox_uniform(offset + i, seed) >= p      (a draw is exactly m·2^-24, compared in double)
//   y_i    = keep_i ? x_i·scale : 0
// Backward (accumulating): dx_i += keep_i ? dy_i·scale : 0.
// Saved for backward: only (seed, offset, p) — 24 bytes. The mask is recomputed from the counters, so
// no n-byte mask is stored and the CPU and CUDA backends draw the very same mask for the same state.
// Bytes moved: forward 2n·sizeof(T) (read x, write y); backward 2n–3n (read dy, read-modify-write dx).
#pragma once
#include <cstdint>

#include "kernels/common.h"
#include "kernels/philox.h"

namespace spikegrad {

SG_HD bool dropout_keep(uint64_t counter, uint64_t seed, double p) { return double(philox_uniform(counter, seed)) >= p; }

// CPU reference, instantiated for float and double. `scale` is 1/(1−p) in T.
template <class T> void dropout_forward_cpu(const T* x, int64_t n, double p, T scale, uint64_t seed, uint64_t offset, T* y);
template <class T> void dropout_backward_cpu(const T* gy, int64_t n, double p, T scale, uint64_t seed, uint64_t offset, T* gx);

// CUDA, float32.
void dropout_forward_cuda(const float* x, int64_t n, double p, float scale, uint64_t seed, uint64_t offset, float* y);
void dropout_backward_cuda(const float* gy, int64_t n, double p, float scale, uint64_t seed, uint64_t offset, float* gx);

}  // namespace spikegrad
