#include "engine/rng.h"

#include "engine/op_util.h"
#include "kernels/philox.h"
#include "kernels/random.h"

namespace spikegrad {

uint32_t Generator::next_u32() { return philox4x32_10(reserve(1), seed_).v[0]; }
double Generator::next_uniform() { return double(next_u32()) * (1.0 / 4294967296.0); }

namespace {
Tensor random_tensor(const Shape& shape, Generator& gen, Device device, DType dtype, bool normal) {
  const char* op = normal ? "rand_normal" : "rand_uniform";
  SG_CHECK(dtype == DType::F32 || (dtype == DType::F64 && device == Device::CPU),
           op << ": dtype must be float32 (or float64 on the cpu), got " << dtype_name(dtype));
  Tensor out = Tensor::empty(shape, dtype, device);
  const int64_t n = out.numel();
  const uint64_t offset = gen.reserve(uint64_t(n));
  if (device == Device::CUDA) {
    SG_CUDA_CALL(op, normal ? rand_normal_cuda(out.data<float>(), n, gen.seed(), offset)
                            : rand_uniform_cuda(out.data<float>(), n, gen.seed(), offset));
    return out;
  }
  detail::dispatch_float(dtype, op, [&](auto z) {
    using T = decltype(z);
    if (normal) rand_normal_cpu<T>(out.data<T>(), n, gen.seed(), offset);
    else rand_uniform_cpu<T>(out.data<T>(), n, gen.seed(), offset);
  });
  return out;
}
}  // namespace

Tensor rand_uniform(const Shape& shape, Generator& gen, Device device, DType dtype) {
  return random_tensor(shape, gen, device, dtype, false);
}
Tensor rand_normal(const Shape& shape, Generator& gen, Device device, DType dtype) {
  return random_tensor(shape, gen, device, dtype, true);
}

}  // namespace spikegrad
