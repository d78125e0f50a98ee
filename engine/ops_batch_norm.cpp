// Glue for batch_norm (kernels/batch_norm.h), and the fused BN + LIF/IF op over the generic fused glue
// (engine/ops_neuron_fused.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "engine/ops_neuron_fused.h"
#include "kernels/batch_norm.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::check_shape;
using detail::dispatch_float;

namespace {
// The (N,C,S) view of x (S = H·W, or 1 for 2-D input).
struct ChannelLayout {
  int64_t N, C, S;
};

ChannelLayout validate(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, const BatchNormOptions& opt) {
  check_float(x, "batch_norm", "x");
  SG_CHECK(x.ndim() == 2 || x.ndim() == 4,
           "batch_norm: x must be (N,C) or (N,C,H,W), got " << shape_str(x.shape()));
  SG_CHECK(weight.defined(), "batch_norm: weight is undefined, but batch_norm is affine and needs weight and bias (C)");
  SG_CHECK(bias.defined(), "batch_norm: bias is undefined, but batch_norm is affine and needs weight and bias (C)");
  const ChannelLayout d{x.size(0), x.size(1), x.ndim() == 4 ? x.size(2) * x.size(3) : 1};
  const Tensor* per_channel[] = {&weight, &bias, &running_mean, &running_var};
  const char* names[] = {"weight", "bias", "running_mean", "running_var"};
  for (int k = 0; k < 4; ++k) {
    check_like(*per_channel[k], x, "batch_norm", names[k], "x");
    check_shape(*per_channel[k], {d.C}, "batch_norm", names[k]);
  }
  SG_CHECK(!running_mean.requires_grad() && !running_var.requires_grad(),
           "batch_norm: running_mean and running_var are buffers updated in place and must not require grad");
  SG_CHECK(opt.eps > 0, "batch_norm: eps must be > 0, got " << opt.eps);
  SG_CHECK(opt.momentum >= 0 && opt.momentum <= 1, "batch_norm: momentum must be in [0,1], got " << opt.momentum);
  // The unbiased running variance divides by M-1, as PyTorch ("Expected more than 1 value per channel").
  SG_CHECK(!opt.training || d.N * d.S > 1, "batch_norm: training needs more than 1 value per channel, got x of shape "
                                               << shape_str(x.shape()));
  return d;
}
}  // namespace

Tensor batch_norm(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormOptions opt) {
  const ChannelLayout d = validate(x, weight, bias, running_mean, running_var, opt);
  const bool training = opt.training;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor save_mean = Tensor::empty({d.C}, x.dtype(), x.device());
  Tensor save_invstd = Tensor::empty({d.C}, x.dtype(), x.device());
  if (x.is_cuda()) {
    SG_CUDA_CALL("batch_norm",
                 batch_norm_forward_cuda(x.data<float>(), weight.data<float>(), bias.data<float>(),
                                         running_mean.data<float>(), running_var.data<float>(), d.N, d.C, d.S, training,
                                         float(opt.momentum), float(opt.eps), y.data<float>(), save_mean.data<float>(),
                                         save_invstd.data<float>()));
  } else {
    dispatch_float(x.dtype(), "batch_norm", [&](auto z) {
      using T = decltype(z);
      batch_norm_forward_cpu<T>(x.data<T>(), weight.data<T>(), bias.data<T>(), running_mean.data<T>(),
                                running_var.data<T>(), d.N, d.C, d.S, training, opt.momentum, opt.eps, y.data<T>(),
                                save_mean.data<T>(), save_invstd.data<T>());
    });
  }
  if (Tape::should_record({x, weight, bias})) {
    tape.record("batch_norm", {x, weight, bias}, {y},
                [x, weight, save_mean, save_invstd, d, training](const std::vector<Tensor>& gy,
                                                                 const std::vector<Tensor*>& gx) {
                  if (x.is_cuda()) {
                    // Σdy and Σdy·xhat per channel, passed from the reduction to the dx kernel.
                    Tensor channel_sums = Tensor::empty({2, d.C}, DType::F32, Device::CUDA);
                    SG_CUDA_CALL("batch_norm backward",
                                 batch_norm_backward_cuda(
                                     x.data<float>(), weight.data<float>(), save_mean.data<float>(),
                                     save_invstd.data<float>(), gy[0].data<float>(), d.N, d.C, d.S, training,
                                     channel_sums.data<float>(), gx[0] ? gx[0]->data<float>() : nullptr,
                                     gx[1] ? gx[1]->data<float>() : nullptr, gx[2] ? gx[2]->data<float>() : nullptr));
                    return;
                  }
                  dispatch_float(x.dtype(), "batch_norm backward", [&](auto z) {
                    using T = decltype(z);
                    batch_norm_backward_cpu<T>(x.data<T>(), weight.data<T>(), save_mean.data<T>(),
                                               save_invstd.data<T>(), gy[0].data<T>(), d.N, d.C, d.S, training,
                                               gx[0] ? gx[0]->data<T>() : nullptr, gx[1] ? gx[1]->data<T>() : nullptr,
                                               gx[2] ? gx[2]->data<T>() : nullptr);
                  });
                });
  }
  return y;
}

}  // namespace spikegrad::ops

// ---- fused BN + neuron (engine/ops_neuron_fused.h) ----------------------------------------------------------
namespace spikegrad::ops {

namespace neuron_detail {
BnLayout check_batch_norm_spike(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                                const Tensor& running_var, const BatchNormOptions& bn, int64_t time_steps,
                                const char* op) {
  const ChannelLayout d = validate(x, weight, bias, running_mean, running_var, bn);
  SG_CHECK(time_steps >= 1 && d.N % time_steps == 0,
           op << ": time_steps must be >= 1 and divide x.size(0) = T·B = " << d.N << ", got " << time_steps);
  return {d.N, d.C, d.S};
}
}  // namespace neuron_detail

// The built-in LIF/IF through the generic fused glue: the same code every registered neuron's fused layer runs.
Tensor batch_norm_spike(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& bn,
                        int64_t time_steps, const SpikeOptions& opt) {
  const char* op = "batch_norm_spike";
  const neuron_detail::BnLayout d =
      neuron_detail::check_batch_norm_spike(x, weight, bias, running_mean, running_var, bn, time_steps, op);
  const neuron_detail::LifSetup l = neuron_detail::lif_setup(opt);
  return neuron_detail::run_bn_neuron(tape, d, x, weight, bias, running_mean, running_var, bn, time_steps, l.neuron,
                                      l.firing, opt, l.rga_tau, Tensor(), op);
}

}  // namespace spikegrad::ops
