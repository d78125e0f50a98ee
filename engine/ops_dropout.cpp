// Glue for dropout (kernels/dropout.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/dropout.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::dispatch_float;

Tensor dropout(Tape& tape, const Tensor& x, double p, bool training, Generator& gen) {
  check_float(x, "dropout", "x");
  SG_CHECK(p >= 0 && p < 1, "dropout: p must be in [0,1), got " << p);
  // Identity: no copy, no node, and no counters consumed, so the generator state is untouched.
  if (!training || p == 0) return x;
  const int64_t n = x.numel();
  const uint64_t seed = gen.seed();
  const uint64_t offset = gen.reserve(uint64_t(n));
  const double scale = 1.0 / (1.0 - p);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.is_cuda()) {
    SG_CUDA_CALL("dropout", dropout_forward_cuda(x.data<float>(), n, p, float(scale), seed, offset, y.data<float>()));
  } else {
    dispatch_float(x.dtype(), "dropout", [&](auto z) {
      using T = decltype(z);
      dropout_forward_cpu<T>(x.data<T>(), n, p, T(scale), seed, offset, y.data<T>());
    });
  }
  if (Tape::should_record({x})) {
    const bool on_cuda = x.is_cuda();
    const DType dtype = x.dtype();
    // The closure keeps only the generator state of this draw; the mask is recomputed from it.
    tape.record("dropout", {x}, {y},
                [n, p, scale, seed, offset, on_cuda, dtype](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                  if (!gx[0]) return;
                  if (on_cuda) {
                    SG_CUDA_CALL("dropout backward", dropout_backward_cuda(gy[0].data<float>(), n, p, float(scale), seed,
                                                                           offset, gx[0]->data<float>()));
                    return;
                  }
                  dispatch_float(dtype, "dropout backward", [&](auto z) {
                    using T = decltype(z);
                    dropout_backward_cpu<T>(gy[0].data<T>(), n, p, T(scale), seed, offset, gx[0]->data<T>());
                  });
                });
  }
  return y;
}

}  // namespace spikegrad::ops
