// A model as a small tree of layers — sequences, residual blocks with a branch, a shortcut and a merge — for
// networks that a stage list (models/sequential_snn.h) cannot describe: Spiking-ResNet, SEW-ResNet, ResNet19,
// WRN-16-4 (models/resnets.cpp). A new architecture is a build function of a few lines against GraphBuilder;
// nothing in engine/ changes.
//
// Names: every layer is built under the builder's current scope and named by its PyTorch module path
// ("layer1.0.conv1"), so parameters are "layer1.0.conv1.weight", "layer1.0.bn1.running_mean", ... exactly as
// the equivalent torch.nn module's state_dict (SpikingJelly's sew_resnet18 loads our checkpoint with
// strict=True, scripts/compare/sj_resnet_check.py). A neuron with learnable scalars adds "<path>.<param>".
//
// Shapes are inferred while building: each layer is made for the current feature shape and advances it, so a
// build function states only output widths, kernels and strides.
//
// Forward works on the merged (S·B, ...) time-major batch like every model here (models/model.h). The graph
// takes care of what the stage list did by hand:
//  - fusion: a batch norm directly followed by a neuron in a sequence runs as one op (the memory saver
//    ModelConfig::fuse_bn_spike), except in ANN mode and while a trace is recorded;
//  - spike packing: each value carries the Conv2dOptions::input_levels it satisfies (spikes 1, SEW sums of
//    spikes 1 as well — integers — max pools keep it, 2×2 average pools multiply it), so a conv whose input
//    is spike-valued keeps it as bytes for its weight gradient (ModelConfig::pack_spike_inputs);
//  - taps: every neuron layer with a spatial output is a tap under its path, (T,B,C,H,W); the TMI defaults
//    are the first and the last of them;
//  - the layer trace (models/trace.h) when one is set.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/layers.h"
#include "models/model.h"

namespace spikegrad {

// A value between layers: the tensor and the Conv2dOptions::input_levels it satisfies (0: none known).
struct Flow {
  Tensor x;
  int levels = 0;
};

// What one forward's layers share.
struct GraphRun {
  Tape& tape;
  LayerRun run;
  int64_t batch = 0;
  Taps& taps;
  bool pack = false;  // conv inputs may be kept as bytes (not in smooth or ANN mode)
  bool fuse = false;  // BN + neuron as one op (not in ANN mode, not while tracing)
};

class GraphLayer {
 public:
  virtual ~GraphLayer() = default;
  virtual Flow forward(GraphRun& g, const Flow& in) const = 0;
};
using LayerPtr = std::shared_ptr<const GraphLayer>;

// Per example and time step: channels × height × width, or `channels` flat features (height = width = 0).
struct FeatureShape {
  int64_t channels = 0, height = 0, width = 0;
  bool flat() const { return height == 0; }
  bool operator==(const FeatureShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
};

// How a residual block joins its shortcut s and branch b.
enum class Merge {
  add,     // s + b (Spiking-ResNet, SEW ADD)
  and_,    // s · b (SEW AND)
  iand,    // s · (1 − b) (SEW IAND, SpikingJelly's sew_function(identity, out))
  convex,  // c₀·s + c₁·b with learnable "<scope>.convex.comb" = (½, ½), kept on the simplex by the
           // retraction step (SNN-RAT's ConvexCombination; models/retraction.h project_convex_weights)
};
Merge parse_sew_connect(const std::string& name, const std::string& model);  // "add" | "and" | "iand"

class GraphBuilder {
 public:
  using AddTensor = std::function<Tensor(const std::string& name, Tensor initial)>;
  GraphBuilder(const std::string& model_name, const ModelConfig& config, AddTensor add_parameter,
               AddTensor add_buffer);

  const ModelConfig& config() const { return config_; }
  const FeatureShape& shape() const { return shape_; }

  // Names inside are prefixed "<name>." until the returned object goes out of scope.
  class Scope {
   public:
    Scope(GraphBuilder& b, const std::string& name);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    GraphBuilder& b_;
    size_t length_;
  };
  Scope scope(const std::string& name) { return Scope(*this, name); }
  Scope scope(int index) { return Scope(*this, std::to_string(index)); }

  // Conv weights kaiming_normal(fan_out); bias, when asked for, PyTorch's uniform. BN: weight 1, bias 0,
  // running (0, 1); 2-D only. The neuron is the model's (ModelConfig::neuron_spec). Linear: PyTorch's
  // default initialisation, the bias zeroed when zero_bias.
  LayerPtr conv(const std::string& name, int64_t out_channels, int kernel, int stride, int padding, bool bias);
  LayerPtr batch_norm(const std::string& name);
  LayerPtr neuron(const std::string& name);
  // Pools carry a name only for reports and the trace (no tensors).
  LayerPtr max_pool(const std::string& name, int kernel, int stride, int padding);
  LayerPtr avg_pool(const std::string& name, int kernel, int stride, int padding);
  LayerPtr adaptive_avg_pool(const std::string& name, int out_size);
  LayerPtr flatten();
  LayerPtr linear(const std::string& name, int64_t out_features, bool zero_bias = false);
  LayerPtr sequential(std::vector<LayerPtr> layers);
  // merge(shortcut(x), branch(x)), then `after` (may be null). Each builder function builds from the block's
  // input shape; `shortcut` may be empty (identity). The branch and shortcut must end in the same shape.
  // A convex merge registers "<current scope>.convex.comb".
  LayerPtr residual(const std::function<LayerPtr()>& branch, const std::function<LayerPtr()>& shortcut, Merge merge,
                    const std::function<LayerPtr()>& after = nullptr);

 private:
  std::string path(const std::string& name) const;
  LayerPtr pool(LayerRecord::Kind kind, const std::string& name, int kernel, int stride, int padding);
  void check_spatial(const std::string& what) const;

  std::string model_;
  ModelConfig config_;
  AddTensor add_parameter_, add_buffer_;
  Generator gen_;
  ConfiguredNeuron neuron_;
  FeatureShape shape_;
  std::string prefix_;
};

// A Model whose layers are a graph: `build` makes the whole network, from the encoded input to the logits
// (flat, num_classes wide).
class GraphModel : public Model {
 public:
  using BuildFn = std::function<LayerPtr(GraphBuilder&)>;
  GraphModel(std::string name, const ModelConfig& config, const BuildFn& build);

 protected:
  Tensor forward_layers(Tape& tape, const Tensor& x, int64_t batch, Taps& taps) override;

 private:
  LayerPtr root_;
};

}  // namespace spikegrad
