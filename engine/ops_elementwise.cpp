// Glue for the elementwise family (kernels/elementwise.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/elementwise.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::on_device;

namespace {
void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  SG_CHECK(a.shape() == b.shape(), op << ": a and b must have the same shape, got " << shape_str(a.shape()) << " and "
                                      << shape_str(b.shape()));
}
}  // namespace

void accumulate(const Tensor& dst, const Tensor& src, double alpha) {
  check_float(dst, "accumulate", "dst");
  check_like(src, dst, "accumulate", "src", "dst");
  check_same_shape(dst, src, "accumulate");
  const int64_t n = dst.numel();
  on_device(
      dst, "accumulate", [&] { axpy_cuda(dst.data<float>(), src.data<float>(), float(alpha), n); },
      [&](auto z) {
        using T = decltype(z);
        axpy_cpu<T>(dst.data<T>(), src.data<T>(), T(alpha), n);
      });
}

Tensor add(Tape& tape, const Tensor& a, const Tensor& b) {
  check_float(a, "add", "a");
  check_like(b, a, "add", "b", "a");
  check_same_shape(a, b, "add");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  const int64_t n = a.numel();
  on_device(
      a, "add", [&] { add_forward_cuda(a.data<float>(), b.data<float>(), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        add_forward_cpu<T>(a.data<T>(), b.data<T>(), y.data<T>(), n);
      });
  if (Tape::should_record({a, b})) {
    tape.record("add", {a, b}, {y}, [](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (gx[0]) accumulate(*gx[0], gy[0]);
      if (gx[1]) accumulate(*gx[1], gy[0]);
    });
  }
  return y;
}

Tensor mul(Tape& tape, const Tensor& a, const Tensor& b) {
  check_float(a, "mul", "a");
  check_like(b, a, "mul", "b", "a");
  check_same_shape(a, b, "mul");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  const int64_t n = a.numel();
  on_device(
      a, "mul", [&] { mul_forward_cuda(a.data<float>(), b.data<float>(), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        mul_forward_cpu<T>(a.data<T>(), b.data<T>(), y.data<T>(), n);
      });
  if (Tape::should_record({a, b})) {
    tape.record("mul", {a, b}, {y}, [a, b, n](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      on_device(
          a, "mul backward",
          [&] {
            mul_backward_cuda(a.data<float>(), b.data<float>(), gy[0].data<float>(),
                              gx[0] ? gx[0]->data<float>() : nullptr, gx[1] ? gx[1]->data<float>() : nullptr, n);
          },
          [&](auto z) {
            using T = decltype(z);
            mul_backward_cpu<T>(a.data<T>(), b.data<T>(), gy[0].data<T>(), gx[0] ? gx[0]->data<T>() : nullptr,
                                gx[1] ? gx[1]->data<T>() : nullptr, n);
          });
    });
  }
  return y;
}

Tensor scale(Tape& tape, const Tensor& a, double s) {
  check_float(a, "scale", "a");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  const int64_t n = a.numel();
  on_device(
      a, "scale", [&] { scale_forward_cuda(a.data<float>(), float(s), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        scale_forward_cpu<T>(a.data<T>(), T(s), y.data<T>(), n);
      });
  if (Tape::should_record({a})) {
    tape.record("scale", {a}, {y}, [s](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (gx[0]) accumulate(*gx[0], gy[0], s);
    });
  }
  return y;
}

Tensor add_scalar(Tape& tape, const Tensor& a, double s) {
  check_float(a, "add_scalar", "a");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  const int64_t n = a.numel();
  on_device(
      a, "add_scalar", [&] { add_scalar_forward_cuda(a.data<float>(), float(s), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        add_scalar_forward_cpu<T>(a.data<T>(), T(s), y.data<T>(), n);
      });
  if (Tape::should_record({a})) {
    tape.record("add_scalar", {a}, {y}, [](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (gx[0]) accumulate(*gx[0], gy[0]);
    });
  }
  return y;
}

Tensor clamp(Tape& tape, const Tensor& a, double lo, double hi) {
  check_float(a, "clamp", "a");
  SG_CHECK(lo <= hi, "clamp: lo must be <= hi, got lo=" << lo << " hi=" << hi);
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  const int64_t n = a.numel();
  on_device(
      a, "clamp", [&] { clamp_forward_cuda(a.data<float>(), float(lo), float(hi), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        clamp_forward_cpu<T>(a.data<T>(), T(lo), T(hi), y.data<T>(), n);
      });
  if (Tape::should_record({a})) {
    tape.record("clamp", {a}, {y}, [a, lo, hi, n](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          a, "clamp backward",
          [&] {
            clamp_backward_cuda(a.data<float>(), float(lo), float(hi), gy[0].data<float>(),
                                gx[0]->data<float>(), n);
          },
          [&](auto z) {
            using T = decltype(z);
            clamp_backward_cpu<T>(a.data<T>(), T(lo), T(hi), gy[0].data<T>(), gx[0]->data<T>(), n);
          });
    });
  }
  return y;
}

Tensor sign(const Tensor& a) {
  check_float(a, "sign", "a");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  const int64_t n = a.numel();
  on_device(
      a, "sign", [&] { sign_forward_cuda(a.data<float>(), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        sign_forward_cpu<T>(a.data<T>(), y.data<T>(), n);
      });
  return y;
}

}  // namespace spikegrad::ops
