#include "apps/commands.h"

#include <cstdio>
#include <set>

#include "apps/checkpoint.h"
#include "apps/evaluation.h"
#include "apps/obfuscation.h"
#include "apps/setup.h"

namespace spikegrad::app {

RunConfig config_for_checkpoint(const RunConfig& flags, const RunConfig& saved) {
  // eval/attack score the checkpoint on the dataset it was trained on: a different --dataset is an error
  // (empty: the checkpoint's), where it used to be ignored without a word.
  SG_CHECK(flags.dataset.empty() || flags.dataset == saved.dataset,
           "--dataset " << flags.dataset << " differs from the checkpoint's dataset (" << saved.dataset
                        << "): eval and attack score a checkpoint on the dataset it was trained on; drop --dataset "
                           "(--data-dir reads another copy of "
                        << saved.dataset << ")");
  RunConfig c = saved;  // model, neuron, dataset and normalisation come from the checkpoint
  c.data_dir = flags.data_dir.empty() ? saved.data_dir : flags.data_dir;
  c.dvs_cache_dir = flags.dvs_cache_dir.empty() ? saved.dvs_cache_dir : flags.dvs_cache_dir;
  c.val_labels = flags.val_labels.empty() ? saved.val_labels : flags.val_labels;
  c.decode_threads = flags.decode_threads;
  c.device = flags.device;
  c.seed = flags.seed;
  c.test_subset = flags.test_subset;
  c.eval_batch = flags.eval_batch;
  c.progress = flags.progress;
  c.attack_subset = flags.attack_subset;
  c.eps = flags.eps;
  c.alpha = flags.alpha;
  c.steps = flags.steps;
  c.gn_std = flags.gn_std;
  c.attack_grad = flags.attack_grad;
  c.attack_domain = flags.attack_domain;
  c.attacks = flags.attacks;
  c.attack_loss = flags.attack_loss;
  c.apgd_iterations = flags.apgd_iterations;
  c.fab_iterations = flags.fab_iterations;
  c.square_queries = flags.square_queries;
  c.target_classes = flags.target_classes;
  c.cw_c = flags.cw_c;
  c.cw_kappa = flags.cw_kappa;
  c.cw_steps = flags.cw_steps;
  c.cw_lr = flags.cw_lr;
  c.obfuscation_checks = flags.obfuscation_checks;
  c.source_checkpoint = flags.source_checkpoint;
  c.save_logits = flags.save_logits;
  c.save_adv = flags.save_adv;
  c.checkpoint = flags.checkpoint;
  validate(c);
  return c;
}

namespace {
struct Loaded {
  RunConfig config;
  Data data;
  std::unique_ptr<Model> model;
};
Loaded load_for_evaluation(const RunConfig& flags) {
  SG_CHECK(!flags.checkpoint.empty(), "--checkpoint: required (a best.safetensors or last.safetensors of a run)");
  // Every flag and output path before the checkpoint and the data are read (issue 16, defect 4).
  validate_before_evaluation(flags);
  Checkpoint ckpt = read_checkpoint(flags.checkpoint);
  Loaded l;
  l.config = config_for_checkpoint(flags, ckpt.config);
  l.data = load_data(l.config, /*need_train=*/false);
  l.model = build_model(l.config, l.data.test, resolve_device(l.config.device));
  restore_model(*l.model, ckpt);
  return l;
}
}  // namespace

void run_eval(const RunConfig& flags) {
  Loaded l = load_for_evaluation(flags);
  const RunConfig& c = l.config;
  const double clean = clean_accuracy(*l.model, l.data.test, c.eval_batch, {"clean accuracy", c.progress});
  std::printf("clean test accuracy: %.2f%% (%lld examples)\n", clean, (long long)l.data.test.size());
  const double eps = parse_fraction_list(c.eps, "--eps").front();
  const std::vector<AttackRow> rows = attack_table(*l.model, l.data.test, report_attacks(c, eps), c.attack_subset,
                                                   c.eval_batch, c.seed, nullptr, {"attack", c.progress});
  std::printf("%s", format_table(rows).c_str());
  if (c.obfuscation_checks && !rows.empty())
    std::printf("\nGradient-obfuscation checks:\n%s",
                format_checks(obfuscation_checks(*l.model, l.data.test, c, rows, {"obfuscation checks", c.progress})).c_str());
  const TemporalStats ts = temporal_stats(*l.model, l.data.test, c.eval_batch, c, {"temporal statistics", c.progress});
  std::printf("mean KDE MI(X;Z): %.4f bits\n", ts.mean_mi);
  for (const auto& [name, rate] : ts.firing_rates) std::printf("firing rate %s: %.4f\n", name.c_str(), rate);
  if (!c.save_logits.empty()) {
    Tensor logits = all_mean_logits(*l.model, l.data.test, c.eval_batch, {"logits", c.progress});
    save_safetensors(c.save_logits, {{"logits", logits}, {"labels", l.data.test.labels}},
                     {{"checkpoint", c.checkpoint}, {"what", "mean over T of the logits, test split order"}});
    std::printf("wrote %s\n", c.save_logits.c_str());
  }
}

namespace {
// The saved inputs of one table: a tensor per attack and epsilon, named by both ("pgd/eps=4/255", prefixed
// "transfer/" for a transfer table), with the robust count of its row; AutoAttack's stage rows have none.
void add_adversarials(const std::vector<AttackRow>& rows, const std::vector<SweepAttack>& configs,
                      const std::vector<Tensor>& advs, const std::string& prefix, NamedTensors* out,
                      std::map<std::string, std::string>* meta) {
  size_t at = 0;
  for (const AttackRow& row : rows) {
    if (row.attack.rfind("autoattack: ", 0) == 0) continue;
    const std::string name = prefix + adversarial_name(configs[at]);
    out->push_back({name, advs[at]});
    (*meta)[name] = row.attack + " " + row.settings;
    // The counts the table reports, so re-classifying the saved inputs can be checked against them.
    (*meta)[name + ".robust_correct"] = std::to_string(row.result.adv_correct);
    (*meta)[name + ".total"] = std::to_string(row.result.total);
    ++at;
  }
}

// --source-checkpoint: the model transfer attacks are crafted on, trained on the same dataset.
std::unique_ptr<Model> load_source_model(const RunConfig& c, const Dataset& test, Device device) {
  const Checkpoint ck = read_checkpoint(c.source_checkpoint);
  SG_CHECK(ck.config.dataset == c.dataset, "--source-checkpoint " << c.source_checkpoint << " was trained on "
                                                                  << ck.config.dataset << ", the attacked checkpoint on "
                                                                  << c.dataset << ": a transfer attack needs one dataset");
  std::unique_ptr<Model> m = build_model(ck.config, test, device);
  restore_model(*m, ck);
  return m;
}
}  // namespace

void run_attack(const RunConfig& flags) {
  Loaded l = load_for_evaluation(flags);
  const RunConfig& c = l.config;
  std::vector<SweepAttack> configs;
  std::set<std::string> names;  // CW is an L2 attack: one run serves every epsilon of the sweep
  for (double eps : parse_fraction_list(c.eps, "--eps"))
    for (const SweepAttack& a : report_attacks(c, eps))
      if (names.insert(adversarial_name(a)).second) configs.push_back(a);
  SG_CHECK(!configs.empty(), "--attacks none: the attack command needs at least one attack");
  std::vector<Tensor> advs, transfer_advs;
  const bool save = !c.save_adv.empty();
  const std::vector<AttackRow> rows = attack_table(*l.model, l.data.test, configs, c.attack_subset, c.eval_batch, c.seed,
                                                   save ? &advs : nullptr, {"attack", c.progress});
  std::printf("%s", format_table(rows).c_str());
  std::vector<AttackRow> transfer;
  if (!c.source_checkpoint.empty()) {
    std::unique_ptr<Model> source = load_source_model(c, l.data.test, l.model->device());
    transfer = attack_table(*l.model, l.data.test, configs, c.attack_subset, c.eval_batch, c.seed,
                            save ? &transfer_advs : nullptr, {"transfer attack", c.progress}, source.get());
    std::printf("\nTransfer attacks, crafted on %s:\n%s", c.source_checkpoint.c_str(), format_table(transfer).c_str());
  }
  if (c.obfuscation_checks)
    std::printf("\nGradient-obfuscation checks:\n%s",
                format_checks(obfuscation_checks(*l.model, l.data.test, c, rows, {"obfuscation checks", c.progress},
                                                 transfer))
                    .c_str());
  if (save) {
    NamedTensors out;
    std::map<std::string, std::string> meta{{"checkpoint", c.checkpoint}};
    add_adversarials(rows, configs, advs, "", &out, &meta);
    if (!transfer.empty()) {
      meta["source_checkpoint"] = c.source_checkpoint;
      add_adversarials(transfer, configs, transfer_advs, "transfer/", &out, &meta);
    }
    const int64_t n = advs.empty() ? 0 : advs[0].size(0);
    out.push_back({"labels", l.data.test.labels.slice0(0, n).clone()});
    save_safetensors(c.save_adv, out, meta);
    std::printf("wrote %s\n", c.save_adv.c_str());
  }
}

}  // namespace spikegrad::app
