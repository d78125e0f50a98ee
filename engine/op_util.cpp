#include "engine/op_util.h"

namespace spikegrad::detail {

CudaScratch cuda_scratch(size_t bytes) {
  CudaScratch scratch;
  scratch.bytes = bytes;
  if (bytes > 0) {
    scratch.owner = Tensor::empty({int64_t(bytes)}, DType::U8, Device::CUDA);
    scratch.ptr = scratch.owner.raw_data();
  }
  return scratch;
}

void check_defined(const Tensor& t, const char* op, const char* name) {
  SG_CHECK(t.defined(), op << ": " << name << " is undefined");
}

void check_float(const Tensor& t, const char* op, const char* name) {
  check_defined(t, op, name);
  SG_CHECK(t.dtype() == DType::F32 || (t.dtype() == DType::F64 && t.device() == Device::CPU),
           op << ": " << name << " must be float32 (or float64 on the cpu), got " << dtype_name(t.dtype()) << " on "
              << device_name(t.device()));
}

void check_like(const Tensor& t, const Tensor& ref, const char* op, const char* name, const char* ref_name) {
  check_defined(t, op, name);
  SG_CHECK(t.device() == ref.device(), op << ": " << name << " is on " << device_name(t.device()) << " but " << ref_name
                                          << " is on " << device_name(ref.device()));
  SG_CHECK(t.dtype() == ref.dtype(), op << ": " << name << " is " << dtype_name(t.dtype()) << " but " << ref_name << " is "
                                        << dtype_name(ref.dtype()));
}

void check_shape(const Tensor& t, const Shape& expected, const char* op, const char* name) {
  SG_CHECK(t.shape() == expected,
           op << ": " << name << " must have shape " << shape_str(expected) << ", got " << shape_str(t.shape()));
}

void check_ndim(const Tensor& t, int ndim, const char* op, const char* name) {
  SG_CHECK(t.ndim() == ndim, op << ": " << name << " must be " << ndim << "-D, got shape " << shape_str(t.shape()));
}

}  // namespace spikegrad::detail
