#include "models/graph.h"

namespace spikegrad {

namespace {

void record(const GraphRun& g, LayerRecord::Kind kind, const std::string& name, std::vector<Tensor> inputs,
            const Tensor& output, const std::string& weight = "", int kernel = 0, int stride = 1, int padding = 0,
            const std::string& detail = "") {
  trace_layer(g.run.trace, kind, name, std::move(inputs), output, weight, kernel, stride, padding, detail);
}

class ConvLayer : public GraphLayer {
 public:
  std::string name;
  Tensor weight, bias;
  ops::Conv2dOptions options;
  int kernel = 0;
  Flow forward(GraphRun& g, const Flow& in) const override {
    ops::Conv2dOptions c = options;
    c.input_levels = g.pack ? in.levels : 0;
    Tensor y = ops::conv2d(g.tape, in.x, weight, bias, c);
    record(g, LayerRecord::conv, name, {in.x}, y, name + ".weight", kernel, options.stride, options.padding);
    return Flow{y, 0};
  }
};

class BatchNormLayer : public GraphLayer {
 public:
  std::string name;
  Tensor weight, bias, running_mean, running_var;
  ops::BatchNormOptions options(const GraphRun& g) const {
    ops::BatchNormOptions bn;
    bn.training = g.run.training;
    bn.cross_replica = g.run.cross_replica;
    return bn;
  }
  Flow forward(GraphRun& g, const Flow& in) const override {
    Tensor y = ops::batch_norm(g.tape, in.x, weight, bias, running_mean, running_var, options(g));
    record(g, LayerRecord::batch_norm, name, {in.x}, y, name + ".weight");
    return Flow{y, 0};
  }
};

class NeuronGraphLayer : public GraphLayer {
 public:
  std::string name;
  NeuronLayer neuron;
  // Spikes out: a tap when spatial, and the TMI defaults follow the first and the last such tap.
  Flow finish(GraphRun& g, const Tensor& spikes) const {
    if (spikes.ndim() == 4) {
      Shape tap_shape{g.run.steps, g.batch};
      tap_shape.insert(tap_shape.end(), spikes.shape().begin() + 1, spikes.shape().end());
      g.taps.add(name, ops::reshape(g.tape, spikes, tap_shape));
      if (g.taps.first_name().empty()) g.taps.set_defaults(name, name);
      g.taps.set_defaults(g.taps.first_name(), name);
    }
    return Flow{spikes, 1};
  }
  Flow forward(GraphRun& g, const Flow& in) const override {
    Tensor s = neuron.forward(g.tape, in.x, g.run);
    record(g, LayerRecord::neuron, name, {in.x}, s);
    return finish(g, s);
  }
  // BN + this neuron as one op (NeuronRunner::batch_norm_spike), the values and gradients of the two.
  Flow forward_fused(GraphRun& g, const BatchNormLayer& bn, const Flow& in) const {
    Tensor s = neuron.neuron->batch_norm_spike(g.tape, in.x, bn.weight, bn.bias, bn.running_mean, bn.running_var,
                                               bn.options(g), g.run.steps, g.run.neuron, neuron.params);
    return finish(g, s);
  }
};

class PoolLayer : public GraphLayer {
 public:
  std::string name;
  LayerRecord::Kind kind = LayerRecord::max_pool;
  int kernel = 2, stride = 2, padding = 0;
  Flow forward(GraphRun& g, const Flow& in) const override {
    Tensor y;
    int levels = 0;
    if (kind == LayerRecord::max_pool) {
      y = ops::max_pool2d(g.tape, in.x, kernel, stride, padding);
      levels = in.levels;  // a maximum is one of the inputs
    } else if (kind == LayerRecord::avg_pool) {
      y = ops::avg_pool2d(g.tape, in.x, kernel, stride, padding);
      // A k×k mean of multiples of 1/L is a multiple of 1/(L·k²); only a power of two stays a byte level.
      const int window = kernel * kernel;
      const bool power_of_two = (window & (window - 1)) == 0;
      levels = in.levels > 0 && power_of_two && in.levels * window <= 128 ? in.levels * window : 0;
    } else {
      y = ops::adaptive_avg_pool2d(g.tape, in.x, kernel, kernel);
    }
    record(g, kind, name, {in.x}, y, "", kernel, stride, padding);
    return Flow{y, levels};
  }
};

class FlattenLayer : public GraphLayer {
 public:
  Flow forward(GraphRun& g, const Flow& in) const override { return Flow{ops::flatten(g.tape, in.x, 1), in.levels}; }
};

class LinearLayer : public GraphLayer {
 public:
  std::string name;
  Tensor weight, bias;
  Flow forward(GraphRun& g, const Flow& in) const override {
    Tensor y = ops::linear(g.tape, in.x, weight, bias);
    record(g, LayerRecord::linear, name, {in.x}, y, name + ".weight");
    return Flow{y, 0};
  }
};

class SequentialLayer : public GraphLayer {
 public:
  std::vector<LayerPtr> layers;
  Flow forward(GraphRun& g, const Flow& in) const override {
    Flow h = in;
    for (size_t i = 0; i < layers.size(); ++i) {
      if (g.fuse && i + 1 < layers.size()) {
        const auto* bn = dynamic_cast<const BatchNormLayer*>(layers[i].get());
        const auto* sn = dynamic_cast<const NeuronGraphLayer*>(layers[i + 1].get());
        if (bn && sn) {
          h = sn->forward_fused(g, *bn, h);
          ++i;
          continue;
        }
      }
      h = layers[i]->forward(g, h);
    }
    return h;
  }
};

class ResidualLayer : public GraphLayer {
 public:
  std::string name;  // the block's path, for the trace ("layer1.0")
  LayerPtr branch, shortcut, after;
  Merge merge = Merge::add;
  Tensor comb;  // convex only
  Flow forward(GraphRun& g, const Flow& in) const override {
    const Flow s = shortcut ? shortcut->forward(g, in) : in;
    const Flow b = branch->forward(g, in);
    Tensor y;
    int levels = 0;
    const bool integers = s.levels == 1 && b.levels == 1;
    switch (merge) {
      case Merge::add:
        y = ops::add(g.tape, s.x, b.x);
        // Integer counts grow by at most one spike per block: a ResNet-50's 16 blocks reach 17, far below the
        // byte limit; the CPU conv checks the promise element by element anyway.
        levels = integers ? 1 : 0;
        break;
      case Merge::and_:
        y = ops::mul(g.tape, s.x, b.x);
        levels = integers ? 1 : 0;
        break;
      case Merge::iand:
        y = ops::mul(g.tape, s.x, ops::add_scalar(g.tape, ops::scale(g.tape, b.x, -1.0), 1.0));
        levels = integers ? 1 : 0;
        break;
      case Merge::convex:
        y = ops::weighted_sum(g.tape, {s.x, b.x}, comb);
        break;
    }
    static const char* const merge_names[] = {"add", "and", "iand", "convex"};
    record(g, LayerRecord::merge, name, {s.x, b.x}, y, merge == Merge::convex ? name + ".convex.comb" : "", 0, 1, 0,
           merge_names[int(merge)]);
    Flow out{y, levels};
    return after ? after->forward(g, out) : out;
  }
};

}  // namespace

Merge parse_sew_connect(const std::string& name, const std::string& model) {
  if (name == "add") return Merge::add;
  if (name == "and") return Merge::and_;
  if (name == "iand") return Merge::iand;
  SG_FAIL(model << ": --sew-connect must be add, and or iand, got '" << name << "'");
}

GraphBuilder::Scope::Scope(GraphBuilder& b, const std::string& name) : b_(b), length_(b.prefix_.size()) {
  b_.prefix_ = b_.path(name);
}
GraphBuilder::Scope::~Scope() { b_.prefix_.resize(length_); }

GraphBuilder::GraphBuilder(const std::string& model_name, const ModelConfig& config, AddTensor add_parameter,
                           AddTensor add_buffer)
    : model_(model_name),
      config_(config),
      add_parameter_(std::move(add_parameter)),
      add_buffer_(std::move(add_buffer)),
      gen_(config.init_seed),
      neuron_(configure_neuron(config.neuron_spec, model_name + ": neuron options")),
      shape_{config.in_channels, config.image_size, config.image_size} {}

std::string GraphBuilder::path(const std::string& name) const { return prefix_.empty() ? name : prefix_ + "." + name; }

void GraphBuilder::check_spatial(const std::string& what) const {
  SG_CHECK(!shape_.flat(), model_ << ": " << what << " needs a (C,H,W) input, but the features are flat here");
}

LayerPtr GraphBuilder::conv(const std::string& name, int64_t out_channels, int kernel, int stride, int padding,
                            bool bias) {
  check_spatial(path(name));
  auto l = std::make_shared<ConvLayer>();
  l->name = path(name);
  const int64_t fan_in = shape_.channels * kernel * kernel;
  l->weight = add_parameter_(l->name + ".weight", kaiming_normal_fan_out({out_channels, shape_.channels, kernel, kernel}, gen_));
  if (bias) l->bias = add_parameter_(l->name + ".bias", uniform_fan_in({out_channels}, fan_in, gen_));
  l->options.stride = stride;
  l->options.padding = padding;
  l->kernel = kernel;
  const int64_t h = (shape_.height + 2 * padding - kernel) / stride + 1, w = (shape_.width + 2 * padding - kernel) / stride + 1;
  SG_CHECK(h >= 1 && w >= 1, model_ << ": " << l->name << " shrinks a " << shape_.height << "x" << shape_.width
                                   << " map to nothing; use larger images (--image-size / the dataset)");
  shape_ = {out_channels, h, w};
  return l;
}

LayerPtr GraphBuilder::batch_norm(const std::string& name) {
  check_spatial(path(name));
  auto l = std::make_shared<BatchNormLayer>();
  l->name = path(name);
  const int64_t c = shape_.channels;
  l->weight = add_parameter_(l->name + ".weight", Tensor::full({c}, 1.0));
  l->bias = add_parameter_(l->name + ".bias", Tensor::zeros({c}));
  l->running_mean = add_buffer_(l->name + ".running_mean", Tensor::zeros({c}));
  l->running_var = add_buffer_(l->name + ".running_var", Tensor::full({c}, 1.0));
  return l;
}

LayerPtr GraphBuilder::neuron(const std::string& name) {
  auto l = std::make_shared<NeuronGraphLayer>();
  l->name = path(name);
  l->neuron.neuron = neuron_.runner;
  if (neuron_.type->num_params > 0)
    l->neuron.params = add_parameter_(l->name + "." + neuron_.type->param_name, neuron_.initial_params());
  return l;
}

namespace {
int64_t pooled(int64_t in, int kernel, int stride, int padding) { return (in + 2 * padding - kernel) / stride + 1; }
}  // namespace

LayerPtr GraphBuilder::pool(LayerRecord::Kind kind, const std::string& name, int kernel, int stride, int padding) {
  check_spatial(path(name));
  auto l = std::make_shared<PoolLayer>();
  l->name = path(name);
  l->kind = kind;
  l->kernel = kernel, l->stride = stride, l->padding = padding;
  shape_ = {shape_.channels, pooled(shape_.height, kernel, stride, padding), pooled(shape_.width, kernel, stride, padding)};
  SG_CHECK(shape_.height >= 1 && shape_.width >= 1, model_ << ": " << l->name << " pools the map to nothing");
  return l;
}

LayerPtr GraphBuilder::max_pool(const std::string& name, int kernel, int stride, int padding) {
  return pool(LayerRecord::max_pool, name, kernel, stride, padding);
}

LayerPtr GraphBuilder::avg_pool(const std::string& name, int kernel, int stride, int padding) {
  return pool(LayerRecord::avg_pool, name, kernel, stride, padding);
}

LayerPtr GraphBuilder::adaptive_avg_pool(const std::string& name, int out_size) {
  check_spatial(path(name));
  auto l = std::make_shared<PoolLayer>();
  l->name = path(name);
  l->kind = LayerRecord::adaptive_avg_pool;
  l->kernel = out_size;  // the output side
  shape_ = {shape_.channels, out_size, out_size};
  return l;
}

LayerPtr GraphBuilder::flatten() {
  shape_ = {shape_.flat() ? shape_.channels : shape_.channels * shape_.height * shape_.width, 0, 0};
  return std::make_shared<FlattenLayer>();
}

LayerPtr GraphBuilder::linear(const std::string& name, int64_t out_features, bool zero_bias) {
  SG_CHECK(shape_.flat(), model_ << ": " << path(name) << " needs flat features; add flatten() before it");
  auto l = std::make_shared<LinearLayer>();
  l->name = path(name);
  const int64_t in = shape_.channels;
  l->weight = add_parameter_(l->name + ".weight", uniform_fan_in({out_features, in}, in, gen_));
  Tensor bias = uniform_fan_in({out_features}, in, gen_);  // drawn even when zeroed: the other values stay put
  if (zero_bias) bias.fill_zero();
  l->bias = add_parameter_(l->name + ".bias", bias);
  shape_ = {out_features, 0, 0};
  return l;
}

LayerPtr GraphBuilder::sequential(std::vector<LayerPtr> layers) {
  auto l = std::make_shared<SequentialLayer>();
  l->layers = std::move(layers);
  return l;
}

LayerPtr GraphBuilder::residual(const std::function<LayerPtr()>& branch, const std::function<LayerPtr()>& shortcut,
                                Merge merge, const std::function<LayerPtr()>& after) {
  auto l = std::make_shared<ResidualLayer>();
  l->name = prefix_;
  l->merge = merge;
  const FeatureShape in = shape_;
  l->branch = branch();
  const FeatureShape out = shape_;
  shape_ = in;
  if (shortcut) l->shortcut = shortcut();
  SG_CHECK(shape_ == out, model_ << ": block " << prefix_ << ": the shortcut gives " << shape_.channels << "x"
                                 << shape_.height << "x" << shape_.width << " but the branch " << out.channels << "x"
                                 << out.height << "x" << out.width << "; give the block a downsampling shortcut");
  if (merge == Merge::convex) l->comb = add_parameter_(path("convex.comb"), Tensor::full({2}, 0.5));
  if (after) l->after = after();
  return l;
}

GraphModel::GraphModel(std::string name, const ModelConfig& config, const BuildFn& build)
    : Model(std::move(name), config) {
  GraphBuilder b(this->name(), config, [this](const std::string& n, Tensor t) { return add_parameter(n, std::move(t)); },
                 [this](const std::string& n, Tensor t) { return add_buffer(n, std::move(t)); });
  root_ = build(b);
  SG_CHECK(b.shape().flat() && b.shape().channels == config.num_classes,
           this->name() << ": the network must end in " << config.num_classes << " flat logits, got "
                        << b.shape().channels << (b.shape().flat() ? " flat features" : " channels of a feature map"));
}

Tensor GraphModel::forward_layers(Tape& tape, const Tensor& x, int64_t batch, Taps& taps) {
  GraphRun g{tape, layer_run(), batch, taps};
  g.pack = config().pack_spike_inputs && !config().neuron.smooth && !g.run.ann;
  g.fuse = config().fuse_bn_spike && !g.run.ann && !g.run.trace;
  record(g, LayerRecord::input, "input", {}, x);
  return root_->forward(g, Flow{x, g.run.input_levels}).x;
}

}  // namespace spikegrad
