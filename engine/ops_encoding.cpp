// Glue for the input encoders (kernels/encoding.h).
#include "engine/ops_encoding.h"

#include <algorithm>

#include "engine/op_util.h"
#include "kernels/encoding.h"

namespace spikegrad::ops {

namespace {
void check_encoder_input(const Tensor& images, int64_t steps, const char* op) {
  detail::check_defined(images, op, "images");
  detail::check_ndim(images, 4, op, "images");
  SG_CHECK(images.dtype() == DType::F32, op << ": images must be float32, got " << dtype_name(images.dtype()));
  SG_CHECK(steps >= 1, op << ": steps must be >= 1, got " << steps);
}

Shape time_major(const Tensor& images, int64_t steps) {
  Shape s = images.shape();
  s.insert(s.begin(), steps);
  return s;
}
}  // namespace

Tensor phase_encode(const Tensor& images, int64_t steps) {
  check_encoder_input(images, steps, "phase_encode");
  const int64_t batch = images.size(0), m = images.numel() / std::max<int64_t>(batch, 1);
  Tensor y = Tensor::empty(time_major(images, steps), DType::F32, images.device());
  if (images.is_cuda()) {
    SG_CUDA_CALL("phase_encode", phase_encode_cuda(images.data<float>(), steps, batch, m, y.data<float>()));
  } else {
    phase_encode_cpu(images.data<float>(), steps, batch, m, y.data<float>());
  }
  return y;
}

Tensor poisson_encode(const Tensor& images, int64_t steps, uint64_t seed) {
  check_encoder_input(images, steps, "poisson_encode");
  const int64_t batch = images.size(0), m = images.numel() / std::max<int64_t>(batch, 1);
  Tensor y = Tensor::empty(time_major(images, steps), DType::F32, images.device());
  if (images.is_cuda()) {
    SG_CUDA_CALL("poisson_encode", {
      const detail::CudaScratch keys = detail::cuda_scratch(poisson_encode_scratch_bytes(batch));
      poisson_encode_cuda(images.data<float>(), steps, batch, m, seed, static_cast<uint64_t*>(keys.ptr), y.data<float>());
    });
  } else {
    poisson_encode_cpu(images.data<float>(), steps, batch, m, seed, y.data<float>());
  }
  return y;
}

}  // namespace spikegrad::ops
