#include "apps/setup.h"

#include <cstdio>

#include "apps/data_options.h"
#include "datasets/registry.h"
#include "engine/cuda_context.h"
#include "models/encoding.h"

namespace spikegrad::app {

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda") {
    SG_CHECK(cuda_available(), "--device cuda: no usable CUDA device (use --device cpu or auto)");
    return Device::CUDA;
  }
  SG_CHECK(name == "auto", "--device: expected cpu, cuda or auto, got '" << name << "'");
  return cuda_available() ? Device::CUDA : Device::CPU;
}

namespace {
Dataset first_n(const Dataset& d, int64_t n) {
  if (n <= 0 || n >= d.size()) return d;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
  return select_samples(d, idx);
}
}  // namespace

namespace {
// What reading a split had to say: the DVS cache's status, the JPEG files left out by --skip-corrupt.
void report_loading(const Dataset& d, const char* split) {
  if (!d.load_note.empty()) std::fprintf(stderr, "%s\n", d.load_note.c_str());
  if (!d.lazy()) return;
  const std::vector<std::string> skipped = d.source->skipped_files();
  if (skipped.empty()) return;
  std::fprintf(stderr, "%s %s: --skip-corrupt left out %zu unreadable file(s):\n", d.name.c_str(), split, skipped.size());
  for (size_t i = 0; i < skipped.size() && i < 10; ++i) std::fprintf(stderr, "  %s\n", skipped[i].c_str());
  if (skipped.size() > 10) std::fprintf(stderr, "  ... and %zu more\n", skipped.size() - 10);
}
}  // namespace

Data load_data(const RunConfig& c, bool need_train) {
  const std::string dir = c.data_dir.empty() ? default_dataset_dir(c.dataset) : c.data_dir;
  const DatasetOptions options = dataset_options(c);
  Data data;
  if (need_train) {
    Dataset full = load_dataset(c.dataset, dir, Split::Train, options);
    report_loading(full, "train");
    SG_CHECK(c.val_size < full.size(), "--val-size " << c.val_size << " must be smaller than the training split ("
                                                     << full.size() << " examples)");
    TrainValidationSplit split = split_train_validation(full, c.val_size, c.seed);
    data.train = first_n(split.train, c.train_subset);
    data.validation = split.validation;
  }
  Dataset test = load_dataset(c.dataset, dir, Split::Test, options);
  report_loading(test, "test");
  data.test = first_n(test, c.test_subset);
  return data;
}

std::unique_ptr<Model> build_model(const RunConfig& c, const Dataset& d, Device device) {
  ModelConfig mc;
  mc.in_channels = d.channels();
  SG_CHECK(d.height() == d.width(), c.dataset << ": models take square images, got " << d.height() << "x" << d.width());
  mc.image_size = d.height();
  mc.num_classes = d.num_classes;
  mc.time_steps = c.time_steps;
  // Event data carries its own T frames per example (no repetition); the reader made them with --T.
  const SampleLayout layout = d.sample_layout();
  mc.frame_input = layout.time_steps > 0;
  SG_CHECK(!mc.frame_input || layout.time_steps == c.time_steps,
           c.dataset << ": the examples have " << layout.time_steps << " frames but --T is " << c.time_steps);
  mc.encoding = parse_encoding(c.encoding);
  SG_CHECK(!mc.frame_input || mc.encoding == InputEncoding::direct,
           "--encoding " << c.encoding << ": " << c.dataset
                         << " examples are event frames, already spikes over T; use --encoding direct");
  mc.stem_pool = c.stem_pool;  // the residual models check both; other models refuse a non-default value
  mc.sew_connect = c.sew_connect;
  mc.resnet_width = c.resnet_width;
  mc.width_div = c.width_div;
  mc.mean = d.mean;
  mc.std = d.std;
  mc.init_seed = c.seed;
  mc.fuse_bn_spike = mc.pack_spike_inputs = c.memory_savers;
  mc.neuron_spec = {c.neuron, c.neuron_opt};  // any registered neuron; its own options checked when the model is built
  ops::SpikeOptions& n = mc.neuron;
  n.neuron = c.neuron == "if" ? ops::NeuronKind::if_ : ops::NeuronKind::lif;
  n.threshold = c.threshold;
  n.decay = c.decay;
  n.reset = c.reset == "soft" ? ops::ResetKind::soft : ops::ResetKind::hard;
  n.detach_reset = c.detach_reset;
  if (c.surrogate == "triangle") n.surrogate = ops::Surrogate::triangle(c.surrogate_alpha);
  else if (c.surrogate == "sigmoid") n.surrogate = ops::Surrogate::sigmoid(c.surrogate_alpha);
  else if (c.surrogate == "atan") n.surrogate = ops::Surrogate::atan(c.surrogate_alpha);
  else if (c.surrogate == "rectangle") n.surrogate = ops::Surrogate::rectangle(c.surrogate_alpha);
  else SG_FAIL("--surrogate: expected triangle, sigmoid, atan or rectangle, got '" << c.surrogate << "'");
  SG_CHECK(c.conv == "cudnn" || c.conv == "ours", "--conv: expected cudnn or ours, got '" << c.conv << "'");
  SG_CHECK(!c.tf32 || c.conv == "ours", "--tf32 needs --conv ours (the cuDNN path runs fp32 only)");
  SG_CHECK(c.cpu_conv == "auto" || c.cpu_conv == "dense", "--cpu-conv: expected auto or dense, got '" << c.cpu_conv << "'");
  ops::set_conv_settings(
      {c.conv == "ours" ? ops::ConvBackend::ours : ops::ConvBackend::cudnn, c.tf32, c.cpu_conv == "auto"});
  std::unique_ptr<Model> model = make_model(c.model, mc);
  model->to(device);
  return model;
}

std::unique_ptr<Optimizer> build_optimizer(const RunConfig& c, const Model& model) {
  if (c.optimizer == "sgd") {
    SgdOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    o.weight_decay = c.weight_decay;
    o.nesterov = c.nesterov;
    return std::make_unique<SGD>(model.parameters(), o);
  }
  if (c.optimizer == "adam") {
    AdamOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    return std::make_unique<Adam>(model.parameters(), o);
  }
  SG_CHECK(c.optimizer == "adamw", "--optimizer: expected adam, adamw or sgd, got '" << c.optimizer << "'");
  AdamWOptions o;
  o.lr = c.lr;
  o.weight_decay = c.weight_decay;
  return std::make_unique<AdamW>(model.parameters(), o);
}

std::unique_ptr<LrSchedule> build_schedule(const RunConfig& c) {
  if (c.schedule == "cosine") return std::make_unique<CosineSchedule>(c.lr, c.epochs, 0.0);
  if (c.schedule == "step") return std::make_unique<StepSchedule>(c.lr, c.step_size, c.gamma);
  SG_CHECK(c.schedule == "none", "--schedule: expected cosine, step or none, got '" << c.schedule << "'");
  return nullptr;
}

}  // namespace spikegrad::app
