// Caching allocators, one per device. A training step allocates the same sizes every iteration, so
// freed blocks are parked in a size-keyed cache and handed out again: once warm, a step makes no
// cudaMalloc/cudaFree (and no malloc/free of tensor storage on the CPU). Blocks are never split, which
// keeps the bookkeeping tiny; sizes are rounded (512 B below 1 MiB, 2 MiB above) so that near sizes share.
// All CUDA work runs on the default stream, so a block released here is safe to reuse in stream order.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>

#include "engine/dtype.h"

namespace spikegrad {

struct AllocatorStats {
  size_t current_bytes = 0;   // bytes handed out to live tensors (rounded sizes)
  size_t peak_bytes = 0;      // maximum of current_bytes since the last reset_peak()
  size_t reserved_bytes = 0;  // bytes held from the system: live + cached
  size_t system_allocs = 0;   // calls to malloc / cudaMalloc
  size_t system_frees = 0;    // calls to free / cudaFree
  size_t cache_hits = 0;      // allocations served from the cache
};

class CachingAllocator {
 public:
  explicit CachingAllocator(Device device) : device_(device) {}
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  struct Block {
    void* ptr = nullptr;
    size_t size = 0;  // the block's real size (>= the request); pass it back to release()
  };
  // Returns a block of at least `bytes` (64-byte aligned on the CPU, 256 on CUDA). bytes == 0 is allowed.
  Block allocate(size_t bytes);
  // Returns a block from allocate() to the cache.
  void release(Block block);
  // Gives every cached (not live) block back to the system.
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();

  static size_t round_size(size_t bytes);

 private:
  void* system_alloc(size_t bytes);
  void system_free(void* ptr);

  Device device_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> cache_;  // rounded size -> free block
  AllocatorStats stats_;
};

CachingAllocator& allocator(Device device);

}  // namespace spikegrad
