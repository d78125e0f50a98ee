#include "models/model.h"
#include "models/encoding.h"
#include "models/zoo.h"

#include <map>
#include <mutex>

namespace spikegrad {

Model::Model(std::string name, ModelConfig config) : name_(std::move(name)), config_(config) {
  const int64_t c = config_.in_channels;
  SG_CHECK(c >= 1 && c <= 3, name_ << ": in_channels must be 1, 2 or 3, got " << c);
  SG_CHECK(config_.image_size >= 8, name_ << ": image_size must be >= 8, got " << config_.image_size);
  SG_CHECK(config_.num_classes >= 2, name_ << ": num_classes must be >= 2, got " << config_.num_classes);
  SG_CHECK(config_.time_steps >= 1, name_ << ": time_steps must be >= 1, got " << config_.time_steps);
  std::vector<float> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
  for (int64_t i = 0; i < c; ++i) {
    SG_CHECK(config_.std[size_t(i)] > 0, name_ << ": normalisation std of channel " << i << " must be > 0");
    scale[size_t(i)] = 1.f / config_.std[size_t(i)];
    shift[size_t(i)] = -config_.mean[size_t(i)] / config_.std[size_t(i)];
  }
  norm_scale_ = Tensor::from_vector(scale, {c});
  norm_shift_ = Tensor::from_vector(shift, {c});
}

Tensor Model::add_parameter(const std::string& name, Tensor t) {
  for (const auto& p : params_) SG_CHECK(p.name != name, name_ << ": duplicate parameter name " << name);
  t.set_requires_grad(true);
  params_.push_back({name, t});
  return t;
}

Tensor Model::add_buffer(const std::string& name, Tensor t) {
  for (const auto& b : buffers_) SG_CHECK(b.name != name, name_ << ": duplicate buffer name " << name);
  buffers_.push_back({name, t});
  return t;
}

NamedTensors Model::state() const {
  NamedTensors all = params_;
  all.insert(all.end(), buffers_.begin(), buffers_.end());
  return all;
}

int64_t Model::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.tensor.numel();
  return n;
}

void Model::set_ann_mode(std::optional<AnnMode> mode) {
  if (mode) SG_CHECK(mode->qcfs_levels >= 1, name_ << ": ANN mode's QCFS levels must be >= 1, got " << mode->qcfs_levels);
  SG_CHECK(!(mode && config_.frame_input),
           name_ << ": ANN mode needs one static image per example, but this model reads event frames "
                    "(--attack-grad ann-relu|ann-qcfs is not available for frame data)");
  ann_mode_ = mode;
}

LayerRun Model::layer_run() const {
  LayerRun run;
  run.steps = ann_mode_ ? 1 : config_.time_steps;
  run.training = training_;
  run.neuron = config_.neuron;
  run.ann = ann_mode_;
  run.cross_replica = cross_replica_;
  run.trace = trace_;
  run.input_levels = input_levels_;
  return run;
}

void Model::to(Device device) {
  for (auto& p : params_) p.tensor.move_to(device);
  for (auto& b : buffers_) b.tensor.move_to(device);
  norm_scale_.move_to(device);
  norm_shift_.move_to(device);
  device_ = device;
}

ForwardResult Model::forward(Tape& tape, const Tensor& images, const TapKeep& keep) {
  const ModelConfig& c = config_;
  const bool spike_encoder = c.encoding != InputEncoding::direct;
  // A phase/Poisson model also takes its input already encoded, (B,T,C,H,W) spikes (the spike-domain attacks,
  // models/encoding.h): time-major after a transpose, nothing else (spikes are not normalised).
  const bool encoded = spike_encoder && images.defined() && images.ndim() == 5;
  const bool batch_major_frames = c.frame_input || encoded;
  const int64_t want_ndim = batch_major_frames ? 5 : 4;
  // The expected shape in words, built only when a check fails (forward runs every batch and attack iteration).
  auto want = [&c, spike_encoder] {
    const std::string chw = std::to_string(c.in_channels) + "," + std::to_string(c.image_size) + "," +
                            std::to_string(c.image_size);
    const std::string frames = "(B," + std::to_string(c.time_steps) + "," + chw + ")";
    if (c.frame_input) return frames + " frames";
    return "(B," + chw + ") images" + (spike_encoder ? " or " + frames + " encoded spikes" : std::string());
  };
  SG_CHECK(images.defined() && images.ndim() == want_ndim,
           name_ << ": expected " << want() << ", got " << (images.defined() ? shape_str(images.shape()) : "undefined"));
  SG_CHECK(images.dtype() == DType::F32, name_ << ": images must be float32 in [0,1], got " << dtype_name(images.dtype()));
  SG_CHECK(images.device() == device_, name_ << ": images are on " << device_name(images.device()) << " but the model is on "
                                             << device_name(device_));
  if (spike_encoder) {
    SG_CHECK(!c.frame_input, name_ << ": --encoding " << encoding_name(c.encoding)
                                   << " encodes static images, but this model reads event frames (spikes already); use "
                                      "--encoding direct");
    SG_CHECK(!ann_mode_, name_ << ": ANN mode (--attack-grad ann-relu|ann-qcfs) runs one step of the analog image, but "
                                  "this model's input is "
                               << encoding_name(c.encoding) << "-encoded spikes over T steps; use --attack-grad bptt or rga");
  }
  const int64_t f = batch_major_frames ? 1 : 0;  // frames carry T in dim 1
  SG_CHECK((!batch_major_frames || images.size(1) == c.time_steps) && images.size(1 + f) == c.in_channels &&
               images.size(2 + f) == c.image_size && images.size(3 + f) == c.image_size,
           name_ << ": expected " << want() << ", got " << shape_str(images.shape()));
  const int64_t batch = images.size(0), steps = layer_run().steps;
  const Shape step_shape{steps * batch, c.in_channels, c.image_size, c.image_size};
  Tensor x;
  if (c.frame_input) {
    // (B,T,C,H,W) -> normalise per frame -> (T,B,C,H,W), so that BPTT and the taps see the time-major layout.
    x = ops::channel_affine(tape, ops::reshape(tape, images, step_shape), norm_scale_, norm_shift_);
    x = ops::swap_leading_dims(tape, ops::reshape(tape, x, {batch, steps, -1}));
  } else if (encoded) {
    x = ops::swap_leading_dims(tape, ops::reshape(tape, images, {batch, steps, -1}));
  } else if (spike_encoder) {
    x = encode_spikes(c, images, steps);  // (T,B,C,H,W) 0/1, no gradient to the pixels (models/encoding.h)
  } else {
    x = ops::channel_affine(tape, images, norm_scale_, norm_shift_);
    x = ops::repeat_time(tape, x, steps);  // direct encoding: the same analog image at every step (once in ANN mode)
  }
  x = ops::reshape(tape, x, step_shape);
  ForwardResult out;
  out.taps.keep(keep);
  // Only spikes this forward encoded itself are exactly 0/1; encoded input handed in (a spike-domain attack's
  // perturbed spikes) is not, so its first conv must not keep it as bytes.
  input_levels_ = spike_encoder && !encoded ? encoded_input_levels(c) : 0;
  Tensor flat = forward_layers(tape, x, batch, out.taps);
  out.logits = ops::reshape(tape, flat, {steps, batch, c.num_classes});
  return out;
}

namespace {
std::map<std::string, ModelFactory>& registry() {
  static std::map<std::string, ModelFactory> r;
  return r;
}
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
// Built-ins are registered on first use, before the caller takes the lock (register_model takes it too).
void ensure_builtins() {
  static bool done = [] {
    register_builtin_models();
    return true;
  }();
  (void)done;
}
}  // namespace

void register_model(const std::string& name, ModelFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[name] = std::move(factory);
}

std::vector<std::string> model_names() {
  ensure_builtins();
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Model> make_model(const std::string& name, const ModelConfig& config) {
  ensure_builtins();
  ModelFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(name);
    if (it != registry().end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    SG_FAIL("unknown model '" << name << "'; known models: " << known);
  }
  return factory(config);
}

}  // namespace spikegrad
