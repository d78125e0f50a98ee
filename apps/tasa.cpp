// TASA on clean and attacked test inputs (definition in apps/tasa.h).
#include "apps/tasa.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "apps/evaluation.h"
#include "attacks/evaluate.h"
#include "datasets/loader.h"
#include "engine/ops.h"

namespace spikegrad::app {

using RateSums = std::vector<std::pair<std::string, std::vector<double>>>;

RateSums rate_sums_per_step(const Taps& taps) {
  RateSums out;
  for (const NamedTensor& tap : taps.entries()) {
    const Tensor& s = tap.tensor;
    SG_CHECK(s.ndim() >= 3, "tasa: tap '" << tap.name << "' must be (T,B,...) spikes, got " << s.ndim() << " dims");
    const int64_t steps = s.size(0), batch = s.size(1), per_example = s.numel() / (steps * batch);
    const std::vector<float> v = s.to_vector<float>();
    std::vector<double> sums(size_t(steps), 0.0);
    // r[b,t] = mean over the example's neurons at step t; summed over b here, divided by the examples later.
    for (int64_t t = 0; t < steps; ++t)
      for (int64_t b = 0; b < batch; ++b) {
        const float* p = v.data() + (t * batch + b) * per_example;
        double sum = 0;
        for (int64_t i = 0; i < per_example; ++i) sum += p[i];
        sums[size_t(t)] += per_example > 0 ? sum / double(per_example) : 0.0;
      }
    out.push_back({tap.name, std::move(sums)});
  }
  return out;
}

void accumulate_rate_sums(RateSums& total, const RateSums& batch) {
  if (total.empty()) {
    total = batch;
    return;
  }
  SG_CHECK(total.size() == batch.size(),
           "tasa: a batch produced " << batch.size() << " spiking-layer taps, the first " << total.size());
  for (size_t l = 0; l < total.size(); ++l) {
    SG_CHECK(total[l].first == batch[l].first && total[l].second.size() == batch[l].second.size(),
             "tasa: tap " << l << " is '" << batch[l].first << "' with T = " << batch[l].second.size()
                          << " in this batch, '" << total[l].first << "' with T = " << total[l].second.size()
                          << " in the first");
    for (size_t t = 0; t < total[l].second.size(); ++t) total[l].second[t] += batch[l].second[t];
  }
}

std::vector<LayerTasa> tasa_from_sums(const RateSums& clean, const RateSums& adversarial, int64_t examples) {
  SG_CHECK(examples > 0, "tasa: no examples were analysed");
  SG_CHECK(clean.size() == adversarial.size(), "tasa: " << clean.size() << " clean layers but "
                                                        << adversarial.size() << " adversarial ones");
  std::vector<LayerTasa> out;
  for (size_t l = 0; l < clean.size(); ++l) {
    SG_CHECK(clean[l].first == adversarial[l].first && clean[l].second.size() == adversarial[l].second.size(),
             "tasa: layer " << l << " differs between the clean ('" << clean[l].first << "') and adversarial ('"
                            << adversarial[l].first << "') passes");
    LayerTasa t;
    t.layer = clean[l].first;
    const size_t steps = clean[l].second.size();
    for (size_t s = 0; s < steps; ++s) {
      t.clean_t.push_back(clean[l].second[s] / double(examples));
      t.adversarial_t.push_back(adversarial[l].second[s] / double(examples));
      t.clean += t.clean_t.back() / double(steps);
      t.adversarial += t.adversarial_t.back() / double(steps);
    }
    t.abs_diff = std::fabs(t.clean - t.adversarial);
    out.push_back(std::move(t));
  }
  return out;
}

namespace {
RateSums forward_rate_sums(Model& model, const Tensor& x) {
  NoGradGuard no_grad;
  ModelModeGuard eval_mode(model, std::nullopt);  // BN on running statistics, restored afterwards
  Tape tape;
  const ForwardResult out = model.forward(tape, x, TapKeep::everything());
  return rate_sums_per_step(out.taps);
}
}  // namespace

TasaResult measure_tasa(Model& model, const Dataset& test, const AttackConfig& attack_config, int64_t batches,
                        int64_t batch_size) {
  SG_CHECK(batches >= 1, "tasa: --batches must be >= 1, got " << batches);
  check_attack_config(attack_config);
  Generator gen(attack_config.seed);  // one stream for the pass: PGD's random starts differ per batch
  Loader loader(test, LoaderOptions::evaluation(batch_size));
  Batch b;
  RateSums clean, adversarial;
  TasaResult r;
  int64_t clean_correct = 0, adv_correct = 0, done = 0;
  while (done < batches && loader.next(b)) {
    const Tensor images = b.images.to(model.device());
    const Tensor labels = b.labels.to(model.device());
    const Tensor x = attack_input(model, images, attack_config.domain);
    const Tensor x_adv = attack(model, x, labels, attack_config, gen);
    accumulate_rate_sums(clean, forward_rate_sums(model, x));
    accumulate_rate_sums(adversarial, forward_rate_sums(model, x_adv));
    clean_correct += count_matches(predict(model, x), b.labels);
    adv_correct += count_matches(predict(model, x_adv), b.labels);
    r.examples += b.labels.numel();
    ++done;
  }
  SG_CHECK(r.examples > 0, "tasa: the test split is empty");
  SG_CHECK(!clean.empty(), "tasa: " << model.name() << " exposes no spiking-layer taps to measure");
  r.layers = tasa_from_sums(clean, adversarial, r.examples);
  r.clean_accuracy = 100.0 * double(clean_correct) / double(r.examples);
  r.robust_accuracy = 100.0 * double(adv_correct) / double(r.examples);
  return r;
}

namespace {
std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
}  // namespace

std::string tasa_csv(const TasaResult& r) {
  const size_t steps = r.layers.empty() ? 0 : r.layers[0].clean_t.size();
  std::ostringstream o;
  o << "layer,tasa_clean,tasa_adv,abs_diff";
  for (size_t t = 0; t < steps; ++t) o << ",clean_t" << t;
  for (size_t t = 0; t < steps; ++t) o << ",adv_t" << t;
  o << "\n";
  for (const LayerTasa& l : r.layers) {
    o << l.layer << "," << fixed(l.clean, 6) << "," << fixed(l.adversarial, 6) << "," << fixed(l.abs_diff, 6);
    for (double v : l.clean_t) o << "," << fixed(v, 6);
    for (double v : l.adversarial_t) o << "," << fixed(v, 6);
    o << "\n";
  }
  return o.str();
}

std::string tasa_markdown(const TasaResult& r, const std::string& attack_description) {
  std::ostringstream o;
  o << "## TASA (temporal average spike activity), clean vs adversarial\n\n"
    << "Definition (ours; the released code has none): r_l[b,t] = mean over layer l's neurons of its spikes at "
       "step t for example b; TASA_l = mean over the " << r.examples << " analysed examples and the T steps of "
       "r_l[b,t] (per step: mean over the examples only). |diff| = |TASA_l(clean) − TASA_l(adversarial)|. BN in "
       "eval mode for both passes. Attack: " << attack_description << ".\n\n"
    << "- accuracy on these examples: clean " << fixed(r.clean_accuracy, 2) << "%, under the attack "
    << fixed(r.robust_accuracy, 2) << "%\n\n"
    << "| layer | TASA clean | TASA adversarial | abs diff | clean per t | adversarial per t |\n"
    << "|---|---|---|---|---|---|\n";
  auto per_t = [](const std::vector<double>& v) {
    std::string s;
    for (size_t t = 0; t < v.size(); ++t) s += (t ? "/" : "") + fixed(v[t], 3);
    return s;
  };
  for (const LayerTasa& l : r.layers)
    o << "| " << l.layer << " | " << fixed(l.clean, 4) << " | " << fixed(l.adversarial, 4) << " | "
      << fixed(l.abs_diff, 4) << " | " << per_t(l.clean_t) << " | " << per_t(l.adversarial_t) << " |\n";
  return o.str();
}

}  // namespace spikegrad::app
