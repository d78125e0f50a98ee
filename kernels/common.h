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

// a*b rounded on its own, on both backends. nvcc contracts `a*b + c` into one FMA (one rounding) unless the
// product is an __fmul_rn, which is never fused; the CPU build rounds twice (it is compiled with
// -ffp-contract=off, so the host branch is never fused either). Use it wherever the CPU and CUDA must agree
// bit for bit: every product that feeds a spike's threshold test (neuron potentials, and the inputs they
// are charged with: BN normalise, the channel affine), so a spike cannot flip between the backends
// (pitfall 4). The add after it needs no intrinsic: with an unfused product there is nothing to contract.
SG_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
SG_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
}  // namespace spikegrad
