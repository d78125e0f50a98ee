// Internal helpers for the op glue in engine/ops_*.cpp: argument checks with messages that name the
// op, dtype dispatch for the CPU reference, and the CUDA call gate for CPU-only builds.
#pragma once
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
