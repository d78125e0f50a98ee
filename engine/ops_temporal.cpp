// Glue for reshape/flatten (views) and the time-axis ops (kernels/temporal.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/temporal.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::on_device;

Tensor reshape(Tape& tape, const Tensor& x, const Shape& shape) {
  detail::check_defined(x, "reshape", "x");
  Tensor y = x.view(shape);
  if (Tape::should_record({x})) {
    Shape in_shape = x.shape();
    tape.record("reshape", {x}, {y}, [in_shape](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (gx[0]) accumulate(*gx[0], gy[0].view(in_shape));
    });
  }
  return y;
}

Tensor flatten(Tape& tape, const Tensor& x, int start_dim) {
  detail::check_defined(x, "flatten", "x");
  const int n = x.ndim();
  const int d = start_dim < 0 ? start_dim + n : start_dim;
  SG_CHECK(d >= 0 && d < n, "flatten: start_dim " << start_dim << " out of range for shape " << shape_str(x.shape()));
  Shape s(x.shape().begin(), x.shape().begin() + d);
  s.push_back(-1);
  return reshape(tape, x, s);
}

Tensor repeat_time(Tape& tape, const Tensor& x, int64_t steps) {
  check_float(x, "repeat_time", "x");
  SG_CHECK(steps >= 1, "repeat_time: T must be >= 1, got " << steps);
  Shape s = x.shape();
  s.insert(s.begin(), steps);
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  const int64_t m = x.numel();
  on_device(
      x, "repeat_time", [&] { repeat_time_forward_cuda(x.data<float>(), y.data<float>(), steps, m); },
      [&](auto z) {
        using T = decltype(z);
        repeat_time_forward_cpu<T>(x.data<T>(), y.data<T>(), steps, m);
      });
  if (Tape::should_record({x})) {
    tape.record("repeat_time", {x}, {y}, [steps, m](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "repeat_time backward",
          [&] { repeat_time_backward_cuda(gy[0].data<float>(), gx[0]->data<float>(), steps, m); },
          [&](auto z) {
            using T = decltype(z);
            repeat_time_backward_cpu<T>(gy[0].data<T>(), gx[0]->data<T>(), steps, m);
          });
    });
  }
  return y;
}

Tensor mean_time(Tape& tape, const Tensor& x) {
  check_float(x, "mean_time", "x");
  SG_CHECK(x.ndim() >= 2 && x.size(0) >= 1,
           "mean_time: x must be (T,B,...) with T>=1, got " << shape_str(x.shape()));
  const int64_t steps = x.size(0);
  Shape s(x.shape().begin() + 1, x.shape().end());
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  const int64_t m = y.numel();
  on_device(
      x, "mean_time", [&] { mean_time_forward_cuda(x.data<float>(), y.data<float>(), steps, m); },
      [&](auto z) {
        using T = decltype(z);
        mean_time_forward_cpu<T>(x.data<T>(), y.data<T>(), steps, m);
      });
  if (Tape::should_record({x})) {
    tape.record("mean_time", {x}, {y}, [steps, m](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "mean_time backward",
          [&] { mean_time_backward_cuda(gy[0].data<float>(), gx[0]->data<float>(), steps, m); },
          [&](auto z) {
            using T = decltype(z);
            mean_time_backward_cpu<T>(gy[0].data<T>(), gx[0]->data<T>(), steps, m);
          });
    });
  }
  return y;
}

Tensor swap_leading_dims(Tape& tape, const Tensor& x) {
  check_float(x, "swap_leading_dims", "x");
  SG_CHECK(x.ndim() >= 2, "swap_leading_dims: x must have at least 2 dims, got " << shape_str(x.shape()));
  const int64_t a = x.size(0), b = x.size(1), m = a * b == 0 ? 0 : x.numel() / (a * b);
  Shape s = x.shape();
  std::swap(s[0], s[1]);
  Tensor y = Tensor::empty(s, x.dtype(), x.device());
  on_device(
      x, "swap_leading_dims", [&] { swap_leading_dims_forward_cuda(x.data<float>(), y.data<float>(), a, b, m); },
      [&](auto z) {
        using T = decltype(z);
        swap_leading_dims_forward_cpu<T>(x.data<T>(), y.data<T>(), a, b, m);
      });
  if (Tape::should_record({x})) {
    tape.record("swap_leading_dims", {x}, {y}, [a, b, m](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "swap_leading_dims backward",
          [&] { swap_leading_dims_backward_cuda(gy[0].data<float>(), gx[0]->data<float>(), a, b, m); },
          [&](auto z) {
            using T = decltype(z);
            swap_leading_dims_backward_cpu<T>(gy[0].data<T>(), gx[0]->data<T>(), a, b, m);
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
