// Glue for the per-channel affine map (kernels/channel_affine.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/channel_affine.h"

namespace spikegrad::ops {

using detail::on_device;

Tensor channel_affine(Tape& tape, const Tensor& x, const Tensor& scale, const Tensor& shift) {
  const char* op = "channel_affine";
  detail::check_float(x, op, "x");
  SG_CHECK(x.ndim() >= 2, op << ": x must be (N,C,...) , got " << shape_str(x.shape()));
  const int64_t n = x.size(0), c = x.size(1), s = c == 0 || n == 0 ? 0 : x.numel() / (n * c);
  detail::check_like(scale, x, op, "scale", "x");
  detail::check_like(shift, x, op, "shift", "x");
  detail::check_shape(scale, {c}, op, "scale");
  detail::check_shape(shift, {c}, op, "shift");
  SG_CHECK(!scale.requires_grad() && !shift.requires_grad(),
           op << ": scale and shift are constants here and must not require grad");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  on_device(
      x, op,
      [&] {
        channel_affine_forward_cuda(x.data<float>(), scale.data<float>(), shift.data<float>(),
                                    y.data<float>(), n, c, s);
      },
      [&](auto z) {
        using T = decltype(z);
        channel_affine_forward_cpu<T>(x.data<T>(), scale.data<T>(), shift.data<T>(), y.data<T>(), n, c, s);
      });
  if (Tape::should_record({x})) {
    tape.record(op, {x}, {y}, [scale, n, c, s](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          scale, "channel_affine backward",
          [&] {
            channel_affine_backward_cuda(gy[0].data<float>(), scale.data<float>(), gx[0]->data<float>(), n, c, s);
          },
          [&](auto z) {
            using T = decltype(z);
            channel_affine_backward_cpu<T>(gy[0].data<T>(), scale.data<T>(), gx[0]->data<T>(), n, c, s);
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
