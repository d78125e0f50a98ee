#include "models/sequential_snn.h"

namespace spikegrad {

SequentialSnn::SequentialSnn(std::string name, const ModelConfig& config, std::vector<StageSpec> stages,
                             ClassifierSpec classifier)
    : Model(std::move(name), config), classifier_(std::move(classifier)) {
  SG_CHECK(config.stem_pool == "max" && config.sew_connect == "add" && config.resnet_width == 64,
           this->name() << ": --stem-pool, --sew-connect and --resnet-width are Spiking-/SEW-ResNet switches; leave "
                           "them at max / add / 64");
  SG_CHECK(config.width_div >= 1, this->name() << ": --width-div must be >= 1, got " << config.width_div);
  const auto narrowed = [&](int64_t width) { return (width + config.width_div - 1) / config.width_div; };
  Generator gen(config.init_seed);
  const ConfiguredNeuron neuron = configure_neuron(config.neuron_spec, this->name() + ": neuron options");
  const AddParameter add = [this](const std::string& n, Tensor t) { return add_parameter(n, std::move(t)); };
  int64_t channels = config.in_channels, size = config.image_size;
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageSpec& s = stages[i];
    Stage st{s, {}, "features." + std::to_string(i)};
    st.block.name = st.name;
    if (s.kind == StageSpec::conv) {
      const int64_t k = narrowed(s.out_channels);
      const std::string p = st.name;
      st.block.weight = add_parameter(p + ".conv.weight", kaiming_normal_fan_out({k, channels, s.kernel, s.kernel}, gen));
      st.block.bias = add_parameter(p + ".conv.bias", uniform_fan_in({k}, channels * s.kernel * s.kernel, gen));
      st.block.bn_weight = add_parameter(p + ".bn.weight", Tensor::full({k}, 1.0));
      st.block.bn_bias = add_parameter(p + ".bn.bias", Tensor::zeros({k}));
      st.block.running_mean = add_buffer(p + ".bn.running_mean", Tensor::zeros({k}));
      st.block.running_var = add_buffer(p + ".bn.running_var", Tensor::full({k}, 1.0));
      st.block.neuron = make_neuron_layer(neuron, p, add);
      st.block.conv = {s.stride, s.padding};
      channels = k;
      size = (size + 2 * s.padding - s.kernel) / s.stride + 1;
    } else {
      size = (size - s.kernel) / s.stride + 1;
    }
    SG_CHECK(size >= 1, this->name() << ": stage " << i << " shrinks a " << config.image_size
                                     << "px input to nothing; use larger images");
    stages_.push_back(std::move(st));
  }
  int64_t features = channels * size * size;
  std::vector<int64_t> widths;
  for (const int64_t h : classifier_.hidden) widths.push_back(narrowed(h));
  widths.push_back(config.num_classes);
  for (size_t j = 0; j < widths.size(); ++j) {
    const std::string p = "classifier." + std::to_string(j);
    Linear fc;
    fc.weight = add_parameter(p + ".weight", uniform_fan_in({widths[j], features}, features, gen));
    // Drawn even when zeroed, so the other parameters' values do not depend on the flag.
    Tensor bias = uniform_fan_in({widths[j]}, features, gen);
    if (classifier_.zero_bias) bias.fill_zero();
    fc.bias = add_parameter(p + ".bias", bias);
    fcs_.push_back(fc);
    if (classifier_.spiking_hidden && j + 1 < widths.size()) fc_neurons_.push_back(make_neuron_layer(neuron, p, add));
    features = widths[j];
  }
}

Tensor SequentialSnn::forward_layers(Tape& tape, const Tensor& x, int64_t batch, Taps& taps) {
  const LayerRun run = layer_run();
  const int64_t steps = run.steps;
  std::string first, last;
  Tensor h = x;
  trace_layer(run.trace, LayerRecord::input, "input", {}, x);
  // Conv2dOptions::input_levels of h: the encoder's for the encoded input (LayerRun::input_levels; 0 for
  // analog images); 1 after a spiking stage (spikes are exactly 0/1 unless the neuron runs in smooth mode);
  // times k² after a k×k average pool (sums of k² spikes over k²; exact while the level count stays a power
  // of two <= 128, otherwise packing is off). Not in ANN mode, whose activations are not spikes.
  int levels = run.input_levels;
  const bool pack = config().pack_spike_inputs && !config().neuron.smooth && !run.ann;
  for (const Stage& st : stages_) {
    if (st.spec.kind == StageSpec::conv) {
      h = st.block.forward(tape, h, run, pack ? levels : 0, config().fuse_bn_spike);
      levels = 1;
      Shape tap_shape{steps, batch};
      tap_shape.insert(tap_shape.end(), h.shape().begin() + 1, h.shape().end());
      taps.add(st.name, ops::reshape(tape, h, tap_shape));
      if (first.empty()) first = st.name;
      last = st.name;
    } else {
      Tensor pooled = ops::avg_pool2d(tape, h, st.spec.kernel, st.spec.stride);
      trace_layer(run.trace, LayerRecord::avg_pool, st.name, {h}, pooled, "", st.spec.kernel, st.spec.stride);
      h = pooled;
      const int window = st.spec.kernel * st.spec.kernel;
      const bool power_of_two = (window & (window - 1)) == 0;
      levels = levels > 0 && power_of_two && levels * window <= 128 ? levels * window : 0;
    }
  }
  taps.set_defaults(first, last);
  h = ops::flatten(tape, h, 1);
  for (size_t j = 0; j < fcs_.size(); ++j) {
    const std::string fc_name = "classifier." + std::to_string(j);
    Tensor y = fcs_[j].forward(tape, h);
    trace_layer(run.trace, LayerRecord::linear, fc_name, {h}, y, fc_name + ".weight");
    h = y;
    const bool hidden = j + 1 < fcs_.size();
    if (hidden && classifier_.spiking_hidden) {
      Tensor s = fc_neurons_[j].forward(tape, h, run);
      trace_layer(run.trace, LayerRecord::neuron, fc_name + ".neuron", {h}, s);
      h = s;
    }
  }
  return h;
}

}  // namespace spikegrad
