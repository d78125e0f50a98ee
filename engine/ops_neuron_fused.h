// The fused batch norm + neuron op for any neuron struct (contract: kernels/neurons/neuron_defs.h).
//
// batch_norm_spike_with(x, weight, bias, running_mean, running_var, bn, T, neuron, opt, params) computes
// spike_with(reshape(batch_norm(x, ...), {T, -1}), neuron, opt, params) reshaped to x's shape, as ONE op: x is
// the conv output (T·B, C, H, W) or (T·B, C), time-major, and T must divide x.size(0). ops::batch_norm_spike
// (engine/ops_neuron.h) is this op for the built-in LIF/IF; the neuron registry (engine/neuron_registry.h) runs
// every registered neuron's fused layer through it.
// Forward: the BN statistics (and the running-buffer update), then the neuron reading x through
// neurons::BnInput, which normalises on the fly with the unfused BN's own bn_normalize, so the normalised
// tensor is never written and the neuron sees bit for bit the current the unfused path gives it.
// Saved for backward: x, 2·C statistics and (RGA) the time-mean of the normalised input; never the neuron's
// records, which backward recomputes from x with the same forward step (per CPU chunk, or per CUDA thread
// for T <= neurons::kMaxRecomputeSteps, else into one scratch buffer) before the neuron's BPTT and BN's
// backward. Gradients: x, weight, bias and, when the neuron has learnable scalars (N::kParams > 0) and the
// backward is BPTT, `params` — the same sums in the same order as the unfused path, so fused and unfused
// agree exactly.
// CUDA tensors need SG_INSTANTIATE_NEURON_CUDA(N) (the neuron registry's SG_REGISTER_NEURON does it).
#pragma once
#include <type_traits>

#include "engine/ops.h"
#include "kernels/batch_norm.h"

namespace spikegrad::ops {

namespace neuron_detail {
// The (N, C, S) view of the conv output that batch norm uses (S = H·W, or 1 for 2-D input).
struct BnLayout {
  int64_t N, C, S;
};
// batch_norm's checks of x and the per-channel tensors, then time_steps >= 1 dividing x.size(0).
BnLayout check_batch_norm_spike(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                                const Tensor& running_var, const BatchNormOptions& bn, int64_t time_steps,
                                const char* op);

// The glue behind batch_norm_spike and batch_norm_spike_with: forward, one tape node. `d` comes from
// check_batch_norm_spike; firing and rga_tau are checked by the caller.
template <class N>
Tensor run_bn_neuron(Tape& tape, const BnLayout& d, const Tensor& x, const Tensor& weight, const Tensor& bias,
                     const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& bn,
                     int64_t time_steps, const N& neuron, const neurons::Firing& firing, const SpikeOptions& opt,
                     double rga_tau, const Tensor& params, const char* op) {
  using spikegrad::detail::check_like;
  using spikegrad::detail::dispatch_float;
  if (N::kParams > 0) {
    check_like(params, x, op, "params", "x");
    SG_CHECK(params.numel() == N::kParams,
             op << ": params must hold " << N::kParams << " value(s), got shape " << shape_str(params.shape()));
  }
  const int64_t steps = time_steps, count = x.numel() / time_steps;
  const bool rga = opt.backward == SpikeBackward::rga, detach = opt.detach_reset, training = bn.training;
  const std::vector<Tensor> inputs =
      N::kParams > 0 ? std::vector<Tensor>{x, weight, bias, params} : std::vector<Tensor>{x, weight, bias};
  const bool record = Tape::should_record(inputs);

  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({d.C}, x.dtype(), x.device());
  Tensor invstd = Tensor::empty({d.C}, x.dtype(), x.device());
  Tensor x_mean = record && rga ? Tensor::empty({count}, x.dtype(), x.device()) : Tensor();
  // The neuron reading x through BnInput, once mean/invstd hold the statistics. spikes may be null (a
  // backward recomputing the records only); T is float or double, CUDA float only.
  auto forward_neuron = [=](auto* spikes, auto* records, auto* mean_out) {
    using T = std::remove_pointer_t<decltype(spikes)>;
    const neurons::BnInput<T> in{x.data<T>(), mean.data<T>(), invstd.data<T>(), weight.data<T>(), bias.data<T>(), d.C, d.S};
    const T* p = N::kParams > 0 ? params.data<T>() : nullptr;
    if (!x.is_cuda()) {
      neurons::multistep_forward_input_cpu<N, T>(neuron, firing, in, p, spikes, records, mean_out, steps, count);
    } else if constexpr (std::is_same_v<T, float>) {
      SG_CUDA_CALL(op, neurons::multistep_forward_bn_cuda(neuron, firing, in, p, spikes, records, mean_out, steps, count));
    }
  };
  if (x.is_cuda()) {
    SG_CUDA_CALL(op, batch_norm_forward_cuda(x.data<float>(), weight.data<float>(), bias.data<float>(),
                                             running_mean.data<float>(), running_var.data<float>(), d.N, d.C, d.S,
                                             training, float(bn.momentum), float(bn.eps), nullptr,
                                             mean.data<float>(), invstd.data<float>()));
    forward_neuron(y.data<float>(), static_cast<float*>(nullptr), x_mean.defined() ? x_mean.data<float>() : nullptr);
  } else {
    dispatch_float(x.dtype(), op, [&](auto z) {
      using T = decltype(z);
      batch_norm_forward_cpu<T>(x.data<T>(), weight.data<T>(), bias.data<T>(), running_mean.data<T>(),
                                running_var.data<T>(), d.N, d.C, d.S, training, bn.momentum, bn.eps, nullptr,
                                mean.data<T>(), invstd.data<T>());
      forward_neuron(y.data<T>(), static_cast<T*>(nullptr), x_mean.defined() ? x_mean.data<T>() : nullptr);
    });
  }
  if (!record) return y;

  tape.record(op, inputs, {y},
              [=, gamma = opt.rga_gamma](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                // No parameter gradient in RGA mode: g(mean x) does not depend on the neuron's parameters.
                Tensor* grad_p = N::kParams > 0 && !rga ? gx[3] : nullptr;
                if (!gx[0] && !gx[1] && !gx[2] && !grad_p) return;
                // du: the gradient at the BN output (the neuron's input current), one layer's worth of scratch.
                Tensor du = Tensor::zeros(x.shape(), x.dtype(), x.device());
                if (x.is_cuda()) {
                  const float* p = N::kParams > 0 ? params.data<float>() : nullptr;
                  float* gp = grad_p ? grad_p->data<float>() : nullptr;
                  const int64_t scratch_n = gp ? neurons::multistep_cuda_scratch(N::kParams, count) : 0;
                  Tensor scratch = scratch_n > 0 ? Tensor::empty({scratch_n}, DType::F64, Device::CUDA) : Tensor();
                  double* sp = scratch.defined() ? scratch.data<double>() : nullptr;
                  if (rga) {
                    SG_CUDA_CALL(op, neurons::rga_backward_cuda(gy[0].data<float>(), x_mean.data<float>(), float(rga_tau),
                                                               float(gamma), du.data<float>(), steps, count));
                  } else if (steps <= neurons::kMaxRecomputeSteps) {  // records recomputed in registers/L1
                    const neurons::BnInput<float> in{x.data<float>(), mean.data<float>(), invstd.data<float>(),
                                                     weight.data<float>(), bias.data<float>(), d.C, d.S};
                    SG_CUDA_CALL(op, neurons::multistep_recompute_backward_bn_cuda(
                                         neuron, firing, detach, in, gy[0].data<float>(), p, du.data<float>(), gp, sp,
                                         steps, count));
                  } else {  // long runs: recompute the records into a scratch buffer first
                    Tensor records = Tensor::empty({N::kSaved, steps, count}, x.dtype(), x.device());
                    forward_neuron(static_cast<float*>(nullptr), records.data<float>(), static_cast<float*>(nullptr));
                    SG_CUDA_CALL(op, neurons::multistep_backward_cuda(neuron, firing, detach, gy[0].data<float>(),
                                                                     records.data<float>(), p, du.data<float>(), gp, sp,
                                                                     steps, count));
                  }
                  Tensor channel_sums = Tensor::empty({2, d.C}, DType::F32, Device::CUDA);
                  SG_CUDA_CALL(op, batch_norm_backward_cuda(x.data<float>(), weight.data<float>(), mean.data<float>(),
                                                           invstd.data<float>(), du.data<float>(), d.N, d.C, d.S,
                                                           training, channel_sums.data<float>(),
                                                           gx[0] ? gx[0]->data<float>() : nullptr,
                                                           gx[1] ? gx[1]->data<float>() : nullptr,
                                                           gx[2] ? gx[2]->data<float>() : nullptr));
                  return;
                }
                dispatch_float(x.dtype(), op, [&](auto z) {
                  using T = decltype(z);
                  if (rga) {
                    neurons::rga_backward_cpu<T>(gy[0].data<T>(), x_mean.data<T>(), T(rga_tau), T(gamma), du.data<T>(),
                                                 steps, count);
                  } else {
                    const neurons::BnInput<T> in{x.data<T>(), mean.data<T>(), invstd.data<T>(), weight.data<T>(),
                                                 bias.data<T>(), d.C, d.S};
                    neurons::multistep_recompute_backward_cpu<N, T>(
                        neuron, firing, detach, in, gy[0].data<T>(), N::kParams > 0 ? params.data<T>() : nullptr,
                        du.data<T>(), grad_p ? grad_p->data<T>() : nullptr, steps, count);
                  }
                  batch_norm_backward_cpu<T>(x.data<T>(), weight.data<T>(), mean.data<T>(), invstd.data<T>(),
                                             du.data<T>(), d.N, d.C, d.S, training, gx[0] ? gx[0]->data<T>() : nullptr,
                                             gx[1] ? gx[1]->data<T>() : nullptr, gx[2] ? gx[2]->data<T>() : nullptr);
                });
              });
  return y;
}
}  // namespace neuron_detail

// A neuron struct's fused layer, as spike_with is its unfused op: of `opt` it uses the firing and backward
// settings (strict, unset = strict; surrogate, smooth, detach_reset, backward, rga_tau required for RGA,
// rga_gamma); the struct carries its own threshold, decay and reset. `params`: N::kParams learnable scalars.
template <class Neuron>
Tensor batch_norm_spike_with(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& bn,
                             int64_t time_steps, const Neuron& neuron, const SpikeOptions& opt,
                             const Tensor& params = Tensor()) {
  const char* op = "batch_norm_spike_with";
  const neuron_detail::BnLayout d =
      neuron_detail::check_batch_norm_spike(x, weight, bias, running_mean, running_var, bn, time_steps, op);
  const neurons::Firing f = neuron_detail::firing_from(opt, /*default_strict=*/true, op);
  const double tau = opt.backward == SpikeBackward::rga ? neuron_detail::rga_tau_checked(opt, std::nullopt, op) : 0.0;
  return neuron_detail::run_bn_neuron(tape, d, x, weight, bias, running_mean, running_var, bn, time_steps, neuron, f,
                                      opt, tau, params, op);
}

}  // namespace spikegrad::ops
