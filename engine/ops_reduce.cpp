// Glue for the full reductions (kernels/reduce.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace spikegrad::ops {

using detail::on_device;

namespace {

Tensor reduce_all(Tape& tape, const Tensor& x, bool average, const char* op) {
  detail::check_float(x, op, "x");
  const int64_t n = x.numel();
  SG_CHECK(!average || n > 0, op << ": mean of an empty tensor " << shape_str(x.shape()) << " is undefined");
  const double scale = average ? 1.0 / double(n) : 1.0;
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  on_device(
      x, op,
      [&] {
        size_t bytes = 0;
        sum_cuda(x.data<float>(), y.data<float>(), n, nullptr, bytes);
        Tensor scratch = Tensor::empty({int64_t(bytes)}, DType::U8, Device::CUDA);
        sum_cuda(x.data<float>(), y.data<float>(), n, scratch.raw_data(), bytes);
        if (average) scale_forward_cuda(y.data<float>(), float(scale), y.data<float>(), 1);  // in place
      },
      [&](auto z) {
        using T = decltype(z);
        y.data<T>()[0] = T(sum_cpu<T>(x.data<T>(), n) * T(scale));
      });
  if (Tape::should_record({x})) {
    tape.record(op, {x}, {y}, [n, scale](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          gy[0], "reduce backward",
          [&] { broadcast_add_cuda(gy[0].data<float>(), float(scale), gx[0]->data<float>(), n); },
          [&](auto z) {
            using T = decltype(z);
            broadcast_add_cpu<T>(gy[0].data<T>(), T(scale), gx[0]->data<T>(), n);
          });
    });
  }
  return y;
}

}  // namespace

Tensor sum(Tape& tape, const Tensor& x) { return reduce_all(tape, x, false, "sum"); }
Tensor mean(Tape& tape, const Tensor& x) { return reduce_all(tape, x, true, "mean"); }

}  // namespace spikegrad::ops
