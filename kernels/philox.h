// Philox-4x32-10 (Salmon et al., SC'11): a counter-based generator. Written once for host and device
// so both backends draw identical bits. Element i of a draw uses counter (offset + i) and key = seed.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

struct Philox4 {
  uint32_t v[4];
};

SG_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  hi = uint32_t(p >> 32);
  lo = uint32_t(p);
}

// The full generator: a 128-bit counter block and a 64-bit key (k0, k1), as in the paper and Random123
// (tests pin its published known-answer vectors).
SG_HD Philox4 philox4x32_10_block(Philox4 counter, uint32_t k0, uint32_t k1) {
  uint32_t c0 = counter.v[0], c1 = counter.v[1], c2 = counter.v[2], c3 = counter.v[3];
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// What the engine draws from: the counter's upper 64 bits are zero, the seed is the key.
SG_HD Philox4 philox4x32_10(uint64_t counter, uint64_t seed) {
  return philox4x32_10_block({{uint32_t(counter), uint32_t(counter >> 32), 0u, 0u}}, uint32_t(seed), uint32_t(seed >> 32));
}

// Exact on both backends: 24 random bits scaled by 2^-24, in [0,1).
SG_HD float philox_uniform(uint64_t counter, uint64_t seed) {
  return float(philox4x32_10(counter, seed).v[0] >> 8) * (1.0f / 16777216.0f);
}

// Box-Muller in double from two words of one Philox block; u1 in (0,1] so the log is finite.
// Double math keeps host and device results equal after rounding to float in practice.
SG_HD double philox_normal(uint64_t counter, uint64_t seed) {
  Philox4 r = philox4x32_10(counter, seed);
  double u1 = (double(r.v[0] >> 8) + 1.0) * (1.0 / 16777216.0);
  double u2 = double(r.v[1] >> 8) * (1.0 / 16777216.0);
  using std::cos;
  using std::log;
  using std::sqrt;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

}  // namespace spikegrad
