// Deterministic warp and block reductions: the one implementation every hand-written CUDA reduction uses.
// Include only from .cu/.cuh files.
//
// Order (fixed, so a given block size always gives the same bits, run after run and under every thread order
// of the emulated backend):
//   1. within a warp, a butterfly: step o = 16, 8, 4, 2, 1 combines lane l with lane l^o. Lane 0 then holds
//      op over the 32 lanes in the same tree as a shuffle-down reduction (and as the emulated CUB's warp
//      stage), and since each step's op is commutative every lane holds the same bits;
//   2. across warps, the warp totals in warp order: ((w0 op w1) op w2) ..., computed by every thread from
//      shared memory, so the result is valid in every thread (no separate broadcast).
// Block functions must be called by every thread of the block (they contain barriers) with a block of
// exactly kThreads threads, a multiple of 32; threads are numbered x fastest, then y, then z, so a (32, 8)
// block is 8 warps of 32 x-consecutive threads. They end with a barrier, so calls can follow each other
// without one. Several values reduced in one call (block_reduce_each) cost one pair of barriers for all of
// them, each value in the order above.
#pragma once
#include <cuda_runtime.h>

#include <cmath>

namespace spikegrad {

constexpr unsigned kFullWarpMask = 0xffffffffu;

struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};
// fmax semantics: a NaN operand is skipped (the other one wins), as fmaxf does.
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
  __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};

// op over the 32 lanes of the warp, the same bits in every lane. The whole warp must call it.
template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(kFullWarpMask, v, offset));
  return v;
}
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  return warp_reduce(v, SumOp{});
}
template <class T>
__device__ __forceinline__ T warp_max(T v) {
  return warp_reduce(v, MaxOp{});
}

namespace block_reduce_detail {
// The thread's index in the block, x fastest (CUDA's warp numbering).
__device__ __forceinline__ int flat_thread_index() {
  return int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
}
}  // namespace block_reduce_detail

// Bytes of static shared memory one block_reduce<kThreads> call site of N values of T uses (for kernels
// that budget their shared memory).
template <int kThreads, int N, class T>
constexpr size_t block_reduce_shared_bytes() {
  return sizeof(T) * size_t(N) * size_t(kThreads / 32);
}

// values[v] <- op over the block of values[v], for each v, in every thread.
template <int kThreads, class T, int N, class Op>
__device__ __forceinline__ void block_reduce_each(T (&values)[N], Op op) {
  static_assert(kThreads % 32 == 0 && kThreads >= 32 && kThreads <= 1024,
                "block_reduce_each: the block must be 32..1024 threads, a multiple of the warp size");
  constexpr int kWarps = kThreads / 32;
  __shared__ T warp_totals[N][kThreads / 32];
  const int tid = block_reduce_detail::flat_thread_index();
#pragma unroll
  for (int v = 0; v < N; ++v) values[v] = warp_reduce(values[v], op);
  if ((tid & 31) == 0) {
#pragma unroll
    for (int v = 0; v < N; ++v) warp_totals[v][tid >> 5] = values[v];
  }
  __syncthreads();
#pragma unroll
  for (int v = 0; v < N; ++v) {
    T total = warp_totals[v][0];
    for (int w = 1; w < kWarps; ++w) total = op(total, warp_totals[v][w]);
    values[v] = total;
  }
  __syncthreads();  // the next call may overwrite warp_totals
}

// op over the block of v, in every thread.
template <int kThreads, class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op) {
  T values[1] = {v};
  block_reduce_each<kThreads>(values, op);
  return values[0];
}
template <int kThreads, class T>
__device__ __forceinline__ T block_sum(T v) {
  return block_reduce<kThreads>(v, SumOp{});
}
template <int kThreads, class T>
__device__ __forceinline__ T block_max(T v) {
  return block_reduce<kThreads>(v, MaxOp{});
}

// Lane-wise across the warps: returns, in every thread of lane l, op over the warps w = 0, 1, ... (in that
// order) of the value lane l of warp w passed. For blocks whose lanes own columns and whose warps split
// rows (a column sum with coalesced row reads).
template <int kThreads, class T, class Op>
__device__ __forceinline__ T block_reduce_across_warps(T v, Op op) {
  static_assert(kThreads % 32 == 0 && kThreads >= 32 && kThreads <= 1024,
                "block_reduce_across_warps: the block must be 32..1024 threads, a multiple of the warp size");
  constexpr int kWarps = kThreads / 32;
  __shared__ T lane_values[kThreads / 32][32];
  const int tid = block_reduce_detail::flat_thread_index();
  lane_values[tid >> 5][tid & 31] = v;
  __syncthreads();
  T total = lane_values[0][tid & 31];
  for (int w = 1; w < kWarps; ++w) total = op(total, lane_values[w][tid & 31]);
  __syncthreads();  // the next call may overwrite lane_values
  return total;
}

}  // namespace spikegrad
