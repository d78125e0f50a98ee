// Glue for linear (kernels/linear.h): validation, device dispatch, one tape node.
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/linear.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::check_shape;
using detail::on_device;

namespace {
LinearShape validated_shape(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_float(x, "linear", "x");
  check_like(w, x, "linear", "w", "x");
  SG_CHECK(x.ndim() == 2, "linear: x must be 2-D (N,in), got shape " << shape_str(x.shape()));
  SG_CHECK(w.ndim() == 2, "linear: w must be 2-D (out,in), got shape " << shape_str(w.shape()));
  SG_CHECK(x.numel() > 0, "linear: x must not be empty, got shape " << shape_str(x.shape()));
  SG_CHECK(w.numel() > 0, "linear: w must not be empty, got shape " << shape_str(w.shape()));
  SG_CHECK(w.size(1) == x.size(1), "linear: w must have in=" << x.size(1) << " columns to match x "
                                                              << shape_str(x.shape()) << ", got w " << shape_str(w.shape()));
  const LinearShape s{x.size(0), x.size(1), w.size(0)};
  if (b.defined()) {
    check_like(b, x, "linear", "b", "x");
    check_shape(b, {s.O}, "linear", "b");
  }
  return s;
}
}  // namespace

Tensor linear(Tape& tape, const Tensor& x, const Tensor& w, const Tensor& b) {
  const LinearShape s = validated_shape(x, w, b);
  const bool has_bias = b.defined();
  Tensor y = Tensor::empty({s.N, s.O}, x.dtype(), x.device());
  on_device(
      x, "linear",
      [&] {
        linear_forward_cuda(x.data<float>(), w.data<float>(), has_bias ? b.data<float>() : nullptr,
                            y.data<float>(), s);
      },
      [&](auto z) {
        using T = decltype(z);
        linear_forward_cpu<T>(x.data<T>(), w.data<T>(), has_bias ? b.data<T>() : nullptr, y.data<T>(), s);
      });

  std::vector<Tensor> inputs{x, w};
  if (has_bias) inputs.push_back(b);
  if (Tape::should_record(inputs)) {
    // Backward needs x (for dw) and w (for dx); the bias gradient needs only gy.
    tape.record("linear", inputs, {y}, [x, w, has_bias, s](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      Tensor* dx = gx[0];
      Tensor* dw = gx[1];
      Tensor* db = has_bias ? gx[2] : nullptr;
      if (!dx && !dw && !db) return;
      on_device(
          x, "linear backward",
          [&] {
            linear_backward_cuda(x.data<float>(), w.data<float>(), gy[0].data<float>(),
                                 dx ? dx->data<float>() : nullptr, dw ? dw->data<float>() : nullptr,
                                 db ? db->data<float>() : nullptr, s);
          },
          [&](auto z) {
            using T = decltype(z);
            linear_backward_cpu<T>(x.data<T>(), w.data<T>(), gy[0].data<T>(), dx ? dx->data<T>() : nullptr,
                                   dw ? dw->data<T>() : nullptr, db ? db->data<T>() : nullptr, s);
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
