// Weighted sum of `count` same-shaped tensors of n elements each (SNN-RAT's ConvexCombination):
//
//   forward:  y[j] = Σ_{i=0..count−1} w[i]·x_i[j], i ascending, starting from w[0]·x_0[j]; each product is
//             rounded on its own (mul_rn), so both backends give the same bits — the sum may feed a neuron's
//             threshold test.
//   backward: gx_i[j] += w[i]·gy[j]                (elementwise, for each wanted x_i)
//             gw[i]   += Σ_j gy[j]·x_i[j]          (one reduction per weight)
// Saved for backward: nothing computed; the glue keeps the x_i (only when the weights want a gradient) and w.
// The weights stay in device memory and the kernels read them there, so neither pass synchronises the host.
// Determinism: the weight reduction has a fixed order that depends on n only. CPU: partials over chunks of
// kWeightedSumCpuChunk elements in double, summed in chunk order. CUDA: `splits` blocks (a function of n), each
// thread sums its grid-stride elements, then the block tree of kernels/block_reduce.cuh; a finishing block
// per weight sums the partials in order.
// Bytes moved: forward (count+1)·n·4; backward count·n·4 (x_i, for gw) + n·4 (gy) + 2·n·4 per wanted gx_i.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

constexpr int64_t kWeightedSumCpuChunk = 1 << 14;

// CPU reference, instantiated for float and double. xs: count pointers. Backward: gxs may be null, and so may
// any of its entries (that gradient is not wanted); gw may be null, and xs is read only when it is not.
template <class T> void weighted_sum_forward_cpu(const T* const* xs, int64_t count, const T* w, T* y, int64_t n);
template <class T>
void weighted_sum_backward_cpu(const T* const* xs, int64_t count, const T* w, const T* gy, T* const* gxs, T* gw,
                               int64_t n);

// CUDA, float32. xs and gxs are host arrays of device pointers (any count: the launchers pass at most
// kWeightedSumInputsPerLaunch pointers per launch by value); w, y, gy, gw are device pointers.
// Backward scratch: weighted_sum_backward_cuda_scratch_bytes(count, n) bytes of device memory from the caller
// (none when gw is null).
constexpr int kWeightedSumInputsPerLaunch = 8;
void weighted_sum_forward_cuda(const float* const* xs, int64_t count, const float* w, float* y, int64_t n);
size_t weighted_sum_backward_cuda_scratch_bytes(int64_t count, int64_t n);
void weighted_sum_backward_cuda(const float* const* xs, int64_t count, const float* w, const float* gy,
                                float* const* gxs, float* gw, int64_t n, void* scratch, size_t scratch_bytes);

}  // namespace spikegrad
