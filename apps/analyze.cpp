// The computation of `spikegrad analyze` (contract in apps/analyze.h); the report and the command are in
// apps/analyze_report.cpp.
#include "apps/analyze.h"

#include <cmath>
#include <initializer_list>
#include <limits>

#include "apps/evaluation.h"
#include "attacks/attack.h"
#include "attacks/evaluate.h"
#include "datasets/loader.h"
#include "engine/ops.h"

namespace spikegrad::app {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// Applies f(total_field, batch_field) to every number of a layer / input analysis, so summing the per-batch
// values and dividing by the batch count cannot miss a field.
using Field = std::pair<double*, double>;
template <class F>
void for_each_number(LayerAnalysis& a, const LayerAnalysis& b, F f) {
  for (auto [x, y] : std::initializer_list<Field>{{&a.z_in, b.z_in},
                                                  {&a.z_out, b.z_out},
                                                  {&a.norm_in, b.norm_in},
                                                  {&a.s_eff_in, b.s_eff_in},
                                                  {&a.z_w, b.z_w},
                                                  {&a.z_w_structural, b.z_w_structural},
                                                  {&a.z_w_nonstructural, b.z_w_nonstructural},
                                                  {&a.rate, b.rate},
                                                  {&a.mi_bits, b.mi_bits}})
    f(*x, y);
  for (size_t k = 0; k < a.above_in.size(); ++k) f(a.above_in[k], b.above_in[k]);
  for (size_t t = 0; t < a.z_in_t.size() && t < b.z_in_t.size(); ++t) f(a.z_in_t[t], b.z_in_t[t]);
  for (size_t t = 0; t < a.z_out_t.size() && t < b.z_out_t.size(); ++t) f(a.z_out_t[t], b.z_out_t[t]);
}
template <class F>
void for_each_number(InputAnalysis& a, const InputAnalysis& b, F f) {
  for (auto [x, y] : std::initializer_list<Field>{{&a.encoded_z, b.encoded_z},
                                                  {&a.encoded_norm, b.encoded_norm},
                                                  {&a.encoded_s_eff, b.encoded_s_eff},
                                                  {&a.domain_z, b.domain_z},
                                                  {&a.domain_norm, b.domain_norm},
                                                  {&a.domain_s_eff, b.domain_s_eff},
                                                  {&a.domain_dim, b.domain_dim},
                                                  {&a.domain_nonzeros, b.domain_nonzeros},
                                                  {&a.adversarial_increase, b.adversarial_increase},
                                                  {&a.random_increase, b.random_increase},
                                                  {&a.ratio, b.ratio},
                                                  {&a.abs_ratio, b.abs_ratio},
                                                  {&a.bound_l0, b.bound_l0},
                                                  {&a.bound_s_eff, b.bound_s_eff}})
    f(*x, y);
  for (size_t k = 0; k < a.encoded_above.size(); ++k) f(a.encoded_above[k], b.encoded_above[k]);
  for (size_t t = 0; t < a.encoded_z_t.size() && t < b.encoded_z_t.size(); ++t) f(a.encoded_z_t[t], b.encoded_z_t[t]);
}

// Puts the model's trace and buffers back however the batch ends: the trace off, and (BN train mode) the
// running statistics as they were before the batch's forwards updated them.
class RestoreModel {
 public:
  explicit RestoreModel(Model& model) : model_(model) {
    for (const NamedTensor& b : model.buffers()) saved_.push_back(b.tensor.clone());
  }
  ~RestoreModel() {
    model_.set_trace(nullptr);
    for (size_t i = 0; i < saved_.size(); ++i) {
      Tensor buffer = model_.buffers()[i].tensor;  // a handle on the model's storage
      buffer.copy_from(saved_[i]);
    }
  }
  RestoreModel(const RestoreModel&) = delete;
  RestoreModel& operator=(const RestoreModel&) = delete;

 private:
  Model& model_;
  std::vector<Tensor> saved_;
};

const Tensor& parameter(const Model& model, const std::string& name) {
  for (const NamedTensor& p : model.parameters())
    if (p.name == name) return p.tensor;
  SG_FAIL("analyze: the trace names the weight '" << name << "', which is not a parameter of " << model.name());
}

// Statistics of the gradients of `parts`, or nothing when a part is not on the tape (no gradient reaches it:
// a detached encoder's output), where a zero gradient would read as perfect sparsity.
bool stats_of(const std::vector<Tensor>& parts, const std::vector<Tensor>& grads, int64_t steps, GradientStats* out) {
  for (const Tensor& p : parts)
    if (!p.requires_grad()) return false;
  *out = gradient_stats(grads, steps);
  return true;
}

struct BatchResult {
  std::vector<LayerAnalysis> layers;
  InputAnalysis input;
  bool has_encoded_input = false, domain_gradient_zero = false, ratio_undefined = false;
  double spikes = 0, neuron_elements = 0;
  int64_t clean_correct = 0, fgsm_correct = 0;
};

double cross_entropy_at(Model& model, const Tensor& images, const Tensor& labels) {
  NoGradGuard no_grad;
  Tape tape;
  const ForwardResult out = model.forward(tape, images, TapKeep::none());
  return ops::cross_entropy(tape, ops::mean_time(tape, out.logits), labels).item();
}

BatchResult analyze_batch(Model& model, const Tensor& images, const Tensor& labels_cpu, const AnalysisSettings& s,
                          uint64_t batch_seed) {
  const int64_t steps = model.config().time_steps;
  const Tensor labels = labels_cpu.to(model.device());
  BatchResult r;
  Tensor x_clean, fgsm_input;
  {
    RestoreModel restore(model);
    ModelModeGuard guard(model, AttackGrad::bptt);  // BN eval and surrogate BPTT, restored at scope end
    model.train(s.bn_mode == "train");
    LayerTrace trace;
    model.set_trace(&trace);
    Tape tape;
    const Tensor x = attack_input(model, images, s.domain);  // the images, or their encoded spikes
    x_clean = x;
    Tensor leaf = x.view(x.shape());
    leaf.set_requires_grad(true);
    const ForwardResult out = model.forward(tape, leaf, TapKeep::none());
    const Tensor loss = ops::cross_entropy(tape, ops::mean_time(tape, out.logits), labels);
    model.set_trace(nullptr);

    // One backward for everything: record inputs and outputs, recorded weights, the attacked input (last).
    const std::vector<LayerRecord>& records = trace.records();
    std::vector<Tensor> wrt;
    std::vector<size_t> first_input(records.size()), output_at(records.size()), weight_at(records.size(), SIZE_MAX);
    for (size_t i = 0; i < records.size(); ++i) {
      first_input[i] = wrt.size();
      for (const Tensor& in : records[i].inputs) wrt.push_back(in);
      output_at[i] = wrt.size();
      wrt.push_back(records[i].output);
      if (!records[i].weight.empty()) {
        weight_at[i] = wrt.size();
        wrt.push_back(parameter(model, records[i].weight));
      }
    }
    wrt.push_back(leaf);
    const std::vector<Tensor> grads = tape.grad(loss, wrt);

    Tensor first_rates;  // (S,B) firing rates of the first neuron layer, the X of every MI pair
    for (size_t i = 0; i < records.size(); ++i) {
      const LayerRecord& rec = records[i];
      LayerAnalysis la;
      la.name = rec.name;
      la.kind = layer_kind_name(rec.kind);
      la.weight = rec.weight;
      la.shape = rec.output.shape();
      const std::vector<Tensor> in_grads(grads.begin() + long(first_input[i]), grads.begin() + long(output_at[i]));
      GradientStats in, outs;
      if (!rec.inputs.empty() && stats_of(rec.inputs, in_grads, steps, &in)) {
        la.z_in = in.zero_fraction();
        la.z_in_t = in.zero_fraction_per_step();
        la.norm_in = in.norm();
        la.s_eff_in = in.effective_support();
        for (size_t k = 0; k < la.above_in.size(); ++k) la.above_in[k] = in.fraction_above(k);
      } else {
        la.z_in = la.norm_in = la.s_eff_in = kNan;
        la.above_in.fill(kNan);
      }
      if (stats_of({rec.output}, {grads[output_at[i]]}, steps, &outs)) {
        la.z_out = outs.zero_fraction();
        la.z_out_t = outs.zero_fraction_per_step();
      } else {
        la.z_out = kNan;
      }
      la.z_w = la.z_w_structural = la.z_w_nonstructural = kNan;
      if (weight_at[i] != SIZE_MAX) {
        std::vector<bool> taps;  // structural zeros: conv taps that only ever see padding
        if (rec.kind == LayerRecord::conv && rec.kernel > 0 && !rec.inputs.empty() && rec.inputs[0].ndim() == 4)
          taps =
              conv_taps_seeing_data(rec.kernel, rec.stride, rec.padding, rec.inputs[0].size(2), rec.inputs[0].size(3));
        const WeightZeros w = weight_zeros(grads[weight_at[i]], taps);
        la.z_w = w.zero_fraction();
        la.z_w_structural = w.structural_fraction();
        la.z_w_nonstructural = w.nonstructural_zero_fraction();
      }
      la.rate = la.mi_bits = kNan;
      if (rec.kind == LayerRecord::neuron) {
        NoGradGuard no_grad;
        Tape scratch;
        const std::vector<float> spikes = rec.output.to_vector<float>();
        double sum = 0;
        for (float v : spikes) sum += v;
        la.rate = spikes.empty() ? 0.0 : sum / double(spikes.size());
        r.spikes += sum;
        r.neuron_elements += double(spikes.size());
        const Tensor rates = ops::firing_rate(scratch, rec.output.view({steps, images.size(0), -1}));
        if (!first_rates.defined())
          first_rates = rates;
        else
          la.mi_bits = ops::kde_mi_stats(first_rates, rates).mean_mi;
      }
      if (rec.kind == LayerRecord::input && rec.output.requires_grad()) {
        const GradientStats e = gradient_stats({grads[output_at[i]]}, steps);
        r.has_encoded_input = true;
        r.input.encoded_z = e.zero_fraction();
        r.input.encoded_z_t = e.zero_fraction_per_step();
        r.input.encoded_norm = e.norm();
        r.input.encoded_s_eff = e.effective_support();
        for (size_t k = 0; k < e.above.size(); ++k) r.input.encoded_above[k] = e.fraction_above(k);
      }
      r.layers.push_back(std::move(la));
    }
    if (!r.has_encoded_input) {
      r.input.encoded_z = r.input.encoded_norm = r.input.encoded_s_eff = kNan;
      r.input.encoded_above.fill(kNan);
    }

    // The attacked input's gradient and R (spec §2.1), in the BN mode of the analysis.
    const Tensor& g = grads.back();
    const GradientStats p = gradient_stats({g}, 1);
    InputAnalysis& in = r.input;
    in.domain_z = p.zero_fraction();
    in.domain_norm = p.norm();
    in.domain_s_eff = p.effective_support();
    in.domain_dim = double(p.numel);
    in.domain_nonzeros = double(p.nonzeros());
    in.bound_l0 = std::sqrt(2.0 * double(p.nonzeros()));
    in.bound_s_eff = std::sqrt(double(p.numel) * p.effective_support());
    fgsm_input = signed_step(x, g, s.eps);
    r.domain_gradient_zero = p.nonzeros() == 0;
    if (r.domain_gradient_zero) {
      in.adversarial_increase = in.random_increase = in.ratio = in.abs_ratio = kNan;
    } else {
      const double clean = loss.item();
      const double adversarial = cross_entropy_at(model, fgsm_input, labels);
      std::vector<double> random;
      for (const Tensor& signs : random_sign_vectors(x.shape(), s.random_signs, batch_seed, x.device()))
        random.push_back(cross_entropy_at(model, signed_step(x, signs, s.eps), labels));
      const SignRatio ratio = sign_ratio(clean, adversarial, random);
      in.adversarial_increase = ratio.adversarial_increase;
      in.random_increase = ratio.random_increase;
      in.ratio = ratio.ratio;
      in.abs_ratio = ratio.abs_ratio;
      r.ratio_undefined = std::isnan(ratio.ratio);
    }
  }  // modes, trace and running statistics restored here
  // Accuracies with BN eval on the (restored) running statistics, whatever the analysis mode.
  r.clean_correct = count_matches(predict(model, x_clean), labels_cpu);
  r.fgsm_correct = count_matches(predict(model, fgsm_input), labels_cpu);
  return r;
}

}  // namespace

Analysis analyze_model(Model& model, const Dataset& test, const AnalysisSettings& s) {
  SG_CHECK(s.bn_mode == "eval" || s.bn_mode == "train", "--bn-mode: expected eval or train, got '" << s.bn_mode << "'");
  SG_CHECK(s.batches >= 1, "--batches: must be >= 1, got " << s.batches);
  SG_CHECK(s.random_signs >= 1, "analyze: the number of random sign vectors must be >= 1, got " << s.random_signs);
  SG_CHECK(s.eps >= 0 && s.eps <= 1, "--eps: must be in [0, 1], got " << s.eps);
  SG_CHECK(!model.ann_mode(), "analyze: the model is in ANN mode; the diagnostics are of the spiking network");
  Analysis a;
  Loader loader(test, LoaderOptions::evaluation(s.batch_size));
  Batch b;
  int64_t clean = 0, fgsm = 0;
  double spikes = 0, neuron_elements = 0;
  bool encoded = true, zero_gradient = false, ratio_undefined = false;
  while (a.batches < s.batches && loader.next(b)) {
    BatchResult r = analyze_batch(model, b.images.to(model.device()), b.labels, s, s.seed + uint64_t(a.batches));
    if (a.batches == 0) {
      a.layers = r.layers;
      a.input = r.input;
    } else {
      SG_CHECK(r.layers.size() == a.layers.size(), "analyze: batch " << a.batches << " recorded " << r.layers.size()
                                                                     << " layers, the first " << a.layers.size());
      for (size_t i = 0; i < a.layers.size(); ++i) {
        SG_CHECK(r.layers[i].name == a.layers[i].name, "analyze: layer " << i << " is '" << r.layers[i].name
                                                                         << "' in batch " << a.batches << ", '"
                                                                         << a.layers[i].name << "' in the first");
        for_each_number(a.layers[i], r.layers[i], [](double& total, double v) { total += v; });
      }
      for_each_number(a.input, r.input, [](double& total, double v) { total += v; });
    }
    clean += r.clean_correct;
    fgsm += r.fgsm_correct;
    spikes += r.spikes;
    neuron_elements += r.neuron_elements;
    encoded = encoded && r.has_encoded_input;
    zero_gradient = zero_gradient || r.domain_gradient_zero;
    ratio_undefined = ratio_undefined || r.ratio_undefined;
    a.examples += b.labels.numel();
    ++a.batches;
  }
  SG_CHECK(a.batches > 0, "analyze: the test split is empty");
  const double n = double(a.batches);
  for (LayerAnalysis& l : a.layers) for_each_number(l, l, [n](double& total, double) { total /= n; });
  for_each_number(a.input, a.input, [n](double& total, double) { total /= n; });
  a.clean_accuracy = 100.0 * double(clean) / double(a.examples);
  a.fgsm_accuracy = 100.0 * double(fgsm) / double(a.examples);
  a.mean_rate = neuron_elements > 0 ? spikes / neuron_elements : kNan;
  if (a.layers.empty())
    a.notes.push_back("the model recorded no layer trace (Model::set_trace is not wired for " + model.name() +
                      "): only the pixel gradient and R are reported");
  else if (!encoded)
    a.notes.push_back(
        "the encoded input is not on the tape (no `input` record, or the encoder is detached): its "
        "gradient is not reported");
  if (zero_gradient)
    a.notes.push_back(
        "the attacked input's gradient was exactly zero in at least one batch (e.g. a saturated loss): "
        "R is not a number then, and its mean is reported as such rather than as 0");
  if (ratio_undefined)
    a.notes.push_back(
        "in at least one batch the loss did not change on average under the random sign steps (a "
        "piecewise-constant loss: no spike flips at this eps): R is not a number then");
  return a;
}

}  // namespace spikegrad::app
