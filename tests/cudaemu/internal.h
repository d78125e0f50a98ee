// cudaemu internals shared by the scheduler, the memory model and the runtime API (not for kernels).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <string>

#include "cudaemu/device.h"

namespace cudaemu {

// ---- settings from the environment -----------------------------------------------------------------
// SPIKEGRAD_CUDAEMU_ORDER = launch | reverse | random[:seed]: the order in which a block's threads run
// between barriers (and blocks run), so a kernel that depends on an order CUDA does not promise fails.
enum class Order { Launch, Reverse, Random };
struct Settings {
  Order order = Order::Launch;
  uint64_t seed = 1;
  std::string text = "launch";
};
const Settings& settings();

// ---- errors --------------------------------------------------------------------------------------------
// Sets the calling thread's last error (as CUDA does) and remembers the message for cudaGetErrorString.
cudaError_t set_error(cudaError_t code, const std::string& message);
// Every kernel fault and misuse counts here; the test listener fails a test that caused one.
void count_violation();
cudaError_t cub_misuse(const std::string& what);  // a CUB call with bad arguments

// ---- guarded buffers: poisoned body, canary bytes on both sides ------------------------------------------
// A write just past either end changes a canary and is reported when the buffer is checked; under
// AddressSanitizer the guards are poisoned instead, so reads are caught too, at the access.
constexpr size_t kGuardBytes = 256;
class GuardedBuffer {
 public:
  bool allocate(size_t bytes, size_t align);  // false when the host is out of memory
  void release();
  void* data() const { return data_; }
  size_t size() const { return bytes_; }
  // "" when both guards are intact, else which side was overwritten and at which offset.
  std::string check() const;

 private:
  unsigned char* base_ = nullptr;
  unsigned char* data_ = nullptr;
  size_t bytes_ = 0, padded_ = 0;
};

// Per-block shared memory: one guarded buffer per __shared__ declaration site, plus the dynamic buffer.
class SharedArena {
 public:
  void begin_block(size_t dynamic_bytes);
  void* variable(const void* site, size_t bytes, size_t align, const char* name, const std::string& where,
                 std::string& error);
  void* dynamic() const { return dynamic_.data(); }
  std::string end_block();  // checks every guard, frees; "" or the overrun found

 private:
  struct Var {
    GuardedBuffer buffer;
    std::string name, where;
  };
  std::map<const void*, Var> vars_;
  GuardedBuffer dynamic_;
  size_t dynamic_bytes_ = 0, static_bytes_ = 0;
};
constexpr size_t kSharedLimitBytes = 48 << 10;  // per block without the opt-in attribute

// ---- device memory registry ------------------------------------------------------------------------------
bool is_device_range(const void* p, size_t bytes);  // [p, p+bytes) inside one live cudaMalloc allocation
std::string check_device_guards();                   // "" or the first overrun of a live allocation

// ---- launches --------------------------------------------------------------------------------------------
struct LaunchState {
  LaunchSite site;
  dim3 grid, block;
  size_t dynamic_smem = 0;
  void (*body)(void*) = nullptr;
  void* closure = nullptr;
  uint64_t sequence = 0;  // launches so far in this process: seeds the random order
  std::string fault;      // first violation; the launch fails when set
};
std::string launch_name(const LaunchState& launch);
void run_blocks(LaunchState& launch);
bool inside_kernel();

}  // namespace cudaemu
