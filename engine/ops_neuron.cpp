// Glue for the neuron family: option checks and the built-in neurons (LIF, IF, PLIF). The generic path is
// neuron_detail::run_neuron in engine/ops_neuron_ext.h (header-only so that user neurons reuse it).
#include <cmath>

#include "engine/ops_neuron_ext.h"

namespace spikegrad::ops {

namespace neuron_detail {

neurons::SurrogateKind kernel_surrogate(SurrogateKind kind) {
  switch (kind) {
    case SurrogateKind::triangle: return neurons::SurrogateKind::triangle;
    case SurrogateKind::sigmoid: return neurons::SurrogateKind::sigmoid;
    case SurrogateKind::atan: return neurons::SurrogateKind::atan;
    case SurrogateKind::rectangle: return neurons::SurrogateKind::rectangle;
  }
  SG_FAIL("spike: unknown surrogate kind " << int(kind) << " (expected triangle, sigmoid, atan or rectangle)");
}

neurons::ResetKind kernel_reset(ResetKind reset) {
  switch (reset) {
    case ResetKind::hard: return neurons::ResetKind::hard;
    case ResetKind::soft: return neurons::ResetKind::soft;
  }
  SG_FAIL("spike: unknown reset kind " << int(reset) << " (expected hard or soft)");
}

void check_spike_input(const Tensor& x, const char* op) {
  spikegrad::detail::check_float(x, op, "x");
  SG_CHECK(x.ndim() >= 2 && x.size(0) >= 1,
           op << ": x must be (T,B,...) with T>=1, got " << shape_str(x.shape()));
}

neurons::Firing firing_from(const SpikeOptions& opt, bool default_strict, const char* op) {
  SG_CHECK(std::isfinite(opt.surrogate.alpha) && opt.surrogate.alpha > 0,
           op << ": surrogate parameter (gamma, alpha or width) must be > 0, got " << opt.surrogate.alpha);
  neurons::Firing f;
  f.kind = kernel_surrogate(opt.surrogate.kind);
  f.alpha = opt.surrogate.alpha;
  f.strict = opt.strict.value_or(default_strict);
  f.smooth = opt.smooth;
  return f;
}

double rga_tau_checked(const SpikeOptions& opt, std::optional<double> neuron_decay, const char* op) {
  SG_CHECK(opt.rga_tau.has_value() || neuron_decay.has_value(),
           op << ": the RGA backward needs rga_tau (the neuron's decay) to be set for this neuron");
  const double tau = opt.rga_tau.value_or(neuron_decay.value_or(0.0));
  SG_CHECK(tau >= 0 && tau <= 1, op << ": rga_tau must be in [0,1], got " << tau);
  SG_CHECK(std::isfinite(opt.rga_gamma) && opt.rga_gamma >= 0, op << ": rga_gamma must be >= 0, got " << opt.rga_gamma);
  return tau;
}

}  // namespace neuron_detail

namespace {

void check_threshold(const SpikeOptions& opt, const char* op) {
  SG_CHECK(std::isfinite(opt.threshold) && opt.threshold > 0, op << ": threshold must be > 0, got " << opt.threshold);
}

}  // namespace

namespace neuron_detail {
LifSetup lif_setup(const SpikeOptions& opt) {
  const bool is_if = opt.neuron == NeuronKind::if_;
  LifSetup r;
  r.op = is_if ? "if" : "lif";
  check_threshold(opt, r.op);
  r.neuron.decay = is_if ? 1.0 : opt.decay;
  r.neuron.theta = opt.threshold;
  r.neuron.reset = kernel_reset(opt.reset);
  SG_CHECK(is_if || (opt.decay >= 0 && opt.decay <= 1), r.op << ": decay must be in [0,1], got " << opt.decay);
  r.firing = firing_from(opt, /*default_strict=*/!is_if, r.op);
  r.rga_tau = opt.backward == SpikeBackward::rga ? rga_tau_checked(opt, r.neuron.decay, r.op) : 0.0;
  return r;
}
}  // namespace neuron_detail

Tensor spike(Tape& tape, const Tensor& x, const SpikeOptions& opt) {
  const neuron_detail::LifSetup l = neuron_detail::lif_setup(opt);
  return neuron_detail::run_neuron(tape, x, l.neuron, l.firing, opt, l.rga_tau, Tensor(), l.op);
}

Tensor plif_spike(Tape& tape, const Tensor& x, const Tensor& decay_logit, const SpikeOptions& opt) {
  const char* op = "plif";
  SG_CHECK(opt.neuron == NeuronKind::lif, op << ": opt.neuron must be lif (PLIF is a LIF whose decay is learned), got if");
  check_threshold(opt, op);
  neuron_detail::check_spike_input(x, op);
  spikegrad::detail::check_like(decay_logit, x, op, "decay_logit", "x");
  SG_CHECK(decay_logit.numel() == 1,
           op << ": decay_logit must hold one value (shape () or (1)), got " << shape_str(decay_logit.shape()));
  neurons::Plif n;
  n.theta = opt.threshold;
  n.reset = neuron_detail::kernel_reset(opt.reset);
  const neurons::Firing f = neuron_detail::firing_from(opt, /*default_strict=*/true, op);
  const double tau = opt.backward == SpikeBackward::rga ? neuron_detail::rga_tau_checked(opt, std::nullopt, op) : 0.0;
  return neuron_detail::run_neuron(tape, x, n, f, opt, tau, decay_logit, op);
}

}  // namespace spikegrad::ops
