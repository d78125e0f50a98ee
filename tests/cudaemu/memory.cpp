// cudaemu memory model: guarded, poisoned buffers for cudaMalloc and __shared__, and the registry that
// tells device pointers from host pointers.
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CUDAEMU_ASAN 1
#endif

namespace cudaemu {

namespace {
constexpr unsigned char kCanary = 0xA5;
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

bool GuardedBuffer::allocate(size_t bytes, size_t align) {
  align = std::max<size_t>(align, 16);
  const size_t front = round_up(kGuardBytes, align);
  padded_ = front + round_up(bytes, 16) + kGuardBytes;
  base_ = static_cast<unsigned char*>(std::aligned_alloc(align, round_up(padded_, align)));
  if (!base_) return false;
  data_ = base_ + front;
  bytes_ = bytes;
  std::memset(base_, kCanary, padded_);
  std::memset(data_, kPoisonByte, bytes);
#ifdef CUDAEMU_ASAN
  ASAN_POISON_MEMORY_REGION(base_, front);
  ASAN_POISON_MEMORY_REGION(data_ + bytes, padded_ - front - bytes);
#endif
  return true;
}

void GuardedBuffer::release() {
  if (!base_) return;
#ifdef CUDAEMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(base_, padded_);
#endif
  std::memset(data_, kPoisonByte, bytes_);  // a stale pointer reads poison, not the old values
  std::free(base_);
  base_ = data_ = nullptr;
  bytes_ = padded_ = 0;
}

std::string GuardedBuffer::check() const {
#ifdef CUDAEMU_ASAN
  return "";  // the guards are poisoned: AddressSanitizer has already stopped at any access
#else
  for (const unsigned char* p = base_; p < data_; ++p)
    if (*p != kCanary) return "write " + std::to_string(data_ - p) + " bytes before the start";
  for (const unsigned char* p = data_ + bytes_; p < base_ + padded_; ++p)
    if (*p != kCanary) return "write at byte " + std::to_string(p - data_) + ", past the end";
  return "";
#endif
}

// ---- shared memory ----------------------------------------------------------------------------------------
void SharedArena::begin_block(size_t dynamic_bytes) {
  dynamic_bytes_ = dynamic_bytes;
  static_bytes_ = 0;
  if (!dynamic_.allocate(dynamic_bytes, 128)) std::abort();
}

void* SharedArena::variable(const void* site, size_t bytes, size_t align, const char* name, const std::string& where,
                            std::string& error) {
  auto it = vars_.find(site);
  if (it != vars_.end()) return it->second.buffer.data();
  if (static_bytes_ + bytes + dynamic_bytes_ > kSharedLimitBytes) {
    error = "__shared__ " + std::string(name) + " (" + std::to_string(bytes) + " bytes) brings the block's shared memory to " +
            std::to_string(static_bytes_ + bytes) + " static + " + std::to_string(dynamic_bytes_) +
            " dynamic bytes, over the 48 KiB a block may use";
    return nullptr;
  }
  static_bytes_ += bytes;
  Var& v = vars_[site];
  v.name = name;
  v.where = where;
  if (!v.buffer.allocate(bytes, align)) std::abort();
  return v.buffer.data();
}

std::string SharedArena::end_block() {
  std::string found;
  for (auto& [site, v] : vars_) {
    const std::string bad = v.buffer.check();
    if (!bad.empty() && found.empty())
      found = bad + " of __shared__ " + v.name + " (" + std::to_string(v.buffer.size()) + " bytes, declared at " +
              v.where + ")";
    v.buffer.release();
  }
  vars_.clear();
  const std::string bad = dynamic_.check();
  if (!bad.empty() && found.empty())
    found = bad + " of the dynamic (extern __shared__) buffer of " + std::to_string(dynamic_bytes_) + " bytes";
  dynamic_.release();
  return found;
}

// ---- device allocations --------------------------------------------------------------------------------------
namespace {
struct Registry {
  std::mutex mutex;
  std::map<uintptr_t, GuardedBuffer> live;  // by data address
  size_t live_bytes = 0;
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: frees may come from static destructors
  return *r;
}
constexpr size_t kDeviceBytes = size_t(80) << 30;  // an H100's 80 GB
}  // namespace

bool is_device_range(const void* p, size_t bytes) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = r.live.upper_bound(a);
  if (it == r.live.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second.size();
}

std::string check_device_guards() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& [address, buffer] : r.live) {
    const std::string bad = buffer.check();
    if (!bad.empty()) {
      char at[32];
      std::snprintf(at, sizeof at, "%p", buffer.data());
      return bad + " of the device allocation at " + at + " (" + std::to_string(buffer.size()) + " bytes)";
    }
  }
  return "";
}

}  // namespace cudaemu

// ---- runtime API: memory ----------------------------------------------------------------------------------------
using cudaemu::registry;
using cudaemu::set_error;

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return set_error(cudaErrorInvalidValue, "cudaMalloc: null output pointer");
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  auto& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (r.live_bytes + bytes > cudaemu::kDeviceBytes)
      return set_error(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes: " +
                                                      std::to_string(r.live_bytes) + " of the emulated 80 GB in use");
  }
  cudaemu::GuardedBuffer buffer;
  if (!buffer.allocate(bytes, 256))
    return set_error(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes: host memory exhausted");
  std::lock_guard<std::mutex> lock(r.mutex);
  *ptr = buffer.data();
  r.live_bytes += bytes;
  r.live.emplace(reinterpret_cast<uintptr_t>(buffer.data()), buffer);
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  if (cudaemu::inside_kernel()) return set_error(cudaErrorInvalidValue, "cudaFree called from device code");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.live.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == r.live.end()) {
    cudaemu::count_violation();
    char at[32];
    std::snprintf(at, sizeof at, "%p", ptr);
    return set_error(cudaErrorInvalidValue,
                     std::string("cudaFree(") + at + "): not the start of a live cudaMalloc allocation (a host pointer, "
                                                      "an offset into a buffer, or freed twice)");
  }
  const std::string bad = it->second.check();
  r.live_bytes -= it->second.size();
  it->second.release();
  r.live.erase(it);
  if (!bad.empty()) {
    cudaemu::count_violation();
    return set_error(cudaErrorIllegalAddress, "cudaFree: found a " + bad + " of the buffer being freed");
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (free_bytes) *free_bytes = cudaemu::kDeviceBytes - r.live_bytes;
  if (total_bytes) *total_bytes = cudaemu::kDeviceBytes;
  return cudaSuccess;
}
