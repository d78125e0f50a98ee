// Glue for avg_pool2d, max_pool2d and adaptive_avg_pool2d (kernels/pool2d.h).
#include <limits>
#include <string>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/pool2d.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::on_device;

namespace {
struct PoolGeometry {
  int64_t planes, H, W, P, Q;
  int kernel = 0, stride = 0, padding = 0;  // unused by adaptive pooling
};

// x must be a float (N,C,H,W) whose planes fit max_pool2d's int32 argmax offsets.
void check_pool_input(const Tensor& x, const char* op) {
  check_float(x, op, "x");
  SG_CHECK(x.ndim() == 4, op << ": x must be (N,C,H,W), got " << shape_str(x.shape()));
  SG_CHECK(x.size(2) * x.size(3) <= std::numeric_limits<int32_t>::max(),
           op << ": input plane " << x.size(2) << "x" << x.size(3) << " has more than 2^31-1 elements");
}

PoolGeometry validate(const Tensor& x, int kernel, int stride, int padding, const char* op) {
  check_pool_input(x, op);
  SG_CHECK(kernel >= 1, op << ": kernel must be >= 1, got " << kernel);
  SG_CHECK(stride >= 1, op << ": stride must be >= 1, got " << stride);
  SG_CHECK(padding >= 0, op << ": padding must be >= 0, got " << padding);
  // PyTorch's rule; it also keeps every window inside the padded plane and at least one input wide.
  SG_CHECK(padding <= kernel / 2,
           op << ": padding must be at most half the kernel, got padding " << padding << " with kernel " << kernel);
  const int64_t H = x.size(2), W = x.size(3);
  SG_CHECK(H + 2 * padding >= kernel && W + 2 * padding >= kernel,
           op << ": kernel " << kernel << " does not fit the input plane " << H << "x" << W
              << (padding == 0 ? std::string(" (no padding)") : " with padding " + std::to_string(padding)));
  return {x.size(0) * x.size(1), H, W, pool_out_size(H, kernel, stride, padding),
          pool_out_size(W, kernel, stride, padding), kernel, stride, padding};
}
}  // namespace

Tensor avg_pool2d(Tape& tape, const Tensor& x, int kernel, int stride, int padding) {
  const PoolGeometry g = validate(x, kernel, stride, padding, "avg_pool2d");
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.P, g.Q}, x.dtype(), x.device());
  on_device(
      x, "avg_pool2d",
      [&] { avg_pool2d_forward_cuda(x.data<float>(), g.planes, g.H, g.W, kernel, stride, padding, y.data<float>()); },
      [&](auto z) {
        using T = decltype(z);
        avg_pool2d_forward_cpu<T>(x.data<T>(), g.planes, g.H, g.W, kernel, stride, padding, y.data<T>());
      });
  if (Tape::should_record({x})) {
    // gy has x's device and dtype: the closure keeps no tensor at all.
    tape.record("avg_pool2d", {x}, {y}, [g](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "avg_pool2d backward",
          [&] {
            avg_pool2d_backward_cuda(gy[0].data<float>(), g.planes, g.H, g.W, g.kernel, g.stride, g.padding,
                                     gx[0]->data<float>());
          },
          [&](auto z) {
            using T = decltype(z);
            avg_pool2d_backward_cpu<T>(gy[0].data<T>(), g.planes, g.H, g.W, g.kernel, g.stride, g.padding,
                                       gx[0]->data<T>());
          });
    });
  }
  return y;
}

Tensor max_pool2d(Tape& tape, const Tensor& x, int kernel, int stride, int padding) {
  const PoolGeometry g = validate(x, kernel, stride, padding, "max_pool2d");
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.P, g.Q}, x.dtype(), x.device());
  const bool record = Tape::should_record({x});
  // The argmax is the only thing backward needs; skip writing it when nothing will be recorded.
  Tensor argmax = record ? Tensor::empty(y.shape(), DType::I32, x.device()) : Tensor();
  int32_t* argmax_ptr = record ? argmax.data<int32_t>() : nullptr;
  on_device(
      x, "max_pool2d",
      [&] {
        max_pool2d_forward_cuda(x.data<float>(), g.planes, g.H, g.W, kernel, stride, padding, y.data<float>(),
                                argmax_ptr);
      },
      [&](auto z) {
        using T = decltype(z);
        max_pool2d_forward_cpu<T>(x.data<T>(), g.planes, g.H, g.W, kernel, stride, padding, y.data<T>(), argmax_ptr);
      });
  if (record) {
    tape.record("max_pool2d", {x}, {y}, [g, argmax](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "max_pool2d backward",
          [&] {
            max_pool2d_backward_cuda(gy[0].data<float>(), argmax.data<int32_t>(), g.planes, g.H, g.W, g.kernel,
                                     g.stride, g.padding, gx[0]->data<float>());
          },
          [&](auto z) {
            using T = decltype(z);
            max_pool2d_backward_cpu<T>(gy[0].data<T>(), argmax.data<int32_t>(), g.planes, g.H, g.W, g.kernel,
                                       g.stride, g.padding, gx[0]->data<T>());
          });
    });
  }
  return y;
}

Tensor adaptive_avg_pool2d(Tape& tape, const Tensor& x, int out_h, int out_w) {
  const char* op = "adaptive_avg_pool2d";
  check_pool_input(x, op);
  SG_CHECK(out_h >= 1 && out_w >= 1, op << ": output size must be >= 1 in both dimensions, got " << out_h << "x"
                                        << out_w);
  // An empty input plane would leave every bin empty (a mean over nothing).
  SG_CHECK(x.size(2) >= 1 && x.size(3) >= 1,
           op << ": the input plane must be at least 1x1, got " << x.size(2) << "x" << x.size(3));
  const PoolGeometry g{x.size(0) * x.size(1), x.size(2), x.size(3), out_h, out_w};
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.P, g.Q}, x.dtype(), x.device());
  on_device(
      x, op, [&] { adaptive_avg_pool2d_forward_cuda(x.data<float>(), g.planes, g.H, g.W, g.P, g.Q, y.data<float>()); },
      [&](auto z) {
        using T = decltype(z);
        adaptive_avg_pool2d_forward_cpu<T>(x.data<T>(), g.planes, g.H, g.W, g.P, g.Q, y.data<T>());
      });
  if (Tape::should_record({x})) {
    tape.record(op, {x}, {y}, [g](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "adaptive_avg_pool2d backward",
          [&] {
            adaptive_avg_pool2d_backward_cuda(gy[0].data<float>(), g.planes, g.H, g.W, g.P, g.Q, gx[0]->data<float>());
          },
          [&](auto z) {
            using T = decltype(z);
            adaptive_avg_pool2d_backward_cpu<T>(gy[0].data<T>(), g.planes, g.H, g.W, g.P, g.Q, gx[0]->data<T>());
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
