// conv2d (kernels/conv2d.h) on the CPU for inputs that are mostly zeros — spikes. The forward and the weight
// gradient read x only where it is non-zero, so their work scales with x's density ρ (the fraction of non-zero
// elements) instead of with 1. Spiking layers fire 10–25 % of the time (VGGSNN's layers 2–8 measure
// ρ ≈ 0.15–0.22 in bench_train_step), so most of the dense convolution multiplies by zero. Backward data reads
// gy and w, which are dense: it has nothing to skip and stays on the dense path.
//
// Same math and accumulation rule as kernels/conv2d.h (forward overwrites y, backward ADDS into gw / gb).
// How it works: x is turned, per image and input channel, into the list of its non-zero pixels (position, value),
// built without a branch per element. Weights (forward) and gy (backward weight) are laid out with K innermost,
// so one (input channel, tap) or one output pixel is a contiguous row of K floats. Then
//   forward          gathers: per output pixel, the (channel, tap) rows whose input is non-zero are listed, and
//                    the pixel's outputs are the sum of those weight rows, accumulated in registers 64 output
//                    channels at a time; groups of images share each block of weight rows while it is cached;
//   backward weight  scatters: per chunk of input channels (a thread's own rows of dW, sized to stay in cache),
//                    every (non-zero, tap) pair adds v·gy[n, :, p, q] to dW[c, r, s, :], images in order.
// Tap ranges are computed, not tested per tap: for input row h the taps r that land on an output row are
// r ≡ h + pad (mod stride) between max(0, h + pad − (P−1)·stride) and min(R−1, h + pad).
// Inputs whose non-zeros are all exactly 1 (spikes) take adds only; other values (pooled spikes, any float)
// multiply. Both are exact products of the dense formula; only the summation order differs.
//
// Numerics: every output element is summed by one thread in a fixed order (forward: input channels ascending,
// then the input pixels in raster order; backward weight: images ascending, then channels' pixels in raster
// order), so results are bit-identical run to run and for any thread count, and equal the dense paths to float
// rounding (the reduction order differs). Zeros are skipped, not multiplied: where w or gy holds an Inf or a
// NaN at a position whose x is 0, the dense formula gives NaN (0·Inf) and this path does not. A NaN in x is a
// non-zero and propagates.
//
// Scratch (the K-major copies of w or gy, the lists, per-thread rows) comes from engine/allocator.h's CpuScratch,
// not from the caller as design.md asks of kernels: its size depends on x's non-zero count, known only inside.
//
// When the op uses it (kernels/conv2d_cpu.cpp, float only): on the shapes where it measured faster than the
// dense path at spike densities (conv2d_sparse_*_shape), and then only when x's density, counted on every call,
// is at most kConv2dSparseMaxDensity (conv2d_sparse_pays). The rules and their measurements: docs/perf.md.
#pragma once
#include "kernels/conv2d.h"

namespace spikegrad {

// The densest input the sparse path is used for: the measured crossover against oneDNN lies between 250 and
// 300 ‰ (docs/perf.md).
constexpr double kConv2dSparseMaxDensity = 0.25;
// Below this many input channels the input is an image, or a layer too small for the lists to pay (measured).
constexpr int64_t kConv2dSparseMinChannels = 32;

// Number of non-zero elements (a NaN counts as non-zero). Parallel over chunks.
int64_t count_nonzero_cpu(const float* x, int64_t n);
int64_t count_nonzero_cpu(const uint8_t* q, int64_t n);

// True when an input of shape s with `nonzero` non-zeros is sparse enough (density <= kConv2dSparseMaxDensity).
bool conv2d_sparse_pays(const Conv2dShape& s, int64_t nonzero);
// The shapes where each sparse pass measured faster than the dense path at spike densities (docs/perf.md);
// only for those is x counted at all.
bool conv2d_sparse_forward_shape(const Conv2dShape& s);
bool conv2d_sparse_backward_weight_shape(const Conv2dShape& s);

// y = conv(x, w) + b (b may be null), skipping x's zeros.
void conv2d_forward_sparse_cpu(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s);
// gw += Σ gy·x over the non-zeros of x; gb += Σ gy over n,p,q (gb may be null).
void conv2d_backward_weight_sparse_cpu(const float* x, const float* gy, float* gw, float* gb, const Conv2dShape& s);
// The same with x given as levels (kernels/spike_pack.h, x = x_levels / levels), read as bytes: no float copy.
void conv2d_backward_weight_sparse_packed_cpu(const uint8_t* x_levels, int levels, const float* gy, float* gw,
                                              float* gb, const Conv2dShape& s);

}  // namespace spikegrad
