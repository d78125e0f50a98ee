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
// agree exactly. With bn.cross_replica set (training), the statistics and BN's dx are over all replicas, as
// ops::batch_norm's (engine/batch_norm_options.h).
// CUDA tensors need SG_INSTANTIATE_NEURON_CUDA(N) (the neuron registry's SG_REGISTER_NEURON does it).
#pragma once
#include <type_traits>

#include "engine/ops_neuron_ext.h"

namespace spikegrad::ops {

// Batch norm's device dispatch, shared by ops::batch_norm and the fused BN + neuron op (defined in
// engine/ops_batch_norm.cpp), including the synchronised path (bn.cross_replica set, training mode).
namespace bn_detail {
// The statistics of x's (N, C, S) view into mean and invstd (C each): the batch's in training mode (all
// replicas' when bn.cross_replica is set), the running buffers' in eval mode; training also steps the
// running buffers. Then y = the normalised x, unless y is undefined (the fused op normalises on the fly).
// Returns the elements per channel the statistics came from (over all replicas), which backward needs.
// `op` names the op in errors.
int64_t forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                const Tensor& running_var, const BatchNormOptions& bn, int64_t N, int64_t C, int64_t S, const Tensor& y,
                const Tensor& mean, const Tensor& invstd, const char* op);
// gx, gweight, gbias (each may be null) += batch norm's gradients from gy; M as forward returned it. In
// training mode with cross_replica set, dx uses all replicas' Σdy and Σdy·xhat; the parameter gradients
// stay this replica's.
void backward(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& invstd, const Tensor& gy,
              int64_t N, int64_t C, int64_t S, bool training, int64_t M, const CrossReplicaSum* cross_replica,
              Tensor* gx, Tensor* gweight, Tensor* gbias, const char* op);
}  // namespace bn_detail

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
  using spikegrad::detail::on_device;
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
  const int64_t M = bn_detail::forward(x, weight, bias, running_mean, running_var, bn, d.N, d.C, d.S, Tensor(), mean,
                                      invstd, op);
  // On CUDA T is float (forward_neuron's CUDA branch); on the CPU the tensor's float type.
  const auto forward_as = [&](auto z) {
    using T = decltype(z);
    forward_neuron(y.data<T>(), static_cast<T*>(nullptr), x_mean.defined() ? x_mean.data<T>() : nullptr);
  };
  on_device(x, op, [&] { forward_as(float{}); }, forward_as);
  if (!record) return y;

  tape.record(op, inputs, {y},
              [=, gamma = opt.rga_gamma](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                // No parameter gradient in RGA mode: g(mean x) does not depend on the neuron's parameters.
                Tensor* gparams = N::kParams > 0 && !rga ? gx[3] : nullptr;
                if (!gx[0] && !gx[1] && !gx[2] && !gparams) return;
                // du: the gradient at the BN output (the neuron's input current), one layer's worth of scratch.
                Tensor du = Tensor::zeros(x.shape(), x.dtype(), x.device());
                const auto backward_cuda = [&] {
                  const float* p = N::kParams > 0 ? params.data<float>() : nullptr;
                  float* gp = gparams ? gparams->data<float>() : nullptr;
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
                };
                on_device(x, op, backward_cuda, [&](auto z) {
                  using T = decltype(z);
                  if (rga) {
                    neurons::rga_backward_cpu<T>(gy[0].data<T>(), x_mean.data<T>(), T(rga_tau), T(gamma),
                                                 du.data<T>(), steps, count);
                  } else {
                    const neurons::BnInput<T> in{x.data<T>(), mean.data<T>(), invstd.data<T>(), weight.data<T>(),
                                                 bias.data<T>(), d.C, d.S};
                    neurons::multistep_recompute_backward_cpu<N, T>(
                        neuron, firing, detach, in, gy[0].data<T>(), N::kParams > 0 ? params.data<T>() : nullptr,
                        du.data<T>(), gparams ? gparams->data<T>() : nullptr, steps, count);
                  }
                });
                bn_detail::backward(x, weight, mean, invstd, du, d.N, d.C, d.S, training, M, bn.cross_replica, gx[0],
                                    gx[1], gx[2], op);
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
