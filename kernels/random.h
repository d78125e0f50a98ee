// Random fills from the Philox counter generator (kernels/philox.h): out[i] = draw(seed, offset + i).
// No backward. Bytes: n·sizeof(T) written.
#pragma once
#include <cstdint>

namespace spikegrad {

template <class T> void rand_uniform_cpu(T* out, int64_t n, uint64_t seed, uint64_t offset);
template <class T> void rand_normal_cpu(T* out, int64_t n, uint64_t seed, uint64_t offset);
void rand_uniform_cuda(float* out, int64_t n, uint64_t seed, uint64_t offset);
void rand_normal_cuda(float* out, int64_t n, uint64_t seed, uint64_t offset);

}  // namespace spikegrad
