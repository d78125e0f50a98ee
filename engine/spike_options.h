// The settings of a spiking layer (ops::spike, plif_spike, batch_norm_spike, spike_with and the neuron
// registry's runners), in a header of their own so that engine/ops.h declares the neuron ops without any
// kernel header. The kernels have their own copies of the two enums (neurons::SurrogateKind, ResetKind in
// kernels/neurons/neuron_defs.h: a kernel includes nothing of the public API); the glue converts them in one
// place (engine/ops_neuron_ext.h, neuron_detail::kernel_surrogate / kernel_reset).
#pragma once
#include <optional>

namespace spikegrad::ops {

// The surrogate derivative used by backward (formulas in kernels/neurons/neuron_defs.h); `alpha` is its one
// parameter: triangle half-width gamma, sigmoid/atan slope alpha, rectangle width.
enum class SurrogateKind : int { triangle = 0, sigmoid = 1, atan = 2, rectangle = 3 };
struct Surrogate {
  SurrogateKind kind = SurrogateKind::triangle;
  double alpha = 1.0;
  static Surrogate triangle(double gamma = 1.0) { return {SurrogateKind::triangle, gamma}; }
  static Surrogate sigmoid(double alpha = 4.0) { return {SurrogateKind::sigmoid, alpha}; }
  static Surrogate atan(double alpha = 2.0) { return {SurrogateKind::atan, alpha}; }
  static Surrogate rectangle(double width = 1.0) { return {SurrogateKind::rectangle, width}; }
};

enum class ResetKind : int { hard = 0, soft = 1 };  // hard: v = (1-s) h; soft: v = h - s*theta
enum class NeuronKind { lif, if_ };                 // IF = no leak (decay 1), as in the SNN-RAT/RGA code
enum class SpikeBackward { bptt, rga };

// Defaults are reference.md §2's LIF: h = 0.5 v + x, spike iff h > 1, hard reset to 0 with the gradient
// through the reset, triangle surrogate gamma = 1.
struct SpikeOptions {
  NeuronKind neuron = NeuronKind::lif;
  double threshold = 1.0;
  double decay = 0.5;                    // LIF only: h = decay*v + x, 0 <= decay <= 1 (IF uses 1; PLIF learns it)
  std::optional<bool> strict;            // spike iff h > theta (true) or h >= theta; unset: LIF strict, IF not
  ResetKind reset = ResetKind::hard;
  bool detach_reset = false;             // no gradient through the spike in the reset
  Surrogate surrogate;
  SpikeBackward backward = SpikeBackward::bptt;
  std::optional<double> rga_tau;         // RGA's tau, in [0,1]; unset: the neuron's decay (LIF decay, IF 1)
  double rga_gamma = 0.2;
  bool smooth = false;                   // forward emits S(h - theta), the integral of the surrogate (for
                                         // finite-difference checks); the reset uses that smooth spike too
};

}  // namespace spikegrad::ops
