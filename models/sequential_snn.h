// A spiking network described as a list of stages, which is what every model in the zoo is:
// conv stages (Conv -> BN -> neuron) and average pools over the merged (T·B) batch, then a classifier
// of Linear layers applied per time step (optionally with a neuron after each hidden Linear).
//
// Names follow a PyTorch nn.Sequential: stage i's tensors are "features.<i>.conv.weight",
// "features.<i>.conv.bias", "features.<i>.bn.{weight,bias,running_mean,running_var}"; pools take an index
// too (as they would in nn.Sequential) and have no tensors; Linear j is "classifier.<j>.{weight,bias}". A neuron
// with learnable scalars adds "features.<i>.neuron.<name>" per conv stage and, after a spiking hidden Linear j,
// "classifier.<j>.neuron.<name>" (engine/neuron_registry.h).
// Taps: every conv stage's spikes as (T,B,K,P,Q) under "features.<i>"; the defaults are the first conv
// stage (X) and the last conv stage (Z), as reference.md §1.1.
#pragma once
#include <vector>

#include "models/layers.h"
#include "models/model.h"

namespace spikegrad {

struct StageSpec {
  enum Kind { conv, avgpool } kind = conv;
  int64_t out_channels = 0;  // conv only
  int stride = 1;            // conv: stride (kernel 3, padding 1); avgpool: kernel = stride = 2 by default
  int kernel = 3;
  int padding = 1;
  static StageSpec Conv(int64_t out, int stride = 1) { return {conv, out, stride, 3, 1}; }
  static StageSpec Pool(int k = 2) { return {avgpool, 0, k, k, 0}; }
};

struct ClassifierSpec {
  std::vector<int64_t> hidden;   // widths of hidden Linear layers (the last Linear maps to num_classes)
  bool spiking_hidden = false;   // neuron after each hidden Linear ([RAT] VGG11); false: affine chain (TMI)
  bool zero_bias = false;        // Linear biases start at 0 ([RAT]/[FEEL] VGG11); false: PyTorch's uniform
};

class SequentialSnn : public Model {
 public:
  SequentialSnn(std::string name, const ModelConfig& config, std::vector<StageSpec> stages, ClassifierSpec classifier);

 protected:
  Tensor forward_layers(Tape& tape, const Tensor& x, int64_t batch, Taps& taps) override;

 private:
  struct Stage {
    StageSpec spec;
    ConvBnSpike block;  // conv stages
    std::string name;   // "features.<i>"
  };
  std::vector<Stage> stages_;
  std::vector<Linear> fcs_;
  std::vector<NeuronLayer> fc_neurons_;  // after each hidden Linear when classifier_.spiking_hidden
  ClassifierSpec classifier_;
};

}  // namespace spikegrad
