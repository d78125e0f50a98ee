// Internal helpers for the op glue in engine/ops_*.cpp: argument checks with messages that name the
// op, the CPU-or-CUDA dispatch (on_device; dtype dispatch for the CPU reference), the CUDA call gate for
// CPU-only builds, and scratch for kernels that take it from the caller.
#pragma once
#include <cstddef>
#include <initializer_list>
#include <utility>

#include "engine/cuda_context.h"
#include "engine/tensor.h"

namespace spikegrad::detail {

void check_defined(const Tensor& t, const char* op, const char* name);
// float32 on any device or float64 on the CPU.
void check_float(const Tensor& t, const char* op, const char* name);
// Same device and dtype as `ref` (named ref_name in the message).
void check_like(const Tensor& t, const Tensor& ref, const char* op, const char* name, const char* ref_name);
void check_shape(const Tensor& t, const Shape& expected, const char* op, const char* name);
void check_ndim(const Tensor& t, int ndim, const char* op, const char* name);

// Calls f(float{}) or f(double{}) so a CPU reference can be instantiated for the tensor's type.
template <class F>
void dispatch_float(DType dtype, const char* op, F&& f) {
  if (dtype == DType::F32) f(float{});
  else if (dtype == DType::F64) f(double{});
  else SG_FAIL(op << ": expected a float32 or float64 tensor, got " << dtype_name(dtype));
}

// Scratch for a CUDA kernel, which takes caller-provided scratch (a size query + a pointer): from the
// caching allocator, freed in stream order when `owner` goes, so keep it until the launches are queued.
struct CudaScratch {
  Tensor owner;         // undefined when bytes == 0
  void* ptr = nullptr;  // null when bytes == 0
  size_t bytes = 0;
};
CudaScratch cuda_scratch(size_t bytes);

// The device dispatch of the op glue: for a CUDA `x`, cuda(); otherwise cpu(float{}) or cpu(double{}) for x's
// dtype, as dispatch_float. In a build without CUDA the cuda lambda is never called — so, like SG_CUDA_CALL
// below, the launchers it names are never emitted nor linked — and a CUDA x gives require_cuda's error.
//   on_device(x, "relu", [&] { relu_forward_cuda(...); },
//             [&](auto z) { using T = decltype(z); relu_forward_cpu<T>(...); });
template <class CudaCall, class CpuCall>
void on_device(const Tensor& x, const char* op, CudaCall&& cuda, CpuCall&& cpu) {
  if (x.is_cuda()) {
#ifdef SPIKEGRAD_CUDA
    cuda();
#else
    (void)cuda;
    require_cuda(op);
#endif
  } else {
    dispatch_float(x.dtype(), op, std::forward<CpuCall>(cpu));
  }
}

}  // namespace spikegrad::detail

// Wraps a call into a CUDA launcher: compiled in when CUDA is built, otherwise a clear error. Tensors
// cannot live on CUDA in a CPU-only build, so the error branch only guards the link; the call stays in
// the body of a lambda that is never called (so never emitted, and nothing to link), which keeps it
// type-checked and the values it names used.
#ifdef SPIKEGRAD_CUDA
#define SG_CUDA_CALL(op, ...) __VA_ARGS__
#else
#define SG_CUDA_CALL(op, ...) (::spikegrad::require_cuda(op), void([&] { __VA_ARGS__; }))
#endif
