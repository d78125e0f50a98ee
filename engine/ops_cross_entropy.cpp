// Glue for the fused cross-entropy (kernels/cross_entropy.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/cross_entropy.h"

namespace spikegrad::ops {

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
  // Range check on the host: an out-of-range label would read outside the row on the device.
  // N labels are a few hundred bytes, so the copy costs far less than the step it protects.
  {
    std::vector<int32_t> host = labels.to_vector<int32_t>();
    for (int64_t i = 0; i < n; ++i)
      SG_CHECK(host[size_t(i)] >= 0 && host[size_t(i)] < k,
               op << ": label " << host[size_t(i)] << " at row " << i << " is outside [0," << k << ")");
  }

  Tensor row_loss = Tensor::empty({n}, logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({n}, logits.dtype(), logits.device());
  if (logits.is_cuda()) {
    SG_CUDA_CALL(op, cross_entropy_forward_cuda(logits.data<float>(), labels.data<int32_t>(), row_loss.data<float>(),
                                                lse.data<float>(), n, k));
  } else {
    detail::dispatch_float(logits.dtype(), op, [&](auto z) {
      using T = decltype(z);
      cross_entropy_forward_cpu<T>(logits.data<T>(), labels.data<int32_t>(), row_loss.data<T>(), lse.data<T>(), n, k);
    });
  }
  // The mean over rows goes through ops::mean without recording; the node below owns the whole gradient.
  Tensor y;
  {
    NoGradGuard ng;
    Tape unused;
    y = mean(unused, row_loss);
  }
  if (Tape::should_record({logits})) {
    tape.record(op, {logits}, {y}, [logits, labels, lse, n, k](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
      if (!gx[0]) return;
      if (logits.is_cuda()) {
        SG_CUDA_CALL("cross_entropy backward",
                     cross_entropy_backward_cuda(logits.data<float>(), labels.data<int32_t>(), lse.data<float>(),
                                                 gy[0].data<float>(), gx[0]->data<float>(), n, k));
        return;
      }
      detail::dispatch_float(logits.dtype(), "cross_entropy backward", [&](auto z) {
        using T = decltype(z);
        cross_entropy_backward_cpu<T>(logits.data<T>(), labels.data<int32_t>(), lse.data<T>(), gy[0].data<T>(),
                                      gx[0]->data<T>(), n, k);
      });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
