// Glue for dropout (kernels/dropout.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/dropout.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::on_device;

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
  on_device(
      x, "dropout", [&] { dropout_forward_cuda(x.data<float>(), n, p, float(scale), seed, offset, y.data<float>()); },
      [&](auto z) {
        using T = decltype(z);
        dropout_forward_cpu<T>(x.data<T>(), n, p, T(scale), seed, offset, y.data<T>());
      });
  if (Tape::should_record({x})) {
    // The closure keeps only the generator state of this draw; the mask is recomputed from it. gy has x's
    // device and dtype.
    tape.record("dropout", {x}, {y}, [n, p, scale, seed, offset](const std::vector<Tensor>& gy,
                                                                 const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "dropout backward",
          [&] { dropout_backward_cuda(gy[0].data<float>(), n, p, float(scale), seed, offset, gx[0]->data<float>()); },
          [&](auto z) {
            using T = decltype(z);
            dropout_backward_cpu<T>(gy[0].data<T>(), n, p, T(scale), seed, offset, gx[0]->data<T>());
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
