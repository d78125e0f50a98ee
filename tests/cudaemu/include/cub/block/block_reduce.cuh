// cudaemu: cub::BlockReduce for the emulated backend. Same contract as CUB's: every thread of the block
// calls it (it contains a barrier), the result is defined in thread 0 only (other threads get NaN/-1
// poison here, so code that reads it elsewhere fails), and the caller synchronises before reusing the
// temporary storage. The sum follows CUB's warp-reductions order: a shuffle-down tree in each warp, then
// the warp totals in order.
#pragma once
#include "cudaemu/device.h"

namespace cub {

enum BlockReduceAlgorithm { BLOCK_REDUCE_RAKING_COMMUTATIVE_ONLY, BLOCK_REDUCE_RAKING, BLOCK_REDUCE_WARP_REDUCTIONS };

struct Sum {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return a + b;
  }
};
struct Max {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};
struct Min {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return b < a ? b : a;
  }
};

template <class T, int BlockDimX, BlockReduceAlgorithm Algorithm = BLOCK_REDUCE_WARP_REDUCTIONS, int BlockDimY = 1,
          int BlockDimZ = 1>
class BlockReduce {
 public:
  static constexpr int kThreads = BlockDimX * BlockDimY * BlockDimZ;
  struct TempStorage {
    T values[kThreads];
  };

  explicit BlockReduce(TempStorage& storage) : storage_(storage) {}

  T Sum(T input) { return Reduce(input, cub::Sum()); }
  T Sum(T input, int num_valid) { return Reduce(input, cub::Sum(), num_valid); }
  template <class Op>
  T Reduce(T input, Op op) {
    return Reduce(input, op, kThreads);
  }
  template <class Op>
  T Reduce(T input, Op op, int num_valid) {
    if (blockDim.x != unsigned(BlockDimX) || blockDim.y != unsigned(BlockDimY) || blockDim.z != unsigned(BlockDimZ))
      ::cudaemu::device_fault(__FILE__, __LINE__, "cub::BlockReduce instantiated for another block shape than the launch's");
    const int tid = int(threadIdx.x + BlockDimX * (threadIdx.y + BlockDimY * threadIdx.z));
    if (tid < num_valid) storage_.values[tid] = input;
    ::cudaemu::syncthreads(__FILE__, __LINE__);
    if (tid != 0) return ::cudaemu::poison_value<T>();
    T total{};
    for (int w = 0; w * 32 < num_valid; ++w) {
      T lane[32];
      const int n = num_valid - w * 32 < 32 ? num_valid - w * 32 : 32;
      for (int l = 0; l < n; ++l) lane[l] = storage_.values[w * 32 + l];
      for (int offset = 16; offset > 0; offset /= 2)
        for (int l = 0; l + offset < n && l < offset; ++l) lane[l] = op(lane[l], lane[l + offset]);
      total = w == 0 ? lane[0] : op(total, lane[0]);
    }
    return total;
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
