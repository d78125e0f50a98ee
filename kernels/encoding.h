// Input encoders for static images (models/encoding.h): phase (bit-plane) and Poisson (rate) coding.
//
// Shapes: x (B,M) float32 pixels in [0,1], B examples of M = C·H·W values; y (T,B,M) time-major spikes,
// exactly 0 or 1 (so the first conv can keep its input as bytes, Conv2dOptions::input_levels = 1).
//
// phase   u = pixel_byte(x) = clamp(floor(x·255 + 0.5), 0, 255): round to nearest, which recovers p exactly
//         for x = p/255 (the float product is within an ulp of the integer p). No mean/std normalisation.
//         y[t,b,i] = (u >> (7 − t mod 8)) & 1: the most significant bit first, and the 8 bit-planes start
//         over at t = 8 (T = 10 repeats bits 7 and 6 at t = 8, 9) — the released code's WeightedPhaseEncoder
//         without its weights (gradient_sparsity.md §3).
// poisson key_b = poisson_example_key(x[b,:], seed): a 64-bit hash of the example's float bits, mixed with seed.
//         y[t,b,i] = philox_uniform(t·M + i, key_b) < x[b,i], so P(spike) = x (up to the 2^-24 grid of the draw).
//         Keyed by content: an example's spikes depend on its pixels, T and the seed only — not on its batch, its
//         position in it, or how often it was encoded before — so every call (eval, an attack's clean pass, a
//         resumed run) draws the same spikes for the same example, and CPU and CUDA draw the same numbers.
//
// No backward: the encoded spikes are piecewise constant in x (the derivative is 0 almost everywhere).
// Bytes: phase 4·B·M read + 4·T·B·M written; poisson the same plus a second read of x for the keys.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/common.h"
#include "kernels/philox.h"

namespace spikegrad {

SG_HD uint32_t pixel_byte(float x) {
  const float scaled = floorf(mul_rn(x, 255.f) + 0.5f);  // mul_rn: no FMA, so CPU and CUDA round the same
  return scaled <= 0.f ? 0u : scaled >= 255.f ? 255u : uint32_t(scaled);
}

SG_HD float phase_bit(float x, int64_t t) { return float((pixel_byte(x) >> (7 - int(t % 8))) & 1u); }

SG_HD uint32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
#endif
}

// splitmix64's finaliser: every input bit reaches every output bit.
SG_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// FNV-1a over the 32-bit words of one example, then mixed: the Philox key of that example's draws.
SG_HD uint64_t poisson_example_key(const float* x, int64_t m, uint64_t seed) {
  uint64_t h = 0xCBF29CE484222325ull ^ mix64(seed);
  for (int64_t i = 0; i < m; ++i) h = (h ^ float_bits(x[i])) * 0x100000001B3ull;
  return mix64(h);
}

SG_HD float poisson_spike(float x, uint64_t counter, uint64_t key) { return philox_uniform(counter, key) < x ? 1.f : 0.f; }

// CPU references, float32.
void phase_encode_cpu(const float* x, int64_t steps, int64_t batch, int64_t m, float* y);
void poisson_encode_cpu(const float* x, int64_t steps, int64_t batch, int64_t m, uint64_t seed, float* y);

// CUDA. poisson takes `keys`, caller scratch of poisson_encode_scratch_bytes(batch) bytes (one key per example).
void phase_encode_cuda(const float* x, int64_t steps, int64_t batch, int64_t m, float* y);
inline size_t poisson_encode_scratch_bytes(int64_t batch) { return size_t(batch) * sizeof(uint64_t); }
void poisson_encode_cuda(const float* x, int64_t steps, int64_t batch, int64_t m, uint64_t seed, uint64_t* keys,
                         float* y);

}  // namespace spikegrad
