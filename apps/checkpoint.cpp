#include "apps/checkpoint.h"

#include <cmath>
#include <vector>
#include <sstream>

#include "apps/data_options.h"
#include "datasets/registry.h"
#include "engine/neuron_registry.h"
#include "engine/strict_load.h"

namespace spikegrad::app {

namespace {
constexpr const char* kOptimizerPrefix = "optimizer.";
constexpr const char* kMinePrefix = "mine.";
constexpr int kFormatVersion = 1;

bool is_optimizer_entry(const std::string& name) { return name.rfind(kOptimizerPrefix, 0) == 0; }
bool is_mine_entry(const std::string& name) { return name.rfind(kMinePrefix, 0) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The named choices of a recorded config must be ones the CLI accepts (apps/options.cpp): the builders map
// some of them with a default branch (an unknown neuron builds LIF, an unknown loss trains CE), so an
// edited checkpoint would otherwise load as a different model without a word.
void check_config_choices(const RunConfig& c) {
  struct Choice {
    const char* key;
    const std::string& value;
    std::vector<const char*> allowed;
  };
  const std::vector<std::string> neurons = neuron_names();  // the registered ones (engine/neuron_registry.h)
  std::vector<const char*> neuron_choices;
  for (const std::string& n : neurons) neuron_choices.push_back(n.c_str());
  std::vector<const char*> dataset_choices;
  for (const std::string& n : known_dataset_names()) dataset_choices.push_back(n.c_str());
  const Choice choices[] = {
      {"dataset", c.dataset, dataset_choices},
      {"augment", c.augment, {"auto", "on", "off"}},
      {"neuron", c.neuron, neuron_choices},
      {"reset", c.reset, {"hard", "soft"}},
      {"surrogate", c.surrogate, {"triangle", "sigmoid", "atan", "rectangle"}},
      {"conv", c.conv, {"cudnn", "ours"}},
      {"cpu_conv", c.cpu_conv, {"auto", "dense"}},
      {"loss", c.loss, {"ce", "tet"}},
      {"optimizer", c.optimizer, {"adam", "adamw", "sgd"}},
      {"schedule", c.schedule, {"cosine", "step", "none"}},
      {"attack_grad", c.attack_grad, {"bptt", "rga", "ann-relu", "ann-qcfs"}},
      {"attack_loss", c.attack_loss, {"ce", "cw"}},
      {"adv", c.adv, {"none", "fgsm", "pgd"}},
      {"encoding", c.encoding, {"direct", "phase", "poisson"}},
      {"stem_pool", c.stem_pool, {"max", "avg"}},
      {"sew_connect", c.sew_connect, {"add", "and", "iand"}},
      {"attack_domain", c.attack_domain, {"pixels", "spikes"}},
  };
  for (const Choice& ch : choices) {
    bool known = false;
    std::string list;
    for (const char* a : ch.allowed) {
      known = known || ch.value == a;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    SG_CHECK(known, "config." << ch.key << ": unknown value '" << ch.value << "' (expected one of " << list << ")");
  }
  complete_neuron_options({c.neuron, c.neuron_opt}, "config.neuron_opt");  // the neuron's own options, in range
  check_dataset_settings(c);  // the JPEG and DVS choices and ranges, as the command line checks them
}

template <typename T>
void check_values(const T* v, int64_t n, bool nonnegative, const std::string& name, const std::string& what) {
  int64_t bad = 0, first = -1;
  bool first_nonfinite = false;
  for (int64_t i = 0; i < n; ++i) {
    const bool nonfinite = !std::isfinite(v[i]);
    if (nonfinite || (nonnegative && v[i] < 0)) {
      if (first < 0) first = i, first_nonfinite = nonfinite;
      ++bad;
    }
  }
  if (first < 0) return;
  std::ostringstream value;
  value << v[first];
  SG_FAIL(what << ": " << name << " has a " << (first_nonfinite ? "non-finite" : "negative") << " value "
               << value.str() << " at index " << first << " (" << bad << " of " << n << " values "
               << (nonnegative ? "non-finite or negative" : "non-finite") << ")");
}

void check_state(const NamedTensors& state, const std::string& what) {
  for (const NamedTensor& t : state) {
    if (!t.tensor.defined()) continue;
    const DType dt = t.tensor.dtype();
    if (dt != DType::F32 && dt != DType::F64) continue;  // integer buffers (counters) are always finite
    const Tensor host = t.tensor.to(Device::CPU);       // returns the tensor itself when it is on the host
    // BatchNorm's running variance feeds a 1/sqrt(var + eps), Adam's second moment a sqrt: a negative value
    // gives NaN outputs or steps.
    const bool nonnegative = ends_with(t.name, "running_var") || ends_with(t.name, "exp_avg_sq");
    if (dt == DType::F32) check_values(host.data<float>(), host.numel(), nonnegative, t.name, what);
    else check_values(host.data<double>(), host.numel(), nonnegative, t.name, what);
  }
}
}  // namespace

void check_model_state(const Model& model, const std::string& what) { check_state(model.state(), what); }

void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer, const RunConfig& config,
                     const TrainProgress& progress, const std::map<std::string, std::string>& extra_metadata,
                     const MineEstimator* mine) {
  NamedTensors tensors = model.state();
  nlohmann::json meta;
  meta["format_version"] = kFormatVersion;
  meta["model"] = model.name();
  // Self-describing: what the model expects, without a dataset table (informational; loading checks names
  // and shapes, and the run config rebuilds the model).
  const ModelConfig& mc = model.config();
  meta["model_config"] = {{"in_channels", mc.in_channels},
                          {"image_size", mc.image_size},
                          {"num_classes", mc.num_classes},
                          {"time_steps", mc.time_steps},
                          {"mean", std::vector<float>(mc.mean.begin(), mc.mean.begin() + mc.in_channels)},
                          {"std", std::vector<float>(mc.std.begin(), mc.std.begin() + mc.in_channels)}};
  meta["config"] = config.to_json();
  meta["epochs_done"] = progress.epochs_done;
  meta["best_epoch"] = progress.best_epoch;
  meta["best_accuracy"] = progress.best_accuracy;
  // 64-bit counters as strings: JSON readers commonly hold numbers as doubles.
  meta["generator"] = {{"seed", std::to_string(progress.generator_seed)},
                       {"offset", std::to_string(progress.generator_offset)}};
  meta["loader"] = {{"seed", std::to_string(progress.loader.seed)},
                    {"epoch", progress.loader.epoch},
                    {"next_batch", progress.loader.next_batch}};
  if (optimizer) {
    for (const NamedTensor& s : optimizer->state()) tensors.push_back({kOptimizerPrefix + s.name, s.tensor});
    meta["optimizer"] = {{"name", optimizer->name()}, {"hyper", optimizer->hyper_state()}};
  }
  if (mine && mine->built()) {
    for (const NamedTensor& s : mine->state()) tensors.push_back({kMinePrefix + s.name, s.tensor});
    meta["mine"] = {{"hyper", mine->hyper_state()}};
  }
  std::map<std::string, std::string> metadata = extra_metadata;
  SG_CHECK(!metadata.count("spikegrad"), path << ": extra checkpoint metadata may not replace the 'spikegrad' key");
  metadata["spikegrad"] = meta.dump();
  save_safetensors(path, tensors, metadata);
}

Checkpoint read_checkpoint(const std::string& path) {
  Checkpoint c;
  c.path = path;
  c.file = load_safetensors(path);
  auto it = c.file.metadata.find("spikegrad");
  SG_CHECK(it != c.file.metadata.end(), path << ": not a spikegrad checkpoint (no 'spikegrad' metadata)");
  try {
    c.metadata = nlohmann::json::parse(it->second);
    SG_CHECK(c.metadata.value("format_version", 0) == kFormatVersion,
             "unsupported checkpoint format_version " << c.metadata.value("format_version", 0));
    c.config = RunConfig::from_json(c.metadata.at("config"));
    check_config_choices(c.config);
    c.progress.epochs_done = c.metadata.at("epochs_done").get<int64_t>();
    c.progress.best_epoch = c.metadata.at("best_epoch").get<int64_t>();
    c.progress.best_accuracy = c.metadata.at("best_accuracy").get<double>();
    c.progress.generator_seed = std::stoull(c.metadata.at("generator").at("seed").get<std::string>());
    c.progress.generator_offset = std::stoull(c.metadata.at("generator").at("offset").get<std::string>());
    c.progress.loader.seed = std::stoull(c.metadata.at("loader").at("seed").get<std::string>());
    c.progress.loader.epoch = c.metadata.at("loader").at("epoch").get<int64_t>();
    c.progress.loader.next_batch = c.metadata.at("loader").at("next_batch").get<int64_t>();
  } catch (const Error& e) {
    SG_FAIL(path << ": bad checkpoint metadata: " << e.what());
  } catch (const std::exception& e) {
    SG_FAIL(path << ": bad checkpoint metadata: " << e.what());
  }
  return c;
}

void restore_model(Model& model, const Checkpoint& ckpt) {
  const std::string saved_model = ckpt.metadata.value("model", "");
  SG_CHECK(saved_model == model.name(),
           ckpt.path << ": checkpoint of model '" << saved_model << "', but the model is '" << model.name() << "'");
  NamedTensors source;
  for (const NamedTensor& t : ckpt.file.tensors)
    if (!is_optimizer_entry(t.name) && !is_mine_entry(t.name)) source.push_back(t);
  // The file's values are checked before anything is copied, so a refused checkpoint leaves the model as it was.
  check_state(source, "checkpoint " + ckpt.path);
  strict_copy(model.state(), source, ckpt.path);
}

void restore_optimizer(Optimizer& optimizer, const Checkpoint& ckpt) {
  SG_CHECK(ckpt.metadata.contains("optimizer"), ckpt.path << ": checkpoint holds no optimizer state");
  const std::string saved = ckpt.metadata["optimizer"].value("name", "");
  SG_CHECK(saved == optimizer.name(),
           ckpt.path << ": optimizer state of " << saved << ", but the run uses " << optimizer.name());
  NamedTensors state;
  const size_t prefix = std::string(kOptimizerPrefix).size();
  for (const NamedTensor& t : ckpt.file.tensors)
    if (is_optimizer_entry(t.name)) state.push_back({t.name.substr(prefix), t.tensor});
  // A run resumed from a non-finite momentum or second moment would turn every weight it touches into NaN at
  // the first step: refused here, naming the tensor, like the model's state.
  // (load_hyper_state checks lr and step_count.)
  check_state(state, ckpt.path + ": optimizer state");
  optimizer.load_state(state);
  optimizer.load_hyper_state(ckpt.metadata["optimizer"]["hyper"].get<std::map<std::string, double>>());
}

void restore_mine(MineEstimator& mine, const Checkpoint& ckpt) {
  NamedTensors state;
  const size_t prefix = std::string(kMinePrefix).size();
  for (const NamedTensor& t : ckpt.file.tensors)
    if (is_mine_entry(t.name)) state.push_back({t.name.substr(prefix), t.tensor});
  SG_CHECK(state.empty() == !ckpt.metadata.contains("mine"),
           ckpt.path << ": the MINE state is incomplete (" << (state.empty() ? "no mine.* tensors" : "no 'mine' metadata")
                     << ")");
  if (state.empty()) return;
  check_state(state, ckpt.path + ": MINE state");
  try {
    mine.load_state(state, ckpt.metadata["mine"].at("hyper").get<std::map<std::string, double>>(), ckpt.path);
  } catch (const nlohmann::json::exception& e) {
    SG_FAIL(ckpt.path << ": bad MINE metadata: " << e.what());
  }
}

}  // namespace spikegrad::app
