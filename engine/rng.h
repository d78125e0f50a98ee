// Counter-based random numbers (Philox-4x32-10). Element i of a draw is a pure function of
// (seed, offset + i), so the CPU and CUDA backends produce the same numbers for the same generator
// state, any draw can be re-created, and checkpoints store just (seed, offset).
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace spikegrad {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves n counters and returns the first; successive draws never overlap.
  uint64_t reserve(uint64_t n) {
    uint64_t start = offset_;
    offset_ += n;
    return start;
  }
  // Host-side scalar draws (data shuffling, augmentation): one counter each.
  uint32_t next_u32();
  double next_uniform();  // [0,1)

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// Fresh tensors of i.i.d. draws; float32 on either device, float64 on the CPU.
Tensor rand_uniform(const Shape& shape, Generator& gen, Device device = Device::CPU, DType dtype = DType::F32);  // [0,1)
Tensor rand_normal(const Shape& shape, Generator& gen, Device device = Device::CPU, DType dtype = DType::F32);   // N(0,1)

}  // namespace spikegrad
