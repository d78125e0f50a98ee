#include "engine/cuda_context.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "engine/check.h"
#include "engine/cuda_check.h"
#include "engine/cuda_handles.h"

namespace spikegrad {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

void require_cuda(const char* what) {
  SG_CHECK(cuda_available(), what << ": needs CUDA, but " << cuda_unavailable_reason());
}

#ifdef SPIKEGRAD_CUDA

namespace {
// Asked once: cudaGetDeviceCount fails cleanly when there is no driver or no device.
int device_count_or_error(cudaError_t* err) {
  static cudaError_t cached_err = cudaSuccess;
  static int count = [] {
    int n = 0;
    cached_err = cudaGetDeviceCount(&n);
    if (cached_err != cudaSuccess) {
      cudaGetLastError();  // clear the sticky error so later queries are not poisoned
      n = 0;
    }
    return n;
  }();
  *err = cached_err;
  return count;
}
}  // namespace

bool cuda_compiled() { return true; }
bool cuda_available() {
  cudaError_t err;
  return device_count_or_error(&err) > 0;
}
std::string cuda_unavailable_reason() {
  cudaError_t err;
  if (device_count_or_error(&err) > 0) return "";
  if (err == cudaSuccess) return "cudaGetDeviceCount found no CUDA device";
  return std::string("cudaGetDeviceCount failed with ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
}

void check_launch(const char* file, int line) {
  static const bool sync = env_flag("SPIKEGRAD_SYNC_AFTER_LAUNCH");
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    detail::throw_error(file, line,
                        std::string("kernel launch failed: ") + cudaGetErrorString(err) +
                            (sync ? ""
                                  : " (a fault of an earlier kernel shows up at a later launch: rerun with "
                                    "SPIKEGRAD_SYNC_AFTER_LAUNCH=1 to name the kernel that faulted)"));
  if (!sync) return;
  err = cudaDeviceSynchronize();
  if (err != cudaSuccess)
    detail::throw_error(file, line,
                        std::string("the kernel launched here failed: ") + cudaGetErrorString(err) +
                            " (SPIKEGRAD_SYNC_AFTER_LAUNCH=1: checked right after the launch)");
  raise_device_check_failure();  // the device waited anyway: a bad input is reported at the op that read it
}

void* cuda_raw_malloc(size_t bytes) {
  require_cuda("cuda allocator");
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  // An out-of-memory is not sticky, but it stays the "last error": clear it, or the next launch check
  // (cudaGetLastError) would report it against a kernel that launched fine once the caller recovers.
  if (err != cudaSuccess) cudaGetLastError();
  SG_CHECK(err == cudaSuccess, "cuda allocator: cudaMalloc of " << bytes << " bytes failed: " << cudaGetErrorString(err));
  return p;
}
void cuda_raw_free(void* ptr) { CUDA_CHECK(cudaFree(ptr)); }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::CPU && src_device == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
  if (dst_device == Device::CPU) raise_device_check_failure();  // the copy waited for the device anyway
}

void zero_bytes(void* ptr, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::CPU) std::memset(ptr, 0, bytes);
  else CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, 0));
}

void cuda_synchronize() {
  if (!cuda_available()) return;
  CUDA_CHECK(cudaDeviceSynchronize());
  raise_device_check_failure();
}

namespace {
// The one record every armed check reports into, and the messages of the checks armed since it was last
// read (a check's tag is its index here). The record is read only while checks are pending, so a step
// that arms none pays nothing. Past kMaxPending armed checks without a synchronisation the record is
// read early, which bounds the list.
struct DeviceChecks {
  std::mutex mutex;
  DeviceCheckRecord* record = nullptr;
  std::vector<DeviceCheckMessage> pending;
};
DeviceChecks& device_checks() {
  static DeviceChecks checks;
  return checks;
}
constexpr size_t kMaxPending = 256;
}  // namespace

DeviceCheck arm_device_check(DeviceCheckMessage message) {
  require_cuda("device check");
  DeviceChecks& g = device_checks();
  bool full;
  {
    std::lock_guard<std::mutex> lock(g.mutex);
    full = g.pending.size() >= kMaxPending;
  }
  if (full) raise_device_check_failure();
  std::lock_guard<std::mutex> lock(g.mutex);
  if (g.record == nullptr) {
    g.record = static_cast<DeviceCheckRecord*>(cuda_raw_malloc(sizeof(DeviceCheckRecord)));  // kept until exit
    CUDA_CHECK(cudaMemset(g.record, 0, sizeof(DeviceCheckRecord)));
  }
  g.pending.push_back(std::move(message));
  return {g.record, int32_t(g.pending.size() - 1)};
}

void raise_device_check_failure() {
  DeviceChecks& g = device_checks();
  std::vector<DeviceCheckMessage> pending;
  {
    std::lock_guard<std::mutex> lock(g.mutex);
    if (g.pending.empty()) return;
    pending.swap(g.pending);
  }
  DeviceCheckRecord r{};
  CUDA_CHECK(cudaMemcpy(&r, g.record, sizeof r, cudaMemcpyDeviceToHost));
  if (r.failed == 0) return;
  CUDA_CHECK(cudaMemset(g.record, 0, sizeof r));  // the next checks start clean
  SG_CHECK(r.tag >= 0 && size_t(r.tag) < pending.size(),
           "device check: a kernel recorded a failure for check " << r.tag << " of " << pending.size()
                                                                    << " (armed before an earlier synchronisation?)");
  SG_FAIL(pending[size_t(r.tag)](r.index, r.value)
          << " (found on the device by a kernel queued earlier; reported at the next synchronisation)");
}

const char* cublas_status_string(cublasStatus_t s) { return cublasGetStatusString(s); }

cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    require_cuda("cublas");
    cublasHandle_t h;
    CUBLAS_CHECK(cublasCreate(&h));
    // fp32 math stays fp32 unless a caller opts into TF32 explicitly.
    CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    return h;
  }();
  return handle;
}

cudnnHandle_t cudnn_handle() {
  static cudnnHandle_t handle = [] {
    require_cuda("cudnn");
    cudnnHandle_t h;
    CUDNN_CHECK(cudnnCreate(&h));
    return h;
  }();
  return handle;
}

#else  // CPU-only build

bool cuda_compiled() { return false; }
bool cuda_available() { return false; }
std::string cuda_unavailable_reason() {
  return "spikegrad was built without CUDA (configure with nvcc present and SPIKEGRAD_WITH_CUDA=ON)";
}
void check_launch(const char*, int) {}  // nothing is ever launched
void* cuda_raw_malloc(size_t) { require_cuda("cuda allocator"); return nullptr; }
void cuda_raw_free(void*) { require_cuda("cuda allocator"); }
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device != Device::CPU || src_device != Device::CPU) require_cuda("copy");
  if (bytes) std::memcpy(dst, src, bytes);
}
void zero_bytes(void* ptr, Device device, size_t bytes) {
  if (device != Device::CPU) require_cuda("zero");
  if (bytes) std::memset(ptr, 0, bytes);
}
void cuda_synchronize() {}
DeviceCheck arm_device_check(DeviceCheckMessage) {
  require_cuda("device check");
  return {};
}
void raise_device_check_failure() {}

#endif

}  // namespace spikegrad
