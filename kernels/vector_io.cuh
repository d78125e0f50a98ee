// 128-bit packed loads and stores: the one implementation of the float4 fast paths of memory-bound kernels.
// Include only from .cu/.cuh files.
//
// A float4 access must be 16-byte aligned (a misaligned one faults on a GPU, and in the emulated backend),
// and a tensor view may start anywhere (a slice at offset 1 float), so every packed path checks the
// address and falls back to floats. strided_for_each hides that choice: the caller writes one loop body
// for a float4 and for a float (for_each_float visits a pack's floats in memory order).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

// True when p may be accessed as a float4.
SG_HD bool is_aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// True when every row of a row-major (rows, row_len) float array at p starts 16-byte aligned and is a
// whole number of float4s, so a kernel may read each row as float4 only (no per-row check, no tail).
SG_HD bool rows_are_packed4(const float* p, int64_t row_len) { return row_len % 4 == 0 && is_aligned16(p); }

// p must be 16-byte aligned.
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, const float4& v) { *reinterpret_cast<float4*>(p) = v; }

// f(x) for each float of a pack in memory order; a lone float is a pack of one.
template <class F>
__device__ __forceinline__ void for_each_float(float v, F&& f) {
  f(v);
}
template <class F>
__device__ __forceinline__ void for_each_float(const float4& v, F&& f) {
  f(v.x);
  f(v.y);
  f(v.z);
  f(v.w);
}
// f(a, b) for each pair of same-position floats of two packs.
template <class F>
__device__ __forceinline__ void for_each_float_pair(float a, float b, F&& f) {
  f(a, b);
}
template <class F>
__device__ __forceinline__ void for_each_float_pair(const float4& a, const float4& b, F&& f) {
  f(a.x, b.x);
  f(a.y, b.y);
  f(a.z, b.z);
  f(a.w, b.w);
}

namespace vector_io_detail {
// f(x[k]) for k = first, first + stride, ... < n, kUnroll loads in flight before the calls.
template <int kUnroll, class V, class F>
__device__ __forceinline__ void strided_walk(const V* __restrict__ x, int64_t n, int64_t first, int64_t stride, F& f) {
  int64_t k = first;
  for (; k + (kUnroll - 1) * stride < n; k += kUnroll * stride) {
    V v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = x[k + u * stride];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) f(v[u]);
  }
  for (; k < n; k += stride) f(x[k]);
}
}  // namespace vector_io_detail

// Thread `first` of `stride` cooperating threads visits x[0, n). When x is 16-byte aligned: f(float4) for
// packs first, first + stride, ... of the n / 4 whole packs, then f(float) for its share of the last n % 4
// floats; otherwise f(float) for floats first, first + stride, .... Per thread the order is fixed, so a sum
// built in f is deterministic. kUnroll loads are issued before f runs on them (memory-level parallelism
// for kernels with few blocks per SM).
template <int kUnroll = 1, class F>
__device__ __forceinline__ void strided_for_each(const float* __restrict__ x, int64_t n, int64_t first, int64_t stride,
                                                 F&& f) {
  static_assert(kUnroll >= 1, "strided_for_each: kUnroll must be >= 1");
  if (is_aligned16(x)) {
    const int64_t packs = n / 4;
    vector_io_detail::strided_walk<kUnroll>(reinterpret_cast<const float4*>(x), packs, first, stride, f);
    for (int64_t k = 4 * packs + first; k < n; k += stride) f(x[k]);
  } else {
    vector_io_detail::strided_walk<kUnroll>(x, n, first, stride, f);
  }
}

}  // namespace spikegrad
