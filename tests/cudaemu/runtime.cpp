// cudaemu runtime API: errors, the emulated device (an H100's properties), copies, streams, events and
// the launch checks. Everything is synchronous: a launch has finished when it returns.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cudaemu/testing.h"
#include "internal.h"

namespace cudaemu {

namespace {
std::vector<Settings>& saved_order_text() {
  static std::vector<Settings> saved;
  return saved;
}
// Parses launch | reverse | random | random:<seed>; false on anything else.
bool parse_order(const std::string& v, Settings& out) {
  out.text = v;
  if (v == "launch") {
    out.order = Order::Launch;
    return true;
  }
  if (v == "reverse") {
    out.order = Order::Reverse;
    return true;
  }
  if (v == "random") {
    out.order = Order::Random;
    return true;
  }
  if (v.rfind("random:", 0) == 0 && v.size() > 7 && v.find_first_not_of("0123456789", 7) == std::string::npos) {
    out.order = Order::Random;
    out.seed = std::strtoull(v.c_str() + 7, nullptr, 10);
    return true;
  }
  return false;
}
Settings& mutable_settings() {
  static Settings s = [] {
    Settings out;
    const char* env = std::getenv("SPIKEGRAD_CUDAEMU_ORDER");
    if (env && *env && !parse_order(env, out)) {
      std::fprintf(stderr, "cudaemu: SPIKEGRAD_CUDAEMU_ORDER=%s: expected launch, reverse, random or random:<seed>\n",
                   env);
      std::exit(2);
    }
    return out;
  }();
  return s;
}
}  // namespace

const Settings& settings() { return mutable_settings(); }

ScopedOrder::ScopedOrder(const char* order) {
  saved_order_text().push_back(mutable_settings());
  if (!parse_order(order, mutable_settings())) {
    std::fprintf(stderr, "cudaemu: ScopedOrder(\"%s\"): not an order\n", order);
    std::abort();
  }
}
ScopedOrder::~ScopedOrder() {
  mutable_settings() = saved_order_text().back();
  saved_order_text().pop_back();
}

namespace {
thread_local cudaError_t last_error = cudaSuccess;
std::mutex message_mutex;
std::map<int, std::string>& messages() {
  static auto* m = new std::map<int, std::string>;
  return *m;
}
std::atomic<int> violations{0};
std::atomic<uint64_t> launches{0};

const char* base_string(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "unknown error";
  }
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}
}  // namespace

cudaError_t set_error(cudaError_t code, const std::string& message) {
  last_error = code;
  std::lock_guard<std::mutex> lock(message_mutex);
  messages()[int(code)] = std::string(base_string(code)) + " [cudaemu: " + message + "]";
  return code;
}
void count_violation() { violations.fetch_add(1); }
int violation_count() { return violations.load(); }
int take_violations() { return violations.exchange(0); }

cudaError_t occupancy_blocks_per_sm(int* blocks, int block_size, size_t dynamic_smem) {
  if (!blocks || block_size <= 0 || block_size > 1024)
    return set_error(cudaErrorInvalidValue, "cudaOccupancyMaxActiveBlocksPerMultiprocessor: block size " +
                                                std::to_string(block_size) + " is not in 1..1024");
  const int warps = (block_size + 31) / 32;
  int n = std::min(32, 64 / warps);  // 2048 threads = 64 warps per SM
  if (dynamic_smem) n = std::min<int>(n, int((228u << 10) / (dynamic_smem + 1024)));
  *blocks = n;
  return cudaSuccess;
}

void run_launch(const LaunchSite& site, dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream,
                void (*body)(void*), void* closure, const void* const* pointers, int pointer_count) {
  LaunchState launch;
  launch.site = site;
  launch.grid = grid;
  launch.block = block;
  launch.dynamic_smem = dynamic_smem;
  launch.body = body;
  launch.closure = closure;
  launch.sequence = launches.fetch_add(1);
  auto refuse = [&](cudaError_t code, const std::string& why) {
    count_violation();
    set_error(code, launch_name(launch) + ": " + why);
  };
  if (inside_kernel()) return refuse(cudaErrorLaunchFailure, "launched from device code (not emulated)");
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z)
    return refuse(cudaErrorInvalidConfiguration, "a grid or block dimension is 0");
  if (threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    return refuse(cudaErrorInvalidConfiguration, "more than 1024 threads per block, or a block dimension over its limit "
                                                 "(1024, 1024, 64)");
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    return refuse(cudaErrorInvalidConfiguration, "a grid dimension over its limit (2^31-1, 65535, 65535)");
  if (dynamic_smem > kSharedLimitBytes)
    return refuse(cudaErrorInvalidValue, std::to_string(dynamic_smem) + " bytes of dynamic shared memory, over 48 KiB");
  if (stream != nullptr) return refuse(cudaErrorInvalidResourceHandle, "only the default stream is emulated");
  for (int i = 0; i < pointer_count; ++i)
    if (pointers[i] && !is_device_range(pointers[i], 0))
      return refuse(cudaErrorIllegalAddress, "pointer argument " + std::to_string(i + 1) + " (" + hex(pointers[i]) +
                                                 ") is not device memory (a host pointer passed to a kernel?)");
  run_blocks(launch);
  if (launch.fault.empty()) {
    const std::string overrun = check_device_guards();
    if (!overrun.empty()) launch.fault = launch_name(launch) + ": " + overrun;
  }
  if (!launch.fault.empty()) {
    count_violation();
    set_error(cudaErrorLaunchFailure, launch.fault);
  }
}

const char* warp_op_name(WarpOpKind kind) {
  switch (kind) {
    case WarpOpKind::SyncWarp: return "__syncwarp";
    case WarpOpKind::ShflIdx: return "__shfl_sync";
    case WarpOpKind::ShflUp: return "__shfl_up_sync";
    case WarpOpKind::ShflDown: return "__shfl_down_sync";
    case WarpOpKind::ShflXor: return "__shfl_xor_sync";
    case WarpOpKind::Ballot: return "__ballot_sync";
    case WarpOpKind::Any: return "__any_sync";
    case WarpOpKind::All: return "__all_sync";
    case WarpOpKind::Wmma: return "wmma";
  }
  return "?";
}

}  // namespace cudaemu

using cudaemu::set_error;

// ---- errors and device -------------------------------------------------------------------------------------
const char* cudaGetErrorString(cudaError_t error) {
  std::lock_guard<std::mutex> lock(cudaemu::message_mutex);
  auto it = cudaemu::messages().find(int(error));
  return it != cudaemu::messages().end() ? it->second.c_str() : cudaemu::base_string(error);
}
const char* cudaGetErrorName(cudaError_t error) { return cudaemu::base_string(error); }
cudaError_t cudaGetLastError() {
  const cudaError_t e = cudaemu::last_error;
  cudaemu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return cudaemu::last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess
                     : set_error(cudaErrorInvalidValue, "cudaSetDevice(" + std::to_string(device) + "): one device");
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return set_error(cudaErrorInvalidValue, "cudaGetDeviceProperties: one device");
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "cudaemu (emulated NVIDIA H100 80GB HBM3)");
  p->totalGlobalMem = size_t(80) << 30;
  p->sharedMemPerBlock = cudaemu::kSharedLimitBytes;
  p->sharedMemPerBlockOptin = 232448;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->maxThreadsPerMultiProcessor = 2048;
  p->memoryBusWidth = 5120;
  p->l2CacheSize = 50 << 20;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return cudaErrorInvalidValue;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(p.sharedMemPerBlockOptin); break;
    default: return set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not emulated");
  }
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaDeviceReset() { return cudaSuccess; }

// ---- copies ---------------------------------------------------------------------------------------------------
namespace {
const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault: return "cudaMemcpyDefault";
  }
  return "an invalid cudaMemcpyKind";
}
// A pointer inside some allocation but whose range runs past it is an overrun, not a host pointer.
bool starts_on_device(const void* p) { return cudaemu::is_device_range(p, 0); }

cudaError_t copy(const char* api, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (cudaemu::inside_kernel()) return set_error(cudaErrorInvalidValue, std::string(api) + " from device code");
  const bool dst_dev = starts_on_device(dst), src_dev = starts_on_device(src);
  auto misuse = [&](const std::string& why) {
    cudaemu::count_violation();
    return set_error(cudaErrorInvalidValue, std::string(api) + "(" + std::to_string(bytes) + " bytes, " +
                                                kind_name(kind) + "): " + why);
  };
  if (!dst || !src) return misuse("null pointer");
  const bool want_dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault) {
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return misuse("unknown direction");
    if (dst_dev != want_dst_dev)
      return misuse(std::string("the destination is ") + (dst_dev ? "device" : "host") + " memory (wrong direction)");
    if (src_dev != want_src_dev)
      return misuse(std::string("the source is ") + (src_dev ? "device" : "host") + " memory (wrong direction)");
  }
  if (dst_dev && !cudaemu::is_device_range(dst, bytes)) return misuse("the destination range overruns its allocation");
  if (src_dev && !cudaemu::is_device_range(src, bytes)) return misuse("the source range overruns its allocation");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t fill(const char* api, void* ptr, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!cudaemu::is_device_range(ptr, bytes)) {
    cudaemu::count_violation();
    return set_error(cudaErrorInvalidValue, std::string(api) + "(" + std::to_string(bytes) +
                                                " bytes): the range is not inside one device allocation");
  }
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return copy("cudaMemcpy", dst, src, bytes, kind);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (stream) return set_error(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync: only the default stream is emulated");
  return copy("cudaMemcpyAsync", dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* ptr, int value, size_t bytes) { return fill("cudaMemset", ptr, value, bytes); }
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (stream) return set_error(cudaErrorInvalidResourceHandle, "cudaMemsetAsync: only the default stream is emulated");
  return fill("cudaMemsetAsync", ptr, value, bytes);
}

// ---- streams and events -----------------------------------------------------------------------------------------
struct CUevent_st {
  std::chrono::steady_clock::time_point at{};
  bool recorded = false;
};
namespace {
std::set<cudaEvent_t>& events() {
  static auto* e = new std::set<cudaEvent_t>;
  return *e;
}
}  // namespace

cudaError_t cudaStreamCreate(cudaStream_t*) {
  return set_error(cudaErrorInvalidValue, "cudaStreamCreate: only the default stream is emulated");
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  return s ? set_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: not a stream") : cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return s ? set_error(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: not a stream") : cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st;
  events().insert(*event);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!events().erase(event)) return set_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy: not an event");
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!events().count(event) || stream)
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: not an event, or not the default stream");
  event->at = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return events().count(event) ? cudaSuccess
                               : set_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: not an event");
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!events().count(start) || !events().count(end))
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: not an event");
  if (!start->recorded || !end->recorded)
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was never recorded");
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

cudaError_t cudaemu::cub_misuse(const std::string& what) {
  count_violation();
  return set_error(cudaErrorInvalidValue, what);
}
