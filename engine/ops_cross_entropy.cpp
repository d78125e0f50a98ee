// Glue for the fused cross-entropy (kernels/cross_entropy.h).
#include <sstream>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/cross_entropy.h"

namespace spikegrad::ops {

using detail::on_device;

namespace {
std::string label_error(int64_t label, int64_t row, int64_t k) {
  std::ostringstream o;
  o << "cross_entropy: label " << label << " at row " << row << " is outside [0," << k << ")";
  return o.str();
}
}  // namespace

Tensor cross_entropy(Tape& tape, const Tensor& logits, const Tensor& labels) {
  const char* op = "cross_entropy";
  detail::check_float(logits, op, "logits");
  detail::check_ndim(logits, 2, op, "logits");
  detail::check_defined(labels, op, "labels");
  SG_CHECK(labels.dtype() == DType::I32, op << ": labels must be int32, got " << dtype_name(labels.dtype()));
  SG_CHECK(labels.device() == logits.device(), op << ": labels are on " << device_name(labels.device())
                                                  << " but logits are on " << device_name(logits.device()));
  const int64_t n = logits.size(0), k = logits.size(1);
  detail::check_shape(labels, {n}, op, "labels");
  SG_CHECK(n > 0 && k > 0, op << ": logits must be non-empty, got " << shape_str(logits.shape()));
  Tensor row_loss = Tensor::empty({n}, logits.dtype(), logits.device());
  Tensor stats = Tensor::empty({n, 2}, logits.dtype(), logits.device());  // per row: max, log Σ exp(x − max)
  on_device(
      logits, op,
      [&] {
        // A label range check on the host would copy the labels back and wait for the device on every call
        // (every training step, every attack step). The kernel checks each label it reads instead, and a bad
        // one is thrown at the next synchronisation with the CPU's message (a deferred device check,
        // engine/cuda_context.h).
        cross_entropy_forward_cuda(logits.data<float>(), labels.data<int32_t>(), row_loss.data<float>(),
                                   stats.data<float>(), n, k, arm_device_check([k](int64_t row, double label) {
                                     return label_error(int64_t(label), row, k);
                                   }));
      },
      [&](auto z) {
        using T = decltype(z);
        // An out-of-range label would read outside its row.
        const int32_t* y = labels.data<int32_t>();
        for (int64_t i = 0; i < n; ++i) SG_CHECK(y[i] >= 0 && y[i] < k, label_error(y[i], i, k));
        cross_entropy_forward_cpu<T>(logits.data<T>(), labels.data<int32_t>(), row_loss.data<T>(), stats.data<T>(), n,
                                     k);
      });
  // The mean over rows goes through ops::mean without recording; the node below owns the whole gradient.
  Tensor y;
  {
    NoGradGuard ng;
    Tape unused;
    y = mean(unused, row_loss);
  }
  if (Tape::should_record({logits})) {
    tape.record(op, {logits}, {y}, [logits, labels, stats, n, k](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      on_device(
          logits, "cross_entropy backward",
          [&] {
            cross_entropy_backward_cuda(logits.data<float>(), labels.data<int32_t>(), stats.data<float>(),
                                        gy[0].data<float>(), gx[0]->data<float>(), n, k);
          },
          [&](auto z) {
            using T = decltype(z);
            cross_entropy_backward_cpu<T>(logits.data<T>(), labels.data<int32_t>(), stats.data<T>(), gy[0].data<T>(),
                                          gx[0]->data<T>(), n, k);
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
