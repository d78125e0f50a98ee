// Glue for weighted_sum (kernels/weighted_sum.h).
#include <string>
#include <vector>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/weighted_sum.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::on_device;

namespace {
void validate(const std::vector<Tensor>& xs, const Tensor& weights, const char* op) {
  SG_CHECK(!xs.empty(), op << ": xs must hold at least one tensor, got none");
  check_float(xs[0], op, "xs[0]");
  for (size_t i = 1; i < xs.size(); ++i) {
    const std::string name = "xs[" + std::to_string(i) + "]";
    check_like(xs[i], xs[0], op, name.c_str(), "xs[0]");
    SG_CHECK(xs[i].shape() == xs[0].shape(), op << ": " << name << " must have the shape of xs[0] "
                                                << shape_str(xs[0].shape()) << ", got " << shape_str(xs[i].shape()));
  }
  check_like(weights, xs[0], op, "weights", "xs[0]");
  SG_CHECK(weights.ndim() == 1 && weights.size(0) == int64_t(xs.size()),
           op << ": weights must be 1-D with " << xs.size() << " entries (one per x), got "
              << shape_str(weights.shape()));
}

template <class T> std::vector<const T*> data_of(const std::vector<Tensor>& ts) {
  std::vector<const T*> ptrs;
  for (const Tensor& t : ts) ptrs.push_back(t.data<T>());
  return ptrs;
}
}  // namespace

Tensor weighted_sum(Tape& tape, const std::vector<Tensor>& xs, const Tensor& weights) {
  const char* op = "weighted_sum";
  validate(xs, weights, op);
  const int64_t count = int64_t(xs.size()), n = xs[0].numel();
  Tensor y = Tensor::empty(xs[0].shape(), xs[0].dtype(), xs[0].device());
  on_device(
      xs[0], op,
      [&] { weighted_sum_forward_cuda(data_of<float>(xs).data(), count, weights.data<float>(), y.data<float>(), n); },
      [&](auto z) {
        using T = decltype(z);
        weighted_sum_forward_cpu<T>(data_of<T>(xs).data(), count, weights.data<T>(), y.data<T>(), n);
      });
  std::vector<Tensor> inputs = xs;
  inputs.push_back(weights);
  if (Tape::should_record(inputs)) {
    // The x_i are needed only for the weights' gradient: keep them only when the weights want one.
    std::vector<Tensor> saved_xs = weights.requires_grad() ? xs : std::vector<Tensor>{};
    tape.record(op, inputs, {y}, [saved_xs, weights, count, n](const std::vector<Tensor>& gy,
                                                               const std::vector<Tensor*>& gx) {
      Tensor* gw = gx[size_t(count)];
      SG_CHECK(!gw || !saved_xs.empty(), "weighted_sum backward: the weights want a gradient but did not require one "
                                         "at the forward, so the inputs were not kept");
      on_device(
          gy[0], "weighted_sum backward",
          [&] {
            std::vector<float*> gxs;
            for (int64_t i = 0; i < count; ++i) gxs.push_back(gx[size_t(i)] ? gx[size_t(i)]->data<float>() : nullptr);
            const detail::CudaScratch scratch =
                detail::cuda_scratch(gw ? weighted_sum_backward_cuda_scratch_bytes(count, n) : 0);
            weighted_sum_backward_cuda(gw ? data_of<float>(saved_xs).data() : nullptr, count, weights.data<float>(),
                                       gy[0].data<float>(), gxs.data(), gw ? gw->data<float>() : nullptr, n,
                                       scratch.ptr, scratch.bytes);
          },
          [&](auto z) {
            using T = decltype(z);
            std::vector<T*> gxs;
            for (int64_t i = 0; i < count; ++i) gxs.push_back(gx[size_t(i)] ? gx[size_t(i)]->data<T>() : nullptr);
            weighted_sum_backward_cpu<T>(gw ? data_of<T>(saved_xs).data() : nullptr, count, weights.data<T>(),
                                         gy[0].data<T>(), gxs.data(), gw ? gw->data<T>() : nullptr, n);
          });
    });
  }
  return y;
}

}  // namespace spikegrad::ops
