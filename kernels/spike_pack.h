// Spikes kept as bytes: a tensor whose values are known to be multiples of 1/levels in [0, 255/levels]
// (spikes: levels = 1; spikes average-pooled over k×k windows: levels = k²) is stored as
// q = x·levels in one uint8 per element, 4× less memory than float32, and read back exactly as q/levels
// (for levels a power of two, q/levels and x·levels are exact in binary floating point, so the round trip
// is bit-exact; the op layer only accepts such levels).
// Used by conv2d to keep its input for the weight gradient (engine/ops.h, Conv2dOptions::input_levels).
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

// CPU: q[i] = x[i]·levels. Returns the index of the first element that is not a level (not an integer
// after scaling, or outside [0,255]), or -1 when all are; q is fully written only when -1 is returned.
template <class T> int64_t pack_levels_cpu(const T* x, uint8_t* q, int64_t n, int levels);
// CPU: x[i] = q[i] / levels.
template <class T> void unpack_levels_cpu(const uint8_t* q, T* x, int64_t n, int levels);

// CUDA, float32. pack rounds to the nearest level and clamps to [0,255] (it does not check: a check
// would need a device-to-host synchronisation per call; the CPU path of the same op checks).
void pack_levels_cuda(const float* x, uint8_t* q, int64_t n, int levels);
void unpack_levels_cuda(const uint8_t* q, float* x, int64_t n, int levels);

}  // namespace spikegrad
