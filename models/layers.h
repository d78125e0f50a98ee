// Building blocks shared by the spiking models. Each block owns handles to tensors registered in its
// model (so the optimizer, checkpoints and to(device) all see the same storage).
//
// ConvBnSpike = Conv2d(bias) -> BatchNorm2d -> spiking neuron, the reference code's `Layer`: conv and BN
// on the merged (T·B) batch (BN statistics shared across time steps), the neuron over (T, B·C·H·W). The
// neuron is any registered one (engine/neuron_registry.h): NeuronLayer holds it and the layer's learnable
// scalars of it, so a model has no code per neuron.
// Initialisation follows reference.md §3: conv weight kaiming_normal(fan_out, relu), conv bias and
// Linear at PyTorch defaults (uniform ±1/sqrt(fan_in); Linear weight kaiming_uniform(a=√5) has the same
// bound), BN weight 1, bias 0, running stats (0, 1).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/neuron_registry.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "models/trace.h"

namespace spikegrad {

class Model;

// ANN mode (reference.md §5.3: the attacks' --attack-grad ann-relu | ann-qcfs, the [RAT]/[RGA] "Act_attack"
// with T = 0): the same weights run as an artificial network — the image once instead of repeated over T,
// and every spiking neuron replaced by ReLU ([RAT]) or by QCFS with `qcfs_levels` levels and the neuron's
// threshold ([RGA]/[FEEL]/[TG], L = 8). Attacks craft on it; robust accuracy is still the SNN's.
enum class AnnActivation { relu, qcfs };
struct AnnMode {
  AnnActivation activation = AnnActivation::qcfs;
  int qcfs_levels = 8;
};

// How one forward runs its spiking layers: every block and model reads it instead of the model's config,
// so ANN mode needs no code in a model.
struct LayerRun {
  int64_t steps = 1;          // T, or 1 in ANN mode
  bool training = false;      // BN batch statistics (true) or running statistics
  ops::SpikeOptions neuron;   // the run's neuron settings (threshold also sets QCFS's)
  std::optional<AnnMode> ann;  // set: ANN mode
  const ops::CrossReplicaSum* cross_replica = nullptr;  // --sync-bn: BN statistics over all ranks (not owned)
  LayerTrace* trace = nullptr;  // diagnostics (models/trace.h): record every layer, run BN and neuron unfused
  int input_levels = 0;  // Conv2dOptions::input_levels the encoded input satisfies: 1 for phase/Poisson spikes
                         // the model encoded itself, 0 otherwise (analog images; spikes an attack perturbed)
};

// The neuron of one spiking layer: the model's registered neuron, and this layer's learnable scalars of it.
struct NeuronLayer {
  std::shared_ptr<const NeuronRunner> neuron;
  Tensor params;  // undefined when the neuron has none
  // x (steps·B, ...) time-major -> spikes of x's shape; in ANN mode, the activation instead.
  Tensor forward(Tape& tape, const Tensor& x, const LayerRun& run) const;
};
// Registers a model parameter and returns its handle (Model::add_parameter, protected, passed by the model).
using AddParameter = std::function<Tensor(const std::string& name, Tensor initial)>;
// The neuron of the layer named `prefix` ("features.0"): its learnable scalars, if the neuron has any, become
// the parameter "<prefix>.neuron.<param_name>" (engine/neuron_registry.h).
NeuronLayer make_neuron_layer(const ConfiguredNeuron& neuron, const std::string& prefix,
                              const AddParameter& add_parameter);

struct ConvBnSpike {
  std::string name;  // "features.<i>": the trace names its parts "<name>.conv", "<name>.bn", "<name>.neuron"
  Tensor weight, bias, bn_weight, bn_bias, running_mean, running_var;
  NeuronLayer neuron;
  ops::Conv2dOptions conv;
  // x (T·B,C,H,W) -> spikes (T·B,K,P,Q). input_levels: Conv2dOptions::input_levels for x (0: x is not
  // level-valued, e.g. the encoded image). fuse: BN + neuron as one op (NeuronRunner::batch_norm_spike; not in
  // ANN mode, nor while a trace is recorded).
  Tensor forward(Tape& tape, const Tensor& x, const LayerRun& run, int input_levels = 0, bool fuse = true) const;
};

struct Linear {
  Tensor weight, bias;
  Tensor forward(Tape& tape, const Tensor& x) const { return ops::linear(tape, x, weight, bias); }
};

// PyTorch default initialisers (float32, CPU), drawn from `gen`.
Tensor kaiming_normal_fan_out(const Shape& shape, Generator& gen);  // std = sqrt(2 / fan_out)
Tensor uniform_fan_in(const Shape& shape, int64_t fan_in, Generator& gen);  // U(±1/sqrt(fan_in))

}  // namespace spikegrad
