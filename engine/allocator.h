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
  size_t oom_retries = 0;     // system allocations that failed, emptied the cache and were retried
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
  // When the system refuses (out of memory, or past reserve_limit), every cached block is given back and
  // the allocation retried once; if it still fails, the error names the request, the live and cached bytes.
  Block allocate(size_t bytes);
  // Returns a block from allocate() to the cache.
  void release(Block block);
  // Gives every cached (not live) block back to the system.
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();
  // Caps the bytes held from the system (live + cached); 0 = no cap (the default). Lets a run share a GPU,
  // and lets the tests exercise the out-of-memory path.
  void set_reserve_limit(size_t bytes);

  static size_t round_size(size_t bytes);

 private:
  void* system_alloc(size_t bytes);  // throws when the system or reserve_limit_ refuses
  void system_free(void* ptr);
  void free_cached_locked();  // empty_cache with mutex_ held

  Device device_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> cache_;  // rounded size -> free block
  AllocatorStats stats_;
  size_t reserve_limit_ = 0;
};

CachingAllocator& allocator(Device device);

// Per-call scratch of a CPU kernel that hands raw buffers to a library (oneDNN's staging memories and
// scratchpads in kernels/conv2d_onednn.cpp): one block of the CPU caching allocator (64-byte aligned), given
// back to its cache when the holder goes out of scope. Once warm, a call repeated every step is served from the
// cache (no malloc, no fresh pages to fault in and clear), and the allocator's stats count the scratch like any
// tensor. Move-only; bytes == 0 holds no block (data() is null). Safe to use from several threads at once.
class CpuScratch {
 public:
  explicit CpuScratch(size_t bytes);
  ~CpuScratch();
  CpuScratch(CpuScratch&& other) noexcept;
  CpuScratch& operator=(CpuScratch&& other) noexcept;
  CpuScratch(const CpuScratch&) = delete;
  CpuScratch& operator=(const CpuScratch&) = delete;

  void* data() const { return block_.ptr; }
  size_t size() const { return block_.size; }

 private:
  CachingAllocator::Block block_;
};

}  // namespace spikegrad
