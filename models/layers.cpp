#include "models/layers.h"

#include <cmath>

namespace spikegrad {

Tensor NeuronLayer::forward(Tape& tape, const Tensor& x, const LayerRun& run) const {
  if (run.ann) {
    if (run.ann->activation == AnnActivation::relu) return ops::relu(tape, x);
    return ops::qcfs(tape, x, run.neuron.threshold, run.ann->qcfs_levels);
  }
  const Shape shape = x.shape();
  return ops::reshape(tape, neuron->spike(tape, ops::reshape(tape, x, {run.steps, -1}), run.neuron, params), shape);
}

NeuronLayer make_neuron_layer(const ConfiguredNeuron& neuron, const std::string& prefix,
                              const AddParameter& add_parameter) {
  NeuronLayer layer;
  layer.neuron = neuron.runner;
  if (neuron.type->num_params > 0)
    layer.params = add_parameter(prefix + ".neuron." + neuron.type->param_name, neuron.initial_params());
  return layer;
}

Tensor ConvBnSpike::forward(Tape& tape, const Tensor& x, const LayerRun& run, int input_levels, bool fuse) const {
  ops::Conv2dOptions c = conv;
  c.input_levels = input_levels;
  Tensor y = ops::conv2d(tape, x, weight, bias, c);
  trace_layer(run.trace, LayerRecord::conv, name + ".conv", {x}, y, name + ".conv.weight", int(weight.size(3)),
              conv.stride, conv.padding);
  ops::BatchNormOptions bn;
  bn.training = run.training;
  bn.cross_replica = run.cross_replica;
  if (fuse && !run.ann && !run.trace)
    return neuron.neuron->batch_norm_spike(tape, y, bn_weight, bn_bias, running_mean, running_var, bn, run.steps,
                                           run.neuron, neuron.params);
  Tensor z = ops::batch_norm(tape, y, bn_weight, bn_bias, running_mean, running_var, bn);
  trace_layer(run.trace, LayerRecord::batch_norm, name + ".bn", {y}, z, name + ".bn.weight");
  Tensor s = neuron.forward(tape, z, run);
  trace_layer(run.trace, LayerRecord::neuron, name + ".neuron", {z}, s);
  return s;
}

Tensor kaiming_normal_fan_out(const Shape& shape, Generator& gen) {
  int64_t fan_out = shape[0];
  for (size_t i = 2; i < shape.size(); ++i) fan_out *= shape[i];
  Tensor t = rand_normal(shape, gen);
  const float std = float(std::sqrt(2.0 / double(fan_out)));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= std;
  return t;
}

Tensor uniform_fan_in(const Shape& shape, int64_t fan_in, Generator& gen) {
  Tensor t = rand_uniform(shape, gen);
  const float bound = float(1.0 / std::sqrt(double(fan_in)));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = (2.f * p[i] - 1.f) * bound;
  return t;
}

}  // namespace spikegrad
