// Glue for the ANN-mode activations (kernels/ann_activation.h).
#include <cmath>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/ann_activation.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::on_device;

Tensor relu(Tape& tape, const Tensor& x) {
  check_float(x, "relu", "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = x.numel();
  on_device(
      x, "relu", [&] { relu_forward_cuda(x.data<float>(), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        relu_forward_cpu<T>(x.data<T>(), y.data<T>(), n);
      });
  if (Tape::should_record({x})) {
    tape.record("relu", {x}, {y}, [x, n](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          x, "relu backward",
          [&] { relu_backward_cuda(x.data<float>(), gy[0].data<float>(), gx[0]->data<float>(), n); },
          [&](auto z) {
            using T = decltype(z);
            relu_backward_cpu<T>(x.data<T>(), gy[0].data<T>(), gx[0]->data<T>(), n);
          });
    });
  }
  return y;
}

Tensor qcfs(Tape& tape, const Tensor& x, double threshold, int levels) {
  check_float(x, "qcfs", "x");
  SG_CHECK(std::isfinite(threshold) && threshold > 0, "qcfs: threshold must be finite and > 0, got " << threshold);
  SG_CHECK(levels >= 1, "qcfs: levels must be >= 1, got " << levels);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t n = x.numel();
  on_device(
      x, "qcfs", [&] { qcfs_forward_cuda(x.data<float>(), float(threshold), levels, y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        qcfs_forward_cpu<T>(x.data<T>(), T(threshold), levels, y.data<T>(), n);
      });
  if (Tape::should_record({x})) {
    tape.record("qcfs", {x}, {y}, [x, threshold, n](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          x, "qcfs backward",
          [&] { qcfs_backward_cuda(x.data<float>(), float(threshold), gy[0].data<float>(), gx[0]->data<float>(), n); },
          [&](auto z) {
            using T = decltype(z);
            qcfs_backward_cpu<T>(x.data<T>(), T(threshold), gy[0].data<T>(), gx[0]->data<T>(), n);
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
