// Input encoders (kernels/encoding.h holds the math): static images in [0,1] -> time-major spike trains. Kept
// out of engine/ops.h like the neuron extension: only models/encoding.cpp calls them.
//
// Neither records a tape node: the spikes are piecewise constant in the pixels, so the true input gradient is
// zero almost everywhere and an attack through them would see none (models/encoding.h says what to do instead).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace spikegrad::ops {

// images (B,C,H,W) float32 -> (T,B,C,H,W) float32 0/1: step t carries bit 7 − (t mod 8) of round(x·255).
Tensor phase_encode(const Tensor& images, int64_t steps);
// images (B,C,H,W) float32 in [0,1] -> (T,B,C,H,W) float32 0/1: a spike where a uniform draw is < x, drawn from
// Philox under a per-example key hashed from the example's pixels and `seed` (same spikes on CPU and CUDA).
Tensor poisson_encode(const Tensor& images, int64_t steps, uint64_t seed);

}  // namespace spikegrad::ops
