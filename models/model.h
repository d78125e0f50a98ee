// The model interface every spiking network implements, and the registry that builds them by name.
//
// forward(images) takes (B,C,H,W) float images in [0,1] on the model's device and returns logits (T,B,K)
// (the classifier applied per time step; predictions use the mean over T) plus the taps. Inside, the
// first op is the dataset normalisation, then direct encoding (the normalised image repeated T times), then
// layers on the merged (T·B,...) batch. With ModelConfig::frame_input the images are (B,T,C,H,W) frames
// in [0,1] instead, normalised and transposed to time-major rather than repeated. Every forward starts from
// a fresh membrane state (the neuron op has no state across calls), so clean and attacked passes cannot
// leak into each other.
//
// Modes are separate switches (pitfall 6): train(bool) selects BN batch vs running statistics;
// spike_options().backward selects BPTT or RGA gradients; set_ann_mode runs the same weights as an ANN
// (one time step, logits (1,B,K); models/layers.h AnnMode); none changes another. Attacks set them for their
// duration only (attacks/attack.h ModelModeGuard). Subclasses read the modes of a forward from layer_run().
// Parameter and buffer names follow PyTorch (conv OIHW "features.0.conv.weight", BN running_mean, ...),
// so a checkpoint loads into an equivalent PyTorch module.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "engine/named_tensor.h"
#include "engine/ops.h"
#include "models/layers.h"
#include "models/taps.h"
#include "models/trace.h"

namespace spikegrad {

enum class InputEncoding { direct, phase, poisson };

struct ModelConfig {
  int64_t in_channels = 1;
  int64_t image_size = 28;  // square inputs: 28 (MNIST-style) or 32 (CIFAR-style)
  int64_t num_classes = 10;
  int64_t time_steps = 4;
  std::array<float, 3> mean{0.f, 0.f, 0.f};  // dataset normalisation, first in_channels entries used
  std::array<float, 3> std{1.f, 1.f, 1.f};
  ops::SpikeOptions neuron;  // defaults: reference.md §2's LIF
  NeuronSpec neuron_spec;    // which registered neuron the spiking layers run, and its own options (lif by
                             // default; engine/neuron_registry.h); `neuron` above carries the run's settings
  uint64_t init_seed = 0;
  // Memory savers of the conv stages; the values and gradients are the same either way (tested), so they
  // are on by default and exist as switches for before/after measurements (bench_train_step):
  bool fuse_bn_spike = true;      // BN + neuron as one op that recomputes the neuron's records in backward
                                  // (ops::batch_norm_spike) instead of batch_norm then spike
  bool pack_spike_inputs = true;  // a conv whose input is spikes or average-pooled spikes keeps that input
                                  // for its weight gradient as bytes (Conv2dOptions::input_levels)
  // Event data (CIFAR10-DVS): the input is already T frames per example, (B,T,C,H,W) batch-major as the
  // loader and the attacks hand examples around, with T = time_steps; the model normalises each frame and
  // moves time to the front instead of repeating one image. ANN mode is refused: frames have no one-image
  // equivalent to run once.
  bool frame_input = false;
  // Input encoding (models/encoding.h): direct (the normalised analog image at every step, reference.md), phase
  // (bit-plane coding of the 8-bit pixel, gradient_sparsity.md §3: no normalisation, step t carries bit
  // (t mod 8) from the most significant), poisson (rate coding: spike with probability = pixel).
  InputEncoding encoding = InputEncoding::direct;
  // Residual models (models/resnets.cpp): the stem pool of SEW-ResNet ("max" | "avg"; Spiking-ResNet is always
  // max) and SEW's connect function ("add" | "and" | "iand"). Other models reject a non-default value.
  std::string stem_pool = "max";
  std::string sew_connect = "add";
  int64_t resnet_width = 64;  // Spiking-/SEW-ResNet stage widths w, 2w, 4w, 8w; other models reject other values
  // The stage-list models (vggsnn, vgg11, vgg11_rat, alexnet, small_cnn): every conv and hidden Linear width
  // divided by this (rounded up): the same architecture, narrower, for CPU-scale runs (scripts/reproduce.sh).
  // Residual models reject values other than 1 (they have resnet_width).
  int64_t width_div = 1;
};

struct ForwardResult {
  Tensor logits;  // (T,B,K)
  Taps taps;
};

class Model {
 public:
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // keep: which taps the result references (models/taps.h); training without TMI keeps none, with TMI
  // only X and Z, so the other layers' spikes are freed as soon as the next layer has consumed them.
  ForwardResult forward(Tape& tape, const Tensor& images, const TapKeep& keep = TapKeep::everything());

  const std::string& name() const { return name_; }
  const ModelConfig& config() const { return config_; }
  const NamedTensors& parameters() const { return params_; }
  const NamedTensors& buffers() const { return buffers_; }
  NamedTensors state() const;  // parameters then buffers: what a checkpoint holds
  int64_t num_parameters() const;

  void train(bool on) { training_ = on; }
  bool training() const { return training_; }
  ops::SpikeOptions& spike_options() { return config_.neuron; }
  void set_ann_mode(std::optional<AnnMode> mode);  // nullopt: the spiking network (the default)
  const std::optional<AnnMode>& ann_mode() const { return ann_mode_; }
  // Synchronised batch norm (data-parallel --sync-bn): every BN layer's training statistics are summed over
  // the replicas through `sum` (not owned; nullptr: per-replica statistics, the default).
  void set_cross_replica(const ops::CrossReplicaSum* sum) { cross_replica_ = sum; }
  // Diagnostics: while set (not owned; nullptr, the default, turns it off), every forward appends each layer's
  // input and output to `trace` (models/trace.h) and runs BN and the neuron unfused.
  void set_trace(LayerTrace* trace) { trace_ = trace; }
  void to(Device device);  // moves parameters and buffers (parameters keep requires_grad)
  Device device() const { return device_; }

 protected:
  Model(std::string name, ModelConfig config);
  // images are already normalised and repeated: x is (S·B,C,H,W) with S = layer_run().steps (T, or 1 in ANN
  // mode). Returns logits (S·B,K) and fills taps.
  virtual Tensor forward_layers(Tape& tape, const Tensor& x, int64_t batch, Taps& taps) = 0;
  // The settings of this forward's spiking layers: steps, BN mode, neuron, ANN mode.
  LayerRun layer_run() const;

  Tensor add_parameter(const std::string& name, Tensor t);
  Tensor add_buffer(const std::string& name, Tensor t);

 private:
  std::string name_;
  ModelConfig config_;
  NamedTensors params_, buffers_;
  Tensor norm_scale_, norm_shift_;  // constants, derived from config (not saved)
  bool training_ = true;
  std::optional<AnnMode> ann_mode_;
  const ops::CrossReplicaSum* cross_replica_ = nullptr;
  LayerTrace* trace_ = nullptr;
  int input_levels_ = 0;  // LayerRun::input_levels of the forward in progress (set by forward)
  Device device_ = Device::CPU;
};

// Registry: "vggsnn", "vgg11", "alexnet", "small_cnn". The error for an unknown name lists the known ones.
using ModelFactory = std::function<std::unique_ptr<Model>(const ModelConfig&)>;
std::unique_ptr<Model> make_model(const std::string& name, const ModelConfig& config);
std::vector<std::string> model_names();
void register_model(const std::string& name, ModelFactory factory);

}  // namespace spikegrad
