// Public ops of the neuron family (declared here to keep engine/ops.h readable; included by it).
//
// A spiking layer is ONE op over all time steps: x (T,B,...) time-major input current -> spikes of the same
// shape and dtype (0/1, or S(u) in smooth mode). BPTT runs inside the op (kernels/neurons/multistep.h), so a
// layer puts one node on the tape, not T. Every call starts from v = 0: no state survives between calls.
// Backward modes, chosen per call: full BPTT with a surrogate, or RGA (reference.md §5.3) for attacks.
// Memory kept for backward: BPTT 4 B per neuron per step (h), RGA 4 B per neuron (the time-mean of x).
#pragma once
#include <optional>

#include "engine/batch_norm_options.h"
#include "engine/op_util.h"
#include "engine/tape.h"
#include "engine/tensor.h"
#include "kernels/neurons/multistep.h"

namespace spikegrad::ops {

using neurons::ResetKind;
using neurons::SurrogateKind;

// The surrogate derivative used by backward (formulas in kernels/neurons/neuron_defs.h); `alpha` is its one
// parameter: triangle half-width gamma, sigmoid/atan slope alpha, rectangle width.
struct Surrogate {
  SurrogateKind kind = SurrogateKind::triangle;
  double alpha = 1.0;
  static Surrogate triangle(double gamma = 1.0) { return {SurrogateKind::triangle, gamma}; }
  static Surrogate sigmoid(double alpha = 4.0) { return {SurrogateKind::sigmoid, alpha}; }
  static Surrogate atan(double alpha = 2.0) { return {SurrogateKind::atan, alpha}; }
  static Surrogate rectangle(double width = 1.0) { return {SurrogateKind::rectangle, width}; }
};

enum class NeuronKind { lif, if_ };         // IF = no leak (decay 1), as in the SNN-RAT/RGA code
enum class SpikeBackward { bptt, rga };

// Defaults are reference.md §2's LIF: h = 0.5 v + x, spike iff h > 1, hard reset to 0 with the gradient
// through the reset, triangle surrogate gamma = 1.
struct SpikeOptions {
  NeuronKind neuron = NeuronKind::lif;
  double threshold = 1.0;
  double decay = 0.5;                    // LIF only: h = decay*v + x, 0 <= decay <= 1 (IF uses 1; PLIF learns it)
  std::optional<bool> strict;            // spike iff h > theta (true) or h >= theta; unset: LIF strict, IF not
  ResetKind reset = ResetKind::hard;     // hard: v = (1-s) h; soft: v = h - s*theta
  bool detach_reset = false;             // no gradient through the spike in the reset
  Surrogate surrogate;
  SpikeBackward backward = SpikeBackward::bptt;
  std::optional<double> rga_tau;         // RGA's tau, in [0,1]; unset: the neuron's decay (LIF decay, IF 1)
  double rga_gamma = 0.2;
  bool smooth = false;                   // forward emits S(h - theta), the integral of the surrogate (for
                                         // finite-difference checks); the reset uses that smooth spike too
};

// LIF or IF over x (T,B,...) float.
Tensor spike(Tape& tape, const Tensor& x, const SpikeOptions& opt = {});
// PLIF: LIF with a learnable decay sig(decay_logit); decay_logit is one element (shape () or (1)), like x
// (device, dtype), and gets a gradient in BPTT mode (none in RGA mode, whose backward has no decay in it).
// opt.neuron must be lif; opt.decay is not used; RGA needs opt.rga_tau set explicitly.
Tensor plif_spike(Tape& tape, const Tensor& x, const Tensor& decay_logit, const SpikeOptions& opt = {});

// ---- extension point ---------------------------------------------------------------------------------------
// Runs a user-defined neuron struct (contract: kernels/neurons/neuron_defs.h; guide: docs/neurons.md) through
// the same template. `params` holds its Neuron::kParams learnable scalars (undefined when kParams == 0). Of
// `opt` it uses the firing and backward settings: strict (unset = strict), surrogate, smooth, detach_reset,
// backward, rga_tau (required for RGA), rga_gamma; the neuron struct carries its own threshold, decay, reset.
// CUDA tensors need SG_INSTANTIATE_NEURON_CUDA(Neuron) in one .cu file (kernels/neurons/multistep.cuh); a
// registered neuron's SG_REGISTER_NEURON line does it (engine/neuron_registration.h). The fused BN + neuron
// op for a neuron struct: batch_norm_spike_with (engine/ops_neuron_fused.h).
template <class Neuron>
Tensor spike_with(Tape& tape, const Tensor& x, const Neuron& n, const SpikeOptions& opt, const Tensor& params = Tensor());

// ---- fused batch norm + LIF/IF ---------------------------------------------------------------------------
// batch_norm_spike(x, ...) computes spike(reshape(batch_norm(x, ...), {T, -1}), opt) reshaped to x's shape —
// a spiking layer's BN and neuron as ONE op: x is the conv output (T·B, C, H, W) or (T·B, C), time-major
// (T = time_steps must divide x.size(0)); opt.neuron is lif or if. Any other neuron struct: the same op as
// batch_norm_spike_with (engine/ops_neuron_fused.h), which every registered neuron's fused layer runs
// (engine/neuron_registry.h).
// Forward: the BN statistics (and the running-buffer update), then one kernel that normalises on the fly and
// runs the neuron, so the normalised tensor is never written or read (8 B per neuron per step less traffic).
// Saved for backward: x (the conv output, which the unfused BN keeps anyway) and 2·C statistics — the neuron's
// records h are NOT kept. Backward recomputes each neuron's records from x with the same forward step
// (bit-identical: same code, same inputs) into a small per-chunk (CPU) or per-thread (CUDA, T <= 16)
// buffer, runs the neuron's backward from it, then BN's backward. That saves 4 B per neuron per step for the
// whole time between forward and backward, and the records never travel through memory; the price is the
// neuron's forward arithmetic once more in backward. (RGA mode keeps its time-mean of the BN output as the
// unfused op does, and recomputes nothing.)
Tensor batch_norm_spike(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& bn,
                        int64_t time_steps, const SpikeOptions& opt = {});

namespace neuron_detail {
// The LIF/IF neuron, firing rule and RGA tau that spike() runs for `opt`, checked.
struct LifSetup {
  neurons::Lif neuron;
  neurons::Firing firing;
  double rga_tau = 0;
  const char* op = "lif";
};
LifSetup lif_setup(const SpikeOptions& opt);
void check_spike_input(const Tensor& x, const char* op);
neurons::Firing firing_from(const SpikeOptions& opt, bool default_strict, const char* op);
double rga_tau_checked(const SpikeOptions& opt, std::optional<double> neuron_decay, const char* op);

// The glue behind spike, plif_spike and spike_with: validate, run forward, record one node.
template <class N>
Tensor run_neuron(Tape& tape, const Tensor& x, const N& n, const neurons::Firing& f, const SpikeOptions& opt,
                  double rga_tau, const Tensor& params, const char* op) {
  using spikegrad::detail::check_like;
  using spikegrad::detail::dispatch_float;
  check_spike_input(x, op);
  if (N::kParams > 0) {
    check_like(params, x, op, "params", "x");
    SG_CHECK(params.numel() == N::kParams,
             op << ": params must hold " << N::kParams << " value(s), got shape " << shape_str(params.shape()));
  }
  const int64_t steps = x.size(0), count = x.numel() / steps;
  const bool rga = opt.backward == SpikeBackward::rga;
  const bool detach = opt.detach_reset;
  const std::vector<Tensor> inputs = N::kParams > 0 ? std::vector<Tensor>{x, params} : std::vector<Tensor>{x};
  const bool record = Tape::should_record(inputs);

  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor saved;  // BPTT: records (kSaved, T, n); RGA: the time-mean of x (n)
  if (record) saved = rga ? Tensor::empty({count}, x.dtype(), x.device())
                          : Tensor::empty({N::kSaved, steps, count}, x.dtype(), x.device());
  Tensor records = record && !rga ? saved : Tensor(), x_mean = record && rga ? saved : Tensor();
  if (x.is_cuda()) {
    SG_CUDA_CALL(op, neurons::multistep_forward_cuda<N>(
                         n, f, x.data<float>(), N::kParams > 0 ? params.data<float>() : nullptr, y.data<float>(),
                         records.defined() ? records.data<float>() : nullptr,
                         x_mean.defined() ? x_mean.data<float>() : nullptr, steps, count));
  } else {
    dispatch_float(x.dtype(), op, [&](auto z) {
      using T = decltype(z);
      neurons::multistep_forward_cpu<N, T>(n, f, x.data<T>(), N::kParams > 0 ? params.data<T>() : nullptr,
                                           y.data<T>(), records.defined() ? records.data<T>() : nullptr,
                                           x_mean.defined() ? x_mean.data<T>() : nullptr, steps, count);
    });
  }
  if (!record) return y;

  tape.record(op, inputs, {y},
              [n, f, detach, rga, rga_tau, gamma = opt.rga_gamma, saved, params, steps, count, op](
                  const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                Tensor* grad_x = gx[0];
                Tensor* grad_p = N::kParams > 0 ? gx[1] : nullptr;
                if (rga) {  // no parameter gradient: g(mean x) does not depend on the neuron's parameters
                  if (!grad_x) return;
                  if (saved.is_cuda()) {
                    SG_CUDA_CALL(op, neurons::rga_backward_cuda(gy[0].data<float>(), saved.data<float>(), float(rga_tau),
                                                               float(gamma), grad_x->data<float>(), steps, count));
                    return;
                  }
                  dispatch_float(saved.dtype(), op, [&](auto z) {
                    using T = decltype(z);
                    neurons::rga_backward_cpu<T>(gy[0].data<T>(), saved.data<T>(), T(rga_tau), T(gamma),
                                                 grad_x->data<T>(), steps, count);
                  });
                  return;
                }
                if (!grad_x && !grad_p) return;
                if (saved.is_cuda()) {
                  const int64_t scratch_n = grad_p ? neurons::multistep_cuda_scratch(N::kParams, count) : 0;
                  Tensor scratch = scratch_n > 0 ? Tensor::empty({scratch_n}, DType::F64, Device::CUDA) : Tensor();
                  SG_CUDA_CALL(op, neurons::multistep_backward_cuda<N>(
                                       n, f, detach, gy[0].data<float>(), saved.data<float>(),
                                       N::kParams > 0 ? params.data<float>() : nullptr,
                                       grad_x ? grad_x->data<float>() : nullptr, grad_p ? grad_p->data<float>() : nullptr,
                                       scratch.defined() ? scratch.data<double>() : nullptr, steps, count));
                  return;
                }
                dispatch_float(saved.dtype(), op, [&](auto z) {
                  using T = decltype(z);
                  neurons::multistep_backward_cpu<N, T>(n, f, detach, gy[0].data<T>(), saved.data<T>(),
                                                        N::kParams > 0 ? params.data<T>() : nullptr,
                                                        grad_x ? grad_x->data<T>() : nullptr,
                                                        grad_p ? grad_p->data<T>() : nullptr, steps, count);
                });
              });
  return y;
}
}  // namespace neuron_detail

template <class Neuron>
Tensor spike_with(Tape& tape, const Tensor& x, const Neuron& n, const SpikeOptions& opt, const Tensor& params) {
  const neurons::Firing f = neuron_detail::firing_from(opt, /*default_strict=*/true, "spike_with");
  const double tau = opt.backward == SpikeBackward::rga ? neuron_detail::rga_tau_checked(opt, std::nullopt, "spike_with") : 0.0;
  return neuron_detail::run_neuron(tape, x, n, f, opt, tau, params, "spike_with");
}

}  // namespace spikegrad::ops
