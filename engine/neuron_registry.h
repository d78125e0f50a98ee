// The neuron registry: every neuron that models, the CLI (--neuron NAME) and config files can name, with its
// own options (--neuron-opt key=value) and learnable scalars.
//
// Built in: "lif" and "if" (ops::spike / ops::batch_norm_spike, exactly as before the registry), and the
// neurons listed in engine/registered_neurons.cu: "plif" (kernels/neurons/parametric_lif.h), "adaptive_lif"
// and "tau_lif" (examples/neurons/). Adding a neuron = its header + its SG_REGISTER_NEURON line in that list
// (README "Adding a neuron"; engine/neuron_registration.h says how one line gives both backends).
//
// A neuron's settings come from two places:
//   - the run's ops::SpikeOptions, shared by every neuron: firing rule, surrogate, detach_reset, backward
//     (BPTT/RGA), smooth mode; and threshold, reset and decay for the neurons that take them (lif: all three;
//     if: threshold and reset; one-state neurons: threshold and reset). A neuron that does not take one of
//     these refuses a value other than its default (threshold 1, reset hard, decay 0.5) instead of ignoring it.
//   - its own options (NeuronType::options), fixed when the model is built (configure_neuron).
// Learnable scalars: the neuron's num_params values per spiking layer, one parameter
// "<layer>.neuron.<param_name>" of shape () (one scalar, as SpikingJelly stores PLIF's w) or (num_params).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "kernels/neurons/neuron_info.h"

namespace spikegrad {

using NeuronOptionValues = std::map<std::string, double>;

// A registered neuron with its options applied: runs a spiking layer's neuron, unfused or fused with BN.
class NeuronRunner {
 public:
  virtual ~NeuronRunner() = default;
  // x (T, ...) time-major -> spikes of x's shape, as ops::spike. params: the layer's learnable scalars
  // (undefined when the neuron has none).
  virtual Tensor spike(Tape& tape, const Tensor& x, const ops::SpikeOptions& opt, const Tensor& params) const = 0;
  // batch_norm(x) then the neuron as one op, as ops::batch_norm_spike: x (T·B, C[, H, W]).
  virtual Tensor batch_norm_spike(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                  const Tensor& running_mean, const Tensor& running_var,
                                  const ops::BatchNormOptions& bn, int64_t time_steps, const ops::SpikeOptions& opt,
                                  const Tensor& params) const = 0;
};

struct NeuronOptionSpec {
  std::string key;
  double default_value = 0;
  neurons::OptionRange range;
  std::string help;
};

struct NeuronType {
  std::string name, help;
  std::vector<NeuronOptionSpec> options;
  std::string param_name;  // learnable scalars; empty: none
  int num_params = 0;
  // Which of SpikeOptions' threshold, reset and decay the neuron takes (see the top of this file).
  bool takes_threshold = false, takes_reset = false, takes_decay = false;
  // For complete, checked option values (every key): the runner, and the initial learnable scalars.
  std::function<std::shared_ptr<const NeuronRunner>(const NeuronType&, const NeuronOptionValues&)> make_runner;
  std::function<std::vector<double>(const NeuronOptionValues&)> initial_params;
};

// What a model runs: a registered neuron by name, and the options given (the others take their defaults).
struct NeuronSpec {
  std::string name = "lif";
  NeuronOptionValues options;
};

struct ConfiguredNeuron {
  const NeuronType* type = nullptr;
  NeuronOptionValues options;  // every option of the neuron
  std::shared_ptr<const NeuronRunner> runner;
  // The initial learnable scalars of one layer (float32, CPU, shape () or (num_params)); undefined when none.
  Tensor initial_params() const;
};

// The registered neuron called `name`; an unknown name is an error that lists the registered ones.
const NeuronType& find_neuron(const std::string& name);
std::vector<std::string> neuron_names();  // in registration order: lif, if, then the list's order
// Adds a neuron; a name already taken, or one that is not lower-case letters, digits and '_', is an error.
void register_neuron(NeuronType type);

// spec.options checked against the neuron (known keys, values in range) and completed with the defaults.
// Errors start with `what` (the flag or config key the options came from) and name the neuron and the key.
NeuronOptionValues complete_neuron_options(const NeuronSpec& spec, const std::string& what);
ConfiguredNeuron configure_neuron(const NeuronSpec& spec, const std::string& what = "neuron options");

// The SpikeOptions a neuron does not take (threshold, reset, decay) are at their defaults, and
// SpikeOptions::neuron (the lif/if switch of ops::spike) is if_ only for "if". Runners check it per call.
void check_run_settings(const NeuronType& type, const ops::SpikeOptions& opt);

// Whether RGA gradients (SpikeOptions::backward = rga) work for the neuron as the CLI builds it: its leak is
// RGA's τ for lif (decay) and if (1); the other registered neurons need SpikeOptions::rga_tau, which no flag sets.
bool neuron_has_rga_tau(const std::string& name);

// For --help: "lif: <help>; if: <help>; ..." (every neuron), and "plif: init_tau (> 1, default 2); ..."
// (every neuron that has options of its own).
std::string neurons_help();
std::string neuron_options_help();

}  // namespace spikegrad
