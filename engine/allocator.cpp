#include "engine/allocator.h"

#include <cstdlib>

#include "engine/check.h"
#include "engine/cuda_context.h"

namespace spikegrad {

size_t CachingAllocator::round_size(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20, kSmallLimit = size_t(1) << 20;
  if (bytes == 0) return kSmall;
  if (bytes < kSmallLimit) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

CachingAllocator::~CachingAllocator() {
  // Process teardown: the CUDA runtime may already be gone, so only CPU blocks are returned here.
  if (device_ == Device::CPU) empty_cache();
}

void* CachingAllocator::system_alloc(size_t bytes) {
  SG_CHECK(reserve_limit_ == 0 || stats_.reserved_bytes + bytes <= reserve_limit_,
           device_name(device_) << " allocator: the reserve limit of " << reserve_limit_ << " bytes would be passed");
  if (device_ == Device::CPU) {
    void* p = std::aligned_alloc(64, bytes);
    SG_CHECK(p != nullptr, "cpu allocator: out of memory allocating " << bytes << " bytes");
    return p;
  }
  return cuda_raw_malloc(bytes);
}

void CachingAllocator::system_free(void* ptr) {
  if (device_ == Device::CPU) std::free(ptr);
  else cuda_raw_free(ptr);
}

CachingAllocator::Block CachingAllocator::allocate(size_t bytes) {
  size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = nullptr;
  // Best fit, but never hand out a block more than twice the request: a huge cached block must not be
  // pinned by a tiny tensor.
  auto it = cache_.lower_bound(size);
  if (it != cache_.end() && it->first <= 2 * size) {
    ptr = it->second;
    size = it->first;
    stats_.current_bytes += size;
    cache_.erase(it);
    ++stats_.cache_hits;
  } else {
    try {
      ptr = system_alloc(size);
    } catch (const Error& first) {
      // Cached blocks are memory nobody uses: give them back and try once more before failing.
      if (cache_.empty())
        SG_FAIL(first.what() << " (allocating " << size << " bytes with " << stats_.current_bytes
                             << " bytes live and nothing cached)");
      const size_t cached = stats_.reserved_bytes - stats_.current_bytes;
      free_cached_locked();
      ++stats_.oom_retries;
      try {
        ptr = system_alloc(size);
      } catch (const Error& second) {
        SG_FAIL(second.what() << " (allocating " << size << " bytes with " << stats_.current_bytes
                              << " bytes live, after giving back " << cached << " cached bytes)");
      }
    }
    ++stats_.system_allocs;
    stats_.reserved_bytes += size;
    stats_.current_bytes += size;
  }
  if (stats_.current_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.current_bytes;
  return {ptr, size};
}

void CachingAllocator::release(Block block) {
  if (!block.ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.current_bytes -= block.size;
  cache_.emplace(block.size, block.ptr);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

void CachingAllocator::set_reserve_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  reserve_limit_ = bytes;
}

void CachingAllocator::free_cached_locked() {
  for (auto& [size, ptr] : cache_) {
    system_free(ptr);
    ++stats_.system_frees;
    stats_.reserved_bytes -= size;
  }
  cache_.clear();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_bytes = stats_.current_bytes;
}

CachingAllocator& allocator(Device device) {
  // Leaked on purpose: tensors held in static objects may be destroyed after any allocator would be.
  static CachingAllocator* cpu = new CachingAllocator(Device::CPU);
  static CachingAllocator* cuda = new CachingAllocator(Device::CUDA);
  return device == Device::CPU ? *cpu : *cuda;
}

CpuScratch::CpuScratch(size_t bytes) {
  if (bytes > 0) block_ = allocator(Device::CPU).allocate(bytes);
}

CpuScratch::~CpuScratch() { allocator(Device::CPU).release(block_); }

CpuScratch::CpuScratch(CpuScratch&& other) noexcept : block_(other.block_) { other.block_ = {}; }

CpuScratch& CpuScratch::operator=(CpuScratch&& other) noexcept {
  if (this != &other) {
    allocator(Device::CPU).release(block_);
    block_ = other.block_;
    other.block_ = {};
  }
  return *this;
}

}  // namespace spikegrad
