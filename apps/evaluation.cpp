#include "apps/evaluation.h"

#include <cstdio>
#include <ctime>
#include <sstream>

#include "apps/interrupt.h"
#include "apps/obfuscation.h"
#include "apps/progress.h"
#include "datasets/loader.h"

namespace spikegrad::app {

namespace {
// Runs `fn(images, labels)` over `data` in dataset order (first `limit` examples; 0 = all), with the model in
// eval mode (restored afterwards). images are on the model's device; labels stay on the CPU, where they
// come from, so counting correct predictions never copies them back (upload them where an op needs them).
// pass: its progress bar (over the batches of this pass) and its interrupt guard (PassOptions).
template <class Fn>
void for_each_batch(Model& model, const Dataset& data, int64_t batch, int64_t limit, const PassOptions& pass, Fn&& fn) {
  ModelModeGuard guard(model, std::nullopt);  // BN on running statistics; restored afterwards
  Loader loader(data, LoaderOptions::evaluation(batch));
  const int64_t examples = limit > 0 ? std::min(limit, data.size()) : data.size();
  Progress bar(pass.label, batch > 0 ? (examples + batch - 1) / batch : 0, pass.progress);
  Batch b;
  int64_t seen = 0, step = 0;
  while (loader.next(b)) {
    if (pass.interrupts != nullptr && pass.interrupts->received())
      throw Interrupted("interrupted during " + pass.label);
    Tensor images = b.images, labels = b.labels;
    if (limit > 0 && seen + images.size(0) > limit) {
      const int64_t keep = limit - seen;
      if (keep <= 0) break;
      images = images.slice0(0, keep);
      labels = labels.slice0(0, keep);
    }
    fn(images.to(model.device()), labels);
    seen += images.size(0);
    bar.update(++step, seen, "");
    if (limit > 0 && seen >= limit) break;
  }
}

std::string fraction_text(double v) {
  std::ostringstream o;
  o << v;  // shortest natural form: 0.05, not 0.050000
  return o.str();
}
}  // namespace

int64_t count_correct(const Tensor& mean_logits, const Tensor& labels) {
  return count_matches(ops::argmax(mean_logits), labels);
}

int64_t count_matches(const Tensor& predictions, const Tensor& labels) {
  SG_CHECK(predictions.numel() == labels.numel(), "count_matches: " << predictions.numel() << " predictions but "
                                                                    << labels.numel() << " labels");
  const std::vector<int32_t> pred = predictions.to_vector<int32_t>();
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  int64_t n = 0;
  for (size_t i = 0; i < pred.size(); ++i) n += pred[i] == y[i];
  return n;
}

double clean_accuracy(Model& model, const Dataset& data, int64_t batch, const PassOptions& pass) {
  int64_t correct = 0, total = 0;
  for_each_batch(model, data, batch, 0, pass, [&](const Tensor& images, const Tensor& labels) {
    correct += count_matches(predict(model, images), labels);
    total += labels.numel();
  });
  return total ? 100.0 * double(correct) / double(total) : 0.0;
}

std::vector<AttackRow> attack_table(Model& model, const Dataset& data, const std::vector<SweepAttack>& attacks,
                                    int64_t subset, int64_t batch, uint64_t seed, std::vector<Tensor>* adv_out,
                                    const PassOptions& pass, Model* source) {
  std::vector<AttackRow> rows;
  const int64_t examples = subset > 0 ? std::min(subset, data.size()) : data.size();
  const int64_t batches = batch > 0 ? (examples + batch - 1) / batch : 0;
  const std::string label = pass.label.empty() ? "attack" : pass.label;
  Progress bar(label, batches * int64_t(attacks.size()), pass.progress);
  const PassOptions each{label, false, pass.interrupts};  // one bar over the sweep, not one per attack
  int64_t step = 0, images_done = 0;
  for (size_t k = 0; k < attacks.size(); ++k) {
    const SweepAttack& a = attacks[k];
    AttackRow row;
    row.attack = a.name;
    row.eps = a.eps;
    row.settings = describe(a) + (source ? ", transferred from " + source->name() + " (--source-checkpoint)" : "");
    // One generator per attack, seeded from the run: the table does not depend on the attack order.
    Generator gen(seed + 7919 * (k + 1));
    std::vector<Tensor> advs;
    AutoAttackResult ensemble;
    for_each_batch(model, data, batch, subset, each, [&](const Tensor& images, const Tensor& labels) {
      Tensor adv;
      row.result += run_sweep_attack(model, images, labels.to(model.device()), a, gen, adv_out ? &adv : nullptr,
                                     a.name == "autoattack" ? &ensemble : nullptr, source);
      if (adv_out) advs.push_back(adv.to(Device::CPU));
      ++step;
      images_done += labels.numel();
      bar.update(step, images_done, row.attack + " " + row.settings.substr(0, row.settings.find(',')));
    });
    if (adv_out) {
      int64_t n = 0;
      for (const Tensor& t : advs) n += t.size(0);
      Shape shape = advs.empty() ? Shape{0} : advs[0].shape();
      shape[0] = n;
      Tensor all = Tensor::empty(shape, DType::F32);
      int64_t at = 0;
      for (const Tensor& t : advs) {
        all.slice0(at, at + t.size(0)).copy_from(t);
        at += t.size(0);
      }
      adv_out->push_back(all);
    }
    if (a.name == "autoattack") {
      row.notes.push_back("autoattack: " + std::to_string(ensemble.top_logit_ties) + " of " +
                          std::to_string(ensemble.total) +
                          " examples have exactly equal top-2 clean logits (their prediction rests on the first-index rule)");
      for (const AutoAttackStage& st : ensemble.stages)
        if (!st.ran) row.notes.push_back("autoattack: " + st.name + " did not run: " + st.skipped_because);
    }
    rows.push_back(row);
    // The ensemble's stages, cumulative: the robust accuracy after each, the last being the worst case.
    for (const AutoAttackStage& st : ensemble.stages) {
      AttackRow stage;
      stage.attack = "autoattack: after " + st.name;
      stage.eps = a.eps;
      stage.settings = st.ran ? "cumulative; broke " + std::to_string(st.broken) : "skipped";
      stage.result.total = ensemble.total;
      stage.result.clean_correct = ensemble.clean_correct;
      stage.result.adv_correct = st.robust_after;
      stage.result.fooled = ensemble.clean_correct - st.robust_after;
      stage.result.zero_grad = row.result.zero_grad;
      rows.push_back(stage);
    }
  }
  return rows;
}

void check_splits_match(const Dataset& train, const Dataset& validation, const Dataset& test, const std::string& context) {
  auto shape = [](const Dataset& d) {
    return std::to_string(d.channels()) + "x" + std::to_string(d.height()) + "x" + std::to_string(d.width());
  };
  const Dataset* ref = train.size() > 0 ? &train : validation.size() > 0 ? &validation : nullptr;
  if (ref == nullptr) return;
  const char* ref_name = ref == &train ? "training" : "validation";
  const std::pair<const char*, const Dataset*> others[] = {{"validation", &validation}, {"test", &test}};
  for (const auto& [name, d] : others) {
    if (d == ref || d->size() == 0) continue;
    SG_CHECK(d->channels() == ref->channels() && d->height() == ref->height() && d->width() == ref->width(),
             context << ": the " << name << " split holds " << shape(*d) << " (CxHxW) images but the " << ref_name
                     << " split " << shape(*ref) << "; the model is built for one image size");
    SG_CHECK(d->num_classes == ref->num_classes, context << ": the " << name << " split has " << d->num_classes
                                                         << " classes but the " << ref_name << " split " << ref->num_classes);
  }
}

TemporalStats temporal_stats(Model& model, const Dataset& data, int64_t batch, const RunConfig& c,
                             const PassOptions& pass) {
  TemporalStats st;
  double mi_sum = 0;
  int64_t n = 0;
  std::vector<double> rate_sums;
  for_each_batch(model, data, batch, 0, pass, [&](const Tensor& images, const Tensor&) {
    NoGradGuard ng;
    Tape tape;
    ForwardResult out = model.forward(tape, images);
    const int64_t b = images.size(0);
    const std::string xn = c.mi_x.empty() ? out.taps.first_name() : c.mi_x;
    const std::string zn = c.mi_z.empty() ? out.taps.last_conv_name() : c.mi_z;
    const Tensor xr = ops::firing_rate(tape, out.taps.get(xn)), zr = ops::firing_rate(tape, out.taps.get(zn));
    mi_sum += ops::kde_mi_stats(xr, zr).mean_mi * double(b);
    if (st.firing_rates.empty()) {
      for (const NamedTensor& t : out.taps.entries()) st.firing_rates.push_back({t.name, 0.0});
      rate_sums.assign(st.firing_rates.size(), 0.0);
    }
    for (size_t i = 0; i < out.taps.entries().size(); ++i)
      rate_sums[i] += ops::mean(tape, out.taps.entries()[i].tensor).item() * double(b);
    n += b;
  });
  st.mean_mi = n ? mi_sum / double(n) : 0;
  for (size_t i = 0; i < st.firing_rates.size(); ++i) st.firing_rates[i].second = rate_sums[i] / double(n);
  return st;
}

Tensor all_mean_logits(Model& model, const Dataset& data, int64_t batch, const PassOptions& pass) {
  std::vector<Tensor> parts;
  int64_t n = 0;
  for_each_batch(model, data, batch, 0, pass, [&](const Tensor& images, const Tensor&) {
    NoGradGuard ng;
    Tape tape;
    parts.push_back(ops::mean_time(tape, model.forward(tape, images, TapKeep::none()).logits).to(Device::CPU));
    n += images.size(0);
  });
  Tensor all = Tensor::empty({n, model.config().num_classes}, DType::F32);
  int64_t at = 0;
  for (const Tensor& p : parts) {
    all.slice0(at, at + p.size(0)).copy_from(p);
    at += p.size(0);
  }
  return all;
}

std::string format_table(const std::vector<AttackRow>& rows) {
  std::ostringstream o;
  o << "| attack | settings | examples | robust accuracy (%) | attack success rate on initially-correct (%) | "
       "zero input-gradient examples (%) |\n|---|---|---|---|---|---|\n";
  char buf[256];
  for (const AttackRow& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %lld | %.2f | %.2f | %.2f |\n", r.attack.c_str(), r.settings.c_str(),
                  (long long)r.result.total, 100.0 * r.result.robust_accuracy(), 100.0 * r.result.attack_success_rate(),
                  100.0 * r.result.zero_grad_fraction());
    o << buf;
  }
  for (const AttackRow& r : rows)
    for (const std::string& note : r.notes) o << "\n- " << note;
  bool any_note = false;
  for (const AttackRow& r : rows) any_note = any_note || !r.notes.empty();
  if (any_note) o << "\n";
  return o.str();
}

std::string results_csv_text(double clean_pct, int64_t clean_examples, const std::vector<AttackRow>& rows,
                             double mean_kde_mi_bits) {
  std::ostringstream o;
  o << "attack,eps,examples,accuracy_pct,attack_success_pct,zero_input_gradient_pct,mean_kde_mi_bits\n";
  char buf[320];
  std::snprintf(buf, sizeof buf, "clean,,%lld,%.4f,,,%.6f\n", (long long)clean_examples, clean_pct, mean_kde_mi_bits);
  o << buf;
  for (const AttackRow& r : rows) {
    SG_CHECK(r.attack.find(',') == std::string::npos, "results.csv: attack name '" << r.attack << "' holds a comma");
    std::snprintf(buf, sizeof buf, "%s,%s,%lld,%.4f,%.4f,%.4f,\n", r.attack.c_str(), eps_text(r.eps).c_str(),
                  (long long)r.result.total, 100.0 * r.result.robust_accuracy(), 100.0 * r.result.attack_success_rate(),
                  100.0 * r.result.zero_grad_fraction());
    o << buf;
  }
  return o.str();
}

std::string report_text(Model& model, const RunConfig& c, const Dataset& test, const TrainProgress& best,
                        const InterruptGuard* interrupts, std::string* results_csv) {
  const double clean = clean_accuracy(model, test, c.eval_batch, {"report: clean accuracy", c.progress, interrupts});
  const double eps = parse_fraction_list(c.eps, "--eps").front();
  const std::vector<AttackRow> rows = attack_table(model, test, report_attacks(c, eps), c.attack_subset, c.eval_batch,
                                                   c.seed, nullptr, {"report: attacks", c.progress, interrupts});
  const TemporalStats ts =
      temporal_stats(model, test, c.eval_batch, c, {"report: temporal statistics", c.progress, interrupts});
  if (results_csv) *results_csv = results_csv_text(clean, test.size(), rows, ts.mean_mi);
  std::ostringstream r;
  r << "# spikegrad run: " << c.name << "\n\n";
  r << "- model **" << c.model << "** on **" << c.dataset << "**, T = " << c.time_steps << ", loss " << c.loss
    << (c.mi_lambda > 0 ? " + " + fraction_text(c.mi_lambda) + "·I(X;Z) (TMI)" : std::string(" (no TMI term)"))
    << ", " << c.optimizer << " lr " << c.lr << ", " << c.epochs << " epochs, batch " << c.batch << ", seed " << c.seed
    << "\n";
  if (c.adv != "none") {
    r << "- SNN-RAT adversarial training: " << c.adv << " eps " << c.adv_eps;
    if (c.adv == "pgd")
      r << ", alpha " << c.adv_alpha << ", " << c.adv_steps << " steps" << (c.adv_random_start ? ", random start" : "");
    r << ", crafted with BN in eval mode; loss on "
      << (c.adv_mix > 0 ? fraction_text(1 - c.adv_mix) + "·adversarial + " + fraction_text(c.adv_mix) + "·clean"
                        : std::string("the adversarial batch"))
      << "\n";
  }
  if (c.retraction_beta > 0) r << "- orthogonal retraction after every step, beta " << c.retraction_beta << "\n";
  r << "- best checkpoint: epoch " << best.best_epoch << ", selected on "
    << (c.select_on_test ? "**TEST accuracy** (the released code's behaviour: this biases every number below upward)"
                         : "the validation split (" + std::to_string(c.val_size) + " training examples held out)")
    << "\n";
  char buf[256];
  std::snprintf(buf, sizeof buf, "- clean test accuracy: **%.2f%%** on %lld test examples\n", clean, (long long)test.size());
  r << buf;
  r << "\n## Robustness (first " << (rows.empty() ? 0 : rows[0].result.total) << " test examples; BN in eval mode, "
    << c.encoding << " input encoding, attacks in the "
    << (c.attack_domain == "spikes" ? "spike domain: the encoded (B,T,C,H,W) spikes in [0,1], eps in spike units"
                                    : "pixel domain: images in [0,1]")
    << ")\n\n";
  r << "Robust accuracy = accuracy on the attacked inputs. Attack success rate = share of the initially-correct "
       "examples that the attack makes wrong. Zero input-gradient = examples whose input gradient is exactly zero "
       "(a gradient-obfuscation diagnostic).\n\n";
  r << format_table(rows);
  if (c.obfuscation_checks && !rows.empty()) {
    r << "\n## Gradient-obfuscation checks\n\n";
    r << format_checks(obfuscation_checks(model, test, c, rows, {"report: obfuscation checks", c.progress, interrupts}));
  }
  r << "\n## Temporal statistics (test split)\n\n";
  std::snprintf(buf, sizeof buf, "- mean KDE MI(X;Z): %.4f bits\n", ts.mean_mi);
  r << buf << "- firing rate per spiking layer (mean over examples, time steps and neurons):\n";
  for (const auto& [name, rate] : ts.firing_rates) {
    std::snprintf(buf, sizeof buf, "  - %s: %.4f\n", name.c_str(), rate);
    r << buf;
  }
  return r.str();
}

}  // namespace spikegrad::app
