// Glue for avg_pool2d and max_pool2d (kernels/pool2d.h).
#include <limits>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/pool2d.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::on_device;

namespace {
struct PoolGeometry {
  int64_t planes, H, W, P, Q;
};

PoolGeometry validate(const Tensor& x, int kernel, int stride, const char* op) {
  check_float(x, op, "x");
  SG_CHECK(x.ndim() == 4, op << ": x must be (N,C,H,W), got " << shape_str(x.shape()));
  SG_CHECK(kernel >= 1, op << ": kernel must be >= 1, got " << kernel);
  SG_CHECK(stride >= 1, op << ": stride must be >= 1, got " << stride);
  const int64_t H = x.size(2), W = x.size(3);
  SG_CHECK(H >= kernel && W >= kernel,
           op << ": kernel " << kernel << " does not fit the input plane " << H << "x" << W << " (no padding)");
  // max_pool2d stores argmax as an int32 offset inside the plane.
  SG_CHECK(H * W <= std::numeric_limits<int32_t>::max(),
           op << ": input plane " << H << "x" << W << " has more than 2^31-1 elements");
  return {x.size(0) * x.size(1), H, W, pool_out_size(H, kernel, stride), pool_out_size(W, kernel, stride)};
}
}  // namespace

Tensor avg_pool2d(Tape& tape, const Tensor& x, int kernel, int stride) {
  const PoolGeometry g = validate(x, kernel, stride, "avg_pool2d");
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.P, g.Q}, x.dtype(), x.device());
  on_device(
      x, "avg_pool2d",
      [&] { avg_pool2d_forward_cuda(x.data<float>(), g.planes, g.H, g.W, kernel, stride, y.data<float>()); },
      [&](auto z) {
        using T = decltype(z);
        avg_pool2d_forward_cpu<T>(x.data<T>(), g.planes, g.H, g.W, kernel, stride, y.data<T>());
      });
  if (Tape::should_record({x})) {
    // gy has x's device and dtype: the closure keeps no tensor at all.
    tape.record("avg_pool2d", {x}, {y}, [g, kernel, stride](const std::vector<Tensor>& gy,
                                                            const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "avg_pool2d backward",
          [&] {
            avg_pool2d_backward_cuda(gy[0].data<float>(), g.planes, g.H, g.W, kernel, stride, gx[0]->data<float>());
          },
          [&](auto z) {
            using T = decltype(z);
            avg_pool2d_backward_cpu<T>(gy[0].data<T>(), g.planes, g.H, g.W, kernel, stride, gx[0]->data<T>());
          });
    });
  }
  return y;
}

Tensor max_pool2d(Tape& tape, const Tensor& x, int kernel, int stride) {
  const PoolGeometry g = validate(x, kernel, stride, "max_pool2d");
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.P, g.Q}, x.dtype(), x.device());
  const bool record = Tape::should_record({x});
  // The argmax is the only thing backward needs; skip writing it when nothing will be recorded.
  Tensor argmax = record ? Tensor::empty(y.shape(), DType::I32, x.device()) : Tensor();
  int32_t* argmax_ptr = record ? argmax.data<int32_t>() : nullptr;
  on_device(
      x, "max_pool2d",
      [&] {
        max_pool2d_forward_cuda(x.data<float>(), g.planes, g.H, g.W, kernel, stride,
                                y.data<float>(), argmax_ptr);
      },
      [&](auto z) {
        using T = decltype(z);
        max_pool2d_forward_cpu<T>(x.data<T>(), g.planes, g.H, g.W, kernel, stride, y.data<T>(), argmax_ptr);
      });
  if (record) {
    tape.record("max_pool2d", {x}, {y}, [g, kernel, stride, argmax](const std::vector<Tensor>& gy,
                                                                    const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "max_pool2d backward",
          [&] {
            max_pool2d_backward_cuda(gy[0].data<float>(), argmax.data<int32_t>(), g.planes, g.H, g.W, kernel, stride,
                                     gx[0]->data<float>());
          },
          [&](auto z) {
            using T = decltype(z);
            max_pool2d_backward_cpu<T>(gy[0].data<T>(), argmax.data<int32_t>(), g.planes, g.H, g.W, kernel, stride,
                                       gx[0]->data<T>());
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
