#include "engine/cuda_context.h"

#include <cstring>

#include "engine/check.h"
#include "engine/cuda_check.h"

namespace spikegrad {

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
void require_cuda(const char* what) {
  cudaError_t err;
  int n = device_count_or_error(&err);
  SG_CHECK(n > 0, what << ": needs a CUDA device, but "
                       << (err != cudaSuccess ? cudaGetErrorString(err) : "no device was found"));
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
}

void zero_bytes(void* ptr, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::CPU) std::memset(ptr, 0, bytes);
  else CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, 0));
}

void cuda_synchronize() {
  if (cuda_available()) CUDA_CHECK(cudaDeviceSynchronize());
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
void require_cuda(const char* what) {
  SG_FAIL(what << ": needs CUDA, but spikegrad was built without it (configure with nvcc present and SPIKEGRAD_WITH_CUDA=ON)");
}
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

#endif

}  // namespace spikegrad
