// Shared helpers for kernels: the host/device qualifier for math written once for both backends.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define SG_HD __host__ __device__ __forceinline__
#else
#define SG_HD inline
#endif

namespace spikegrad {
inline constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace spikegrad
