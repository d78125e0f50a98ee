// The neuron registry (engine/neuron_registry.h): the built-in lif and if, the C++ compile of the registration
// list engine/registered_neurons.cu, lookups and option checks.
#include "engine/neuron_registry.h"

#include <cmath>
#include <mutex>
#include <sstream>
#include <utility>

// The list's SG_REGISTER_NEURON lines become the entries Listed<n> with n between these two counter values
// (engine/neuron_registration.h); registry() below adds them, in order, when it is first used.
#define SPIKEGRAD_NEURON_REGISTRY_HOST 1
namespace spikegrad::neuron_registration {
constexpr int kListBegin = __COUNTER__;
}  // namespace spikegrad::neuron_registration
#include "engine/registered_neurons.cu"
namespace spikegrad::neuron_registration {
constexpr int kListEnd = __COUNTER__;
}  // namespace spikegrad::neuron_registration

namespace spikegrad {

namespace {

// lif and if are ops::spike and ops::batch_norm_spike themselves, so a model that names them computes what
// it computed before the registry existed, bit for bit.
class LifRunner final : public NeuronRunner {
 public:
  LifRunner(const NeuronType& type, ops::NeuronKind kind) : type_(&type), kind_(kind) {}
  Tensor spike(Tape& tape, const Tensor& x, const ops::SpikeOptions& opt, const Tensor& params) const override {
    return ops::spike(tape, x, checked(opt, params));
  }
  Tensor batch_norm_spike(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, const ops::BatchNormOptions& bn,
                          int64_t time_steps, const ops::SpikeOptions& opt, const Tensor& params) const override {
    return ops::batch_norm_spike(tape, x, weight, bias, running_mean, running_var, bn, time_steps, checked(opt, params));
  }

 private:
  ops::SpikeOptions checked(const ops::SpikeOptions& opt, const Tensor& params) const {
    check_run_settings(*type_, opt);
    SG_CHECK(!params.defined(), type_->name << ": has no learnable scalars, but params were given");
    ops::SpikeOptions o = opt;
    o.neuron = kind_;
    return o;
  }
  const NeuronType* type_;
  ops::NeuronKind kind_;
};

NeuronType lif_type(const char* name, ops::NeuronKind kind, const char* help) {
  NeuronType t;
  t.name = name;
  t.help = help;
  t.takes_threshold = t.takes_reset = true;
  t.takes_decay = kind == ops::NeuronKind::lif;
  t.make_runner = [kind](const NeuronType& type, const NeuronOptionValues&) {
    return std::shared_ptr<const NeuronRunner>(std::make_shared<LifRunner>(type, kind));
  };
  t.initial_params = [](const NeuronOptionValues&) { return std::vector<double>{}; };
  return t;
}

struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<NeuronType>> types;  // never removed: runners and tape nodes keep pointers
};

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char ch : name)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
  return true;
}

// Adds `type` after checking it; the caller holds the lock (or is creating the registry).
void add_checked(Registry& r, NeuronType type) {
  SG_CHECK(valid_name(type.name),
           "register_neuron: a neuron name is lower-case letters, digits and '_', got '" << type.name << "'");
  SG_CHECK(type.make_runner && type.initial_params,
           "register_neuron: neuron '" << type.name << "' needs make_runner and initial_params");
  for (const NeuronOptionSpec& o : type.options)
    SG_CHECK(o.range.contains(o.default_value), "register_neuron: neuron '" << type.name << "': the default of '"
                                                                            << o.key << "', " << o.default_value
                                                                            << ", is outside its range "
                                                                            << o.range.describe());
  for (const auto& t : r.types)
    SG_CHECK(t->name != type.name, "register_neuron: a neuron named '" << type.name << "' exists");
  r.types.push_back(std::make_unique<NeuronType>(std::move(type)));
}

template <int... I>
void add_listed(Registry& r, std::integer_sequence<int, I...>) {
  using neuron_registration::kListBegin;
  auto add_one = [&r](auto entry) {
    using E = decltype(entry);
    if constexpr (E::kListed) add_checked(r, E::type());
  };
  (add_one(neuron_registration::Listed<kListBegin + 1 + I>{}), ...);
}

Registry& registry() {
  static Registry* r = [] {
    auto* fresh = new Registry;  // never destroyed: runners may be used during static destruction
    add_checked(*fresh, lif_type("lif", ops::NeuronKind::lif, "leaky integrate-and-fire, h = decay v + x (the default)"));
    add_checked(*fresh, lif_type("if", ops::NeuronKind::if_, "integrate-and-fire, h = v + x, fires at h >= threshold"));
    constexpr int listed = neuron_registration::kListEnd - neuron_registration::kListBegin - 1;
    add_listed(*fresh, std::make_integer_sequence<int, listed>{});
    return fresh;
  }();
  return *r;
}

std::string joined_names(const Registry& r) {
  std::string out;
  for (const auto& t : r.types) out += (out.empty() ? "" : ", ") + t->name;
  return out;
}

std::string option_keys(const NeuronType& t) {
  std::string out;
  for (const NeuronOptionSpec& o : t.options) out += (out.empty() ? "" : ", ") + o.key;
  return out;
}

}  // namespace

const NeuronType& find_neuron(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& t : r.types)
    if (t->name == name) return *t;
  SG_FAIL("unknown neuron '" << name << "'; registered neurons: " << joined_names(r));
}

std::vector<std::string> neuron_names() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& t : r.types) names.push_back(t->name);
  return names;
}

void register_neuron(NeuronType type) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  add_checked(r, std::move(type));
}

NeuronOptionValues complete_neuron_options(const NeuronSpec& spec, const std::string& what) {
  const NeuronType& t = find_neuron(spec.name);
  for (const auto& [key, value] : spec.options) {
    const NeuronOptionSpec* o = nullptr;
    for (const NeuronOptionSpec& known : t.options)
      if (known.key == key) o = &known;
    if (o == nullptr && t.options.empty())
      SG_FAIL(what << ": neuron '" << t.name << "' has no options of its own, got '" << key << "'"
                   << (t.takes_threshold ? " (its threshold and reset are the run's --threshold and --reset)" : ""));
    SG_CHECK(o != nullptr,
             what << ": neuron '" << t.name << "' has no option '" << key << "'; its options: " << option_keys(t));
    SG_CHECK(o->range.contains(value), what << ": neuron '" << t.name << "' option '" << key << "' must be "
                                            << o->range.describe() << ", got " << value);
  }
  NeuronOptionValues all;
  for (const NeuronOptionSpec& o : t.options) {
    const auto given = spec.options.find(o.key);
    all[o.key] = given == spec.options.end() ? o.default_value : given->second;
  }
  return all;
}

ConfiguredNeuron configure_neuron(const NeuronSpec& spec, const std::string& what) {
  ConfiguredNeuron c;
  c.options = complete_neuron_options(spec, what);
  c.type = &find_neuron(spec.name);
  c.runner = c.type->make_runner(*c.type, c.options);
  return c;
}

Tensor ConfiguredNeuron::initial_params() const {
  if (type->num_params == 0) return Tensor();
  const std::vector<double> values = type->initial_params(options);
  SG_CHECK(int(values.size()) == type->num_params, "neuron '" << type->name << "': initial_params gave "
                                                              << values.size() << " values for " << type->num_params
                                                              << " learnable scalars");
  std::vector<float> v(values.begin(), values.end());
  for (float x : v)
    SG_CHECK(std::isfinite(x), "neuron '" << type->name << "': an initial learnable scalar is not finite (" << x << ")");
  return Tensor::from_vector(v, type->num_params == 1 ? Shape{} : Shape{type->num_params});
}

void check_run_settings(const NeuronType& t, const ops::SpikeOptions& opt) {
  SG_CHECK(opt.neuron == ops::NeuronKind::lif || t.name == "if",
           t.name << ": SpikeOptions::neuron is if_, which selects IF in ops::spike; choose a neuron by its "
                     "registered name instead (\"if\")");
  SG_CHECK(t.takes_threshold || opt.threshold == 1.0,
           t.name << ": sets its own threshold and does not take the run's threshold (1 by default), got "
                  << opt.threshold << (t.options.empty() ? "" : "; its options: " + option_keys(t)));
  SG_CHECK(t.takes_reset || opt.reset == ops::ResetKind::hard,
           t.name << ": sets its own reset and does not take the run's reset (hard by default), got soft");
  SG_CHECK(t.takes_decay || opt.decay == 0.5,
           t.name << ": does not take the run's decay (LIF's leak, 0.5 by default), got " << opt.decay
                  << (t.options.empty() ? "" : "; its options: " + option_keys(t)));
}

std::string neurons_help() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string out;
  for (const auto& t : r.types) out += (out.empty() ? "" : "; ") + t->name + ": " + t->help;
  return out;
}

std::string neuron_options_help() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::ostringstream os;
  bool first = true;
  for (const auto& t : r.types) {
    if (t->options.empty()) continue;
    os << (first ? "" : "; ") << t->name << ":";
    first = false;
    for (size_t k = 0; k < t->options.size(); ++k) {
      const NeuronOptionSpec& o = t->options[k];
      os << (k ? "," : "") << " " << o.key << " (" << o.range.describe() << ", default " << o.default_value << ")";
    }
  }
  return os.str();
}

bool neuron_has_rga_tau(const std::string& name) { return name == "lif" || name == "if"; }

}  // namespace spikegrad
