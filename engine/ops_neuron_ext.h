// The neuron extension header: spike_with, which runs a neuron struct of one's own (contract:
// kernels/neurons/neuron_defs.h; guide: docs/neurons.md) through the same multi-step template as the built-in
// neurons, and neuron_detail, the glue every neuron op shares (spike, plif_spike, spike_with, the fused
// layers of engine/ops_neuron_fused.h and the registry's runners of engine/neuron_registration.h).
// Kept out of engine/ops.h because it needs the kernels' template (kernels/neurons/multistep.h); include it
// where a neuron struct is run, not where the built-in ops are called.
#pragma once
#include <optional>
#include <vector>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/neurons/multistep.h"

namespace spikegrad::ops {

// Runs a user-defined neuron struct through the same template. `params` holds its Neuron::kParams learnable
// scalars (undefined when kParams == 0). Of `opt` it uses the firing and backward settings: strict (unset =
// strict), surrogate, smooth, detach_reset, backward, rga_tau (required for RGA), rga_gamma; the neuron struct
// carries its own threshold, decay, reset. CUDA tensors need SG_INSTANTIATE_NEURON_CUDA(Neuron) in one .cu file
// (kernels/neurons/multistep.cuh); a registered neuron's SG_REGISTER_NEURON line does it
// (engine/neuron_registration.h). The fused BN + neuron op for a neuron struct: batch_norm_spike_with
// (engine/ops_neuron_fused.h).
template <class Neuron>
Tensor spike_with(Tape& tape, const Tensor& x, const Neuron& n, const SpikeOptions& opt,
                  const Tensor& params = Tensor());

namespace neuron_detail {

// The public enums as the kernels spell them (engine/spike_options.h says why there are two).
neurons::SurrogateKind kernel_surrogate(SurrogateKind kind);
neurons::ResetKind kernel_reset(ResetKind reset);

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

// Backward of run_neuron's node in RGA mode: gx from the saved time-mean of x. No parameter gradient:
// g(mean x) does not depend on the neuron's parameters.
inline void rga_backward(const Tensor& gy, const Tensor& x_mean, double rga_tau, double gamma, const Tensor& gx,
                         int64_t steps, int64_t count, const char* op) {
  detail::on_device(
      x_mean, op,
      [&] {
        neurons::rga_backward_cuda(gy.data<float>(), x_mean.data<float>(), float(rga_tau), float(gamma),
                                   gx.data<float>(), steps, count);
      },
      [&](auto z) {
        using T = decltype(z);
        neurons::rga_backward_cpu<T>(gy.data<T>(), x_mean.data<T>(), T(rga_tau), T(gamma), gx.data<T>(), steps,
                                     count);
      });
}

// The glue behind spike, plif_spike and spike_with: validate, run forward, record one node.
template <class N>
Tensor run_neuron(Tape& tape, const Tensor& x, const N& n, const neurons::Firing& f, const SpikeOptions& opt,
                  double rga_tau, const Tensor& params, const char* op) {
  using spikegrad::detail::check_like;
  using spikegrad::detail::on_device;
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
  // A pointer into t, or null where t is not wanted (undefined): the kernels take null for "none".
  auto ptr = [](const Tensor& t, auto z) { return t.defined() ? t.data<decltype(z)>() : nullptr; };
  const Tensor p = N::kParams > 0 ? params : Tensor();
  on_device(
      x, op,
      [&] {
        neurons::multistep_forward_cuda<N>(n, f, x.data<float>(), ptr(p, 0.f), y.data<float>(),
                                           ptr(records, 0.f), ptr(x_mean, 0.f), steps, count);
      },
      [&](auto z) {
        using T = decltype(z);
        neurons::multistep_forward_cpu<N, T>(n, f, x.data<T>(), ptr(p, z), y.data<T>(), ptr(records, z),
                                             ptr(x_mean, z), steps, count);
      });
  if (!record) return y;

  tape.record(op, inputs, {y},
              [n, f, detach, rga, rga_tau, gamma = opt.rga_gamma, saved, p, steps, count, op, ptr](
                  const std::vector<Tensor>& gy, const std::vector<Tensor*>& gxs) {
                Tensor* gx = gxs[0];
                Tensor* gp = N::kParams > 0 ? gxs[1] : nullptr;
                if (rga) {
                  if (gx) rga_backward(gy[0], saved, rga_tau, gamma, *gx, steps, count, op);
                  return;
                }
                if (!gx && !gp) return;
                const Tensor gx_t = gx ? *gx : Tensor(), gp_t = gp ? *gp : Tensor();
                on_device(
                    saved, op,
                    [&] {
                      const int64_t scratch_n = gp ? neurons::multistep_cuda_scratch(N::kParams, count) : 0;
                      Tensor scratch = scratch_n > 0 ? Tensor::empty({scratch_n}, DType::F64, Device::CUDA) : Tensor();
                      neurons::multistep_backward_cuda<N>(n, f, detach, gy[0].data<float>(), saved.data<float>(),
                                                          ptr(p, 0.f), ptr(gx_t, 0.f), ptr(gp_t, 0.f),
                                                          ptr(scratch, 0.0), steps, count);
                    },
                    [&](auto z) {
                      using T = decltype(z);
                      neurons::multistep_backward_cpu<N, T>(n, f, detach, gy[0].data<T>(), saved.data<T>(),
                                                            ptr(p, z), ptr(gx_t, z), ptr(gp_t, z), steps, count);
                    });
              });
  return y;
}
}  // namespace neuron_detail

template <class Neuron>
Tensor spike_with(Tape& tape, const Tensor& x, const Neuron& n, const SpikeOptions& opt, const Tensor& params) {
  const neurons::Firing f = neuron_detail::firing_from(opt, /*default_strict=*/true, "spike_with");
  const double tau =
      opt.backward == SpikeBackward::rga ? neuron_detail::rga_tau_checked(opt, std::nullopt, "spike_with") : 0.0;
  return neuron_detail::run_neuron(tape, x, n, f, opt, tau, params, "spike_with");
}

}  // namespace spikegrad::ops
