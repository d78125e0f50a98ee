#include "apps/options.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "apps/attack_sweep.h"
#include "apps/data_options.h"
#include "apps/encoding_options.h"
#include "apps/mi_options.h"
#include "apps/option_flags.h"
#include "datasets/registry.h"
#include "engine/check.h"
#include "engine/neuron_registry.h"

namespace spikegrad::app {

// The JSON form of RunConfig: one key per field, named as the field. (nlohmann's
// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT stops at 63 fields; this list has no such limit.)
#define SG_RUN_CONFIG_FIELDS(X) \
    X(dataset) X(data_dir) X(val_size) X(select_on_test) X(train_subset) X(test_subset) X(augment) X(model) \
    X(image_size) X(resize_size) X(jpeg_recipe) X(crop_scale_min) X(crop_padding) X(dct_scaling) X(skip_corrupt) \
    X(val_labels) X(dvs_split) X(dvs_split_seed) X(dvs_split_by) X(dvs_size) X(dvs_frame_norm) X(dvs_cache_dir) \
    X(decode_threads) \
    X(time_steps) X(neuron) X(neuron_opt) X(threshold) X(decay) X(reset) X(detach_reset) X(surrogate) X(surrogate_alpha) \
    X(memory_savers) X(conv) X(tf32) X(cpu_conv) X(encoding) X(stem_pool) X(sew_connect) X(resnet_width) X(width_div) X(loss) X(tet_lambda) X(tet_phi) X(mi_lambda) X(mi_x) X(mi_z) \
    X(mi_estimator) X(mi_hist_bins) X(mi_reduce) X(mi_taps) X(mine_hidden) X(mine_pool) X(mine_ema) X(mine_lr) \
    X(entropy_weight) X(entropy_sign) X(optimizer) X(lr) X(momentum) X(weight_decay) X(nesterov) X(schedule) \
    X(step_size) X(gamma) X(grad_clip) X(adv) X(adv_eps) X(adv_alpha) X(adv_steps) X(adv_random_start) \
    X(adv_mix) X(retraction_beta) X(epochs) X(batch) X(seed) X(device) X(runs_dir) X(name) X(resume) \
    X(progress) X(checkpoint) X(attack_subset) X(eps) X(alpha) X(steps) X(gn_std) X(attack_grad) X(attack_domain) \
    X(save_logits) X(save_adv) X(eval_batch) X(attacks) X(attack_loss) X(apgd_iterations) X(fab_iterations) \
    X(square_queries) X(target_classes) X(cw_c) X(cw_kappa) X(cw_steps) X(cw_lr) \
    X(obfuscation_checks) X(source_checkpoint) X(sync_bn) X(collective_timeout) \
    X(track_robustness)

void to_json(nlohmann::json& j, const RunConfig& c) {
#define SG_FIELD_TO_JSON(f) j[#f] = c.f;
  SG_RUN_CONFIG_FIELDS(SG_FIELD_TO_JSON)
#undef SG_FIELD_TO_JSON
}

// A key that is absent keeps the default (checkpoints written before the field existed still load).
void from_json(const nlohmann::json& j, RunConfig& c) {
#define SG_FIELD_FROM_JSON(f) \
  if (j.contains(#f)) j.at(#f).get_to(c.f);
  SG_RUN_CONFIG_FIELDS(SG_FIELD_FROM_JSON)
#undef SG_FIELD_FROM_JSON
}

nlohmann::json RunConfig::to_json() const { return nlohmann::json(*this); }

RunConfig RunConfig::from_json(const nlohmann::json& j) {
  SG_CHECK(j.is_object(), "config: expected a JSON object, got " << j.type_name());
  const nlohmann::json known = RunConfig().to_json();
  for (const auto& [key, value] : j.items()) SG_CHECK(known.contains(key), "config: unknown key '" << key << "'");
  return j.get<RunConfig>();
}

double parse_fraction(const std::string& text, const std::string& flag) {
  try {
    size_t used = 0;
    const auto slash = text.find('/');
    double v;
    if (slash == std::string::npos) {
      v = std::stod(text, &used);
      SG_CHECK(used == text.size(), "");
    } else {
      const std::string num = text.substr(0, slash), den = text.substr(slash + 1);
      size_t u1 = 0, u2 = 0;
      const double a = std::stod(num, &u1), b = std::stod(den, &u2);
      SG_CHECK(u1 == num.size() && u2 == den.size() && b != 0, "");
      v = a / b;
    }
    SG_CHECK(v >= 0, "");
    return v;
  } catch (const std::exception&) {
    SG_FAIL(flag << ": expected a non-negative number or fraction like 4/255, got '" << text << "'");
  }
}

std::vector<double> parse_fraction_list(const std::string& text, const std::string& flag) {
  std::vector<double> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    out.push_back(parse_fraction(item, flag));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

namespace {
// --neuron takes every registered neuron (engine/neuron_registry.h); --neuron-opt the chosen one's own options,
// checked against it in validate() (the neuron may be named after its options, or in the --config file).
void add_neuron_options(CLI::App* app, RunConfig& c) {
  app->add_option("--neuron", c.neuron, "spiking neuron (its own options: --neuron-opt): " + neurons_help())
      ->check(CLI::Validator(
          [](std::string& name) {
            const std::vector<std::string> known = neuron_names();
            if (std::find(known.begin(), known.end(), name) != known.end()) return std::string();
            std::string list;
            for (const std::string& n : known) list += (list.empty() ? "" : ", ") + n;
            return "unknown neuron '" + name + "'; registered neurons: " + list;
          },
          ""))
      ->capture_default_str();
  app->add_option_function<std::vector<std::string>>(
         "--neuron-opt",
         [&c](const std::vector<std::string>& items) {
           try {
             c.neuron_opt = parse_neuron_opt(items);
           } catch (const Error& e) {
             throw CLI::ValidationError(e.what());
           }
         },
         "the neuron's own options as KEY=VALUE, repeated or comma-separated (" + neuron_options_help() + ")")
      ->delimiter(',')
      ->type_name("KEY=VALUE");
}
}  // namespace

std::map<std::string, double> parse_neuron_opt(const std::vector<std::string>& items) {
  std::map<std::string, double> out;
  for (const std::string& raw : items) {
    const size_t a = raw.find_first_not_of(" \t"), b = raw.find_last_not_of(" \t");
    const std::string item = a == std::string::npos ? "" : raw.substr(a, b - a + 1);
    const size_t eq = item.find('=');
    SG_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(),
             "--neuron-opt: expected KEY=VALUE, got '" << item << "'");
    const std::string key = item.substr(0, eq), text = item.substr(eq + 1);
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(text.c_str(), &end);
    SG_CHECK(end == text.c_str() + text.size() && errno == 0 && std::isfinite(value),
             "--neuron-opt: the value of '" << key << "' must be a finite number, got '" << text << "'");
    SG_CHECK(out.emplace(key, value).second, "--neuron-opt: '" << key << "' is given twice");
  }
  return out;
}

void check_neuron_settings(const RunConfig& c) {
  const NeuronType* type = nullptr;
  try {
    type = &find_neuron(c.neuron);
  } catch (const Error& e) {
    SG_FAIL("--neuron: " << e.what());
  }
  const NeuronType& t = *type;
  complete_neuron_options({c.neuron, c.neuron_opt}, "--neuron-opt");
  // The shared settings a neuron does not take: a value other than the default would be ignored.
  const RunConfig defaults;
  std::string own;
  for (const NeuronOptionSpec& o : t.options) own += (own.empty() ? "" : ", ") + o.key;
  own = own.empty() ? "" : " (its own options, for --neuron-opt: " + own + ")";
  SG_CHECK(t.takes_threshold || c.threshold == defaults.threshold,
           "--threshold " << c.threshold << ": --neuron " << c.neuron << " sets its own threshold" << own);
  SG_CHECK(t.takes_reset || c.reset == defaults.reset,
           "--reset " << c.reset << ": --neuron " << c.neuron << " sets its own reset" << own);
  SG_CHECK(t.takes_decay || c.decay == defaults.decay,
           "--decay " << c.decay << ": --neuron " << c.neuron << " does not take it (it is lif's leak)" << own);
  // Checked with the neuron, so that eval/attack see the checkpoint's neuron (validate() after config_for_checkpoint).
  SG_CHECK(c.attack_grad != "rga" || neuron_has_rga_tau(c.neuron),
           "--attack-grad rga: the rate-gradient approximation needs the neuron's leak τ, which lif and if have and --neuron "
               << c.neuron << " does not; use bptt or an ANN mode");
}

void add_common_options(CLI::App* app, RunConfig& c) {
  std::string names;
  for (const std::string& n : known_dataset_names()) names += (names.empty() ? "" : " | ") + n;
  if (app->get_name() == "train") {
    app->add_option("--dataset", c.dataset, names)->check(CLI::IsMember(known_dataset_names()))->capture_default_str();
    add_dataset_options(app, c);
  } else {
    // eval/attack score a checkpoint on the dataset it was trained on: empty means the checkpoint's, and
    // another one is an error (config_for_checkpoint), not silently ignored.
    c.dataset.clear();
    app->add_option("--dataset", c.dataset,
                    "must match the checkpoint's dataset (default: the checkpoint's; --data-dir reads another copy)")
        ->check(CLI::IsMember(known_dataset_names()));
  }
  add_data_location_options(app, c);
  std::string data_dirs;  // the real defaults, from the dataset registry
  for (const std::string& name : known_dataset_names())
    data_dirs += (data_dirs.empty() ? "" : ", ") + default_dataset_dir(name) + " for " + name;
  app->add_option("--data-dir", c.data_dir, "dataset folder (default: " + data_dirs + "; relative to the working directory)");
  app->add_option("--device", c.device, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}))->capture_default_str();
  add_integer_option<uint64_t>(app, "--seed", c.seed, "seed of every random draw", 0);
  add_integer_option<int64_t>(app, "--test-subset", c.test_subset, "score only the first N test examples (0: all)", 0,
                              std::numeric_limits<int64_t>::max(), false);
  add_integer_option<int64_t>(app, "--eval-batch", c.eval_batch, "batch size for evaluation", 1);
  app->add_flag("--progress,!--no-progress", c.progress,
                std::string("progress bar on a terminal (default: ") + (c.progress ? "on" : "off") + ")");
}

void add_train_options(CLI::App* app, RunConfig& c) {
  add_common_options(app, c);
  add_eval_options(app, c, false);
  add_integer_option<int64_t>(app, "--val-size", c.val_size, "examples held out of the training set for model selection", 0);
  app->add_flag("--select-on-test", c.select_on_test, "pick the best epoch on TEST accuracy, as the released code does (marked in the report)");
  add_integer_option<int64_t>(app, "--train-subset", c.train_subset, "train on the first N training examples (0: all)", 0,
                              std::numeric_limits<int64_t>::max(), false);
  app->add_option("--augment", c.augment, "auto | on | off")->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str();
  app->add_option("--model", c.model,
                  "vggsnn | vgg11 | vgg11_rat | alexnet | small_cnn | spiking_resnet18/34/50 | sew_resnet18/34/50 | "
                  "resnet19 | wrn16_4")
      ->capture_default_str();
  add_integer_option<int64_t>(app, "--T,--time-steps", c.time_steps, "time steps", 1);
  add_neuron_options(app, c);
  add_real_option(app, "--threshold", c.threshold, "firing threshold", Bound::open, 0);
  add_real_option(app, "--decay", c.decay, "LIF decay factor (h = decay*v + I)", Bound::closed, 0, 1);
  app->add_option("--reset", c.reset, "hard | soft")->check(CLI::IsMember({"hard", "soft"}))->capture_default_str();
  app->add_flag("--detach-reset", c.detach_reset, "no gradient through the reset");
  app->add_option("--surrogate", c.surrogate, "triangle | sigmoid | atan | rectangle")
      ->check(CLI::IsMember({"triangle", "sigmoid", "atan", "rectangle"}))->capture_default_str();
  add_real_option(app, "--surrogate-alpha", c.surrogate_alpha, "triangle gamma, sigmoid/atan alpha, rectangle width",
                  Bound::open, 0);
  app->add_flag("--memory-savers,!--no-memory-savers", c.memory_savers,
                std::string("fused BN + neuron with recomputation, and spike inputs kept as bytes for backward (same "
                            "results, less memory; default: ") +
                    (c.memory_savers ? "on" : "off") + ")");
  app->add_option("--conv", c.conv, "CUDA convolution: cudnn (fp32, deterministic) | ours (hand-written implicit GEMM)")
      ->check(CLI::IsMember({"cudnn", "ours"}))
      ->capture_default_str();
  app->add_flag("--tf32", c.tf32, "TF32 tensor cores in the convolutions (needs --conv ours; ~1e-3 relative error)");
  app->add_option("--cpu-conv", c.cpu_conv,
                  "CPU convolution: auto (spike inputs at <= 25% density skip their zeros where that measured "
                  "faster) | dense (always oneDNN / im2col + Eigen); the two agree to float rounding")
      ->check(CLI::IsMember({"auto", "dense"}))
      ->capture_default_str();
  add_encoding_options(app, c);
  app->add_option("--resnet-width", c.resnet_width,
                  "Spiking-/SEW-ResNet: stage widths w, 2w, 4w, 8w (64: the standard networks; smaller for CPU runs)")
      ->check(CLI::Range(int64_t(1), int64_t(4096)))
      ->capture_default_str();
  app->add_option("--width-div", c.width_div,
                  "vggsnn/vgg11/vgg11_rat/alexnet/small_cnn: every conv and hidden-layer width divided by N, rounded up "
                  "(the same architecture, narrower; CPU-scale runs)")
      ->check(CLI::Range(int64_t(1), int64_t(4096)))
      ->capture_default_str();
  app->add_option("--loss", c.loss, "ce | tet")->check(CLI::IsMember({"ce", "tet"}))->capture_default_str();
  add_real_option(app, "--tet-lambda", c.tet_lambda, "TET's lambda", Bound::closed, 0, 1);
  add_real_option(app, "--tet-phi", c.tet_phi, "TET's phi (MSE target)");
  add_real_option(app, "--mi-lambda", c.mi_lambda, "weight of the TMI term I(X;Z) (0: off)", Bound::closed, 0);
  app->add_option("--mi-x", c.mi_x, "tap for X (default: the first spiking layer)");
  app->add_option("--mi-z", c.mi_z, "tap for Z (default: the last convolutional spiking layer; not with --mi-taps shallow)");
  add_mi_estimator_options(app, c);
  add_real_option(app, "--entropy-weight", c.entropy_weight, "weight of the output-entropy regulariser", Bound::closed, 0);
  app->add_option("--entropy-sign", c.entropy_sign, "+1 or -1: loss += sign*weight*H")->check(CLI::IsMember({-1.0, 1.0}))->capture_default_str();
  app->add_option("--optimizer", c.optimizer, "adam | adamw | sgd")->check(CLI::IsMember({"adam", "adamw", "sgd"}))->capture_default_str();
  add_real_option(app, "--lr", c.lr, "initial learning rate", Bound::open, 0);
  add_real_option(app, "--momentum", c.momentum, "SGD momentum", Bound::closed, 0, 1);
  add_real_option(app, "--weight-decay", c.weight_decay, "weight decay", Bound::closed, 0);
  app->add_flag("--nesterov", c.nesterov, "SGD Nesterov momentum");
  app->add_option("--schedule", c.schedule, "cosine | step | none")->check(CLI::IsMember({"cosine", "step", "none"}))->capture_default_str();
  add_integer_option<int64_t>(app, "--step-size", c.step_size, "step schedule: epochs per decay", 1);
  add_real_option(app, "--gamma", c.gamma, "step schedule: decay factor", Bound::open, 0);
  add_real_option(app, "--grad-clip", c.grad_clip, "clip the global gradient norm (0: off)", Bound::closed, 0);
  app->add_option("--adv", c.adv, "adversarial training (SNN-RAT): none | fgsm | pgd; each minibatch is crafted with BN in eval mode")
      ->check(CLI::IsMember({"none", "fgsm", "pgd"}))
      ->capture_default_str();
  app->add_option("--adv-eps", c.adv_eps, "adversarial training: epsilon, e.g. 2/255")->capture_default_str();
  app->add_option("--adv-alpha", c.adv_alpha, "adversarial training: PGD step size")->capture_default_str();
  add_integer_option<int64_t>(app, "--adv-steps", c.adv_steps, "adversarial training: PGD steps", 1,
                              std::numeric_limits<int32_t>::max());
  app->add_flag("--adv-random-start,!--no-adv-random-start", c.adv_random_start,
                std::string("adversarial training: PGD starts at a uniform point of the eps-ball (default: ") +
                    (c.adv_random_start ? "on" : "off") + ")");
  add_real_option(app, "--adv-mix", c.adv_mix,
                  "adversarial training: loss = (1-m)*L(adversarial) + m*L(clean); 0: adversarial only, as RAT",
                  Bound::closed, 0, 1);
  add_real_option(app, "--retraction-beta", c.retraction_beta,
                  "orthogonal retraction W <- (1+b)W - b*W*W^T*W after every optimizer step (0: off; default "
                  "5e-4 with --adv, 0 without)",
                  Bound::closed, 0, 1)
      ->default_str("auto");
  add_integer_option<int64_t>(app, "--epochs", c.epochs, "epochs", 1);
  add_integer_option<int64_t>(app, "--track-robustness", c.track_robustness,
                              "after every epoch: KDE MI(X;Z) on the first N test examples and FGSM robust accuracy "
                              "at --eps on them, as metrics.csv's test_mi_bits and robust_acc (0: off)",
                              0);
  add_integer_option<int64_t>(app, "--batch", c.batch, "batch size", 1);
  app->add_option("--runs-dir", c.runs_dir, "parent folder of run folders")->capture_default_str();
  app->add_option("--name", c.name, "run folder name (default <model>-<dataset>-<loss>)");
  app->add_flag("--resume", c.resume, "continue the run in runs/<name> from its last checkpoint");
  app->add_flag("--sync-bn,!--no-sync-bn", c.sync_bn,
                "under mpirun: batch-norm statistics over every rank's examples, so N ranks with --batch B compute "
                "what one process with B computes (default: off, per-rank statistics as PyTorch DDP)");
  add_real_option(app, "--collective-timeout", c.collective_timeout,
                  "under mpirun: seconds a rank waits for the others in a collective before the job stops with an "
                  "error (longer than rank 0's per-epoch evaluation)",
                  Bound::open, 0)
      ->capture_default_str();
}

void add_eval_options(CLI::App* app, RunConfig& c, bool sweep) {
  add_integer_option<int64_t>(app, "--attack-subset", c.attack_subset, "attack the first N test examples (0: all)", 0);
  app->add_option("--eps", c.eps, sweep ? "comma-separated epsilons, e.g. 0,2/255,4/255,8/255" : "attack epsilon, e.g. 4/255")
      ->capture_default_str();
  app->add_option("--alpha", c.alpha, "PGD/BIM step size: a fraction (1/255) or eps/N, per epsilon of the sweep")
      ->capture_default_str();
  // The attacks count steps in an int.
  add_integer_option<int64_t>(app, "--steps", c.steps, "PGD/BIM steps", 1, std::numeric_limits<int32_t>::max());
  app->add_option("--gn-std", c.gn_std, "Gaussian-noise std (default: eps)");
  app->add_option("--attack-grad,--grad", c.attack_grad,
                  "attack gradients: bptt (surrogate BPTT) | rga (rate gradient) | ann-relu | ann-qcfs (craft on the "
                  "same weights run as a one-step ReLU/QCFS network; accuracy is still the SNN's)")
      ->check(CLI::IsMember({"bptt", "rga", "ann-relu", "ann-qcfs"}))
      ->capture_default_str();
  add_attack_domain_option(app, c);
  app->add_option("--attacks", c.attacks,
                  "comma-separated: fgsm, pgd, bim, gn, apgd-ce, apgd-t, fab-t, square, autoattack (the standard "
                  "ensemble), cw (L2); none: only clean accuracy")
      ->capture_default_str();
  app->add_option("--attack-loss", c.attack_loss, "FGSM/PGD/BIM loss: ce | cw (the CW margin)")
      ->check(CLI::IsMember({"ce", "cw"}))
      ->capture_default_str();
  const int32_t int_max = std::numeric_limits<int32_t>::max();
  add_integer_option<int64_t>(app, "--apgd-iterations", c.apgd_iterations, "APGD iterations (AutoAttack: 100)", 1, int_max);
  add_integer_option<int64_t>(app, "--fab-iterations", c.fab_iterations, "FAB iterations (AutoAttack: 100)", 1, int_max);
  add_integer_option<int64_t>(app, "--square-queries", c.square_queries, "Square queries per example (AutoAttack: 5000)",
                              1, int_max);
  add_integer_option<int64_t>(app, "--target-classes", c.target_classes,
                              "APGD-T / FAB-T: attack towards the classes ranked 2..N+1 (AutoAttack: 9)", 1, int_max);
  add_real_option(app, "--cw-c", c.cw_c, "CW-L2: weight of the margin term", Bound::open, 0);
  add_real_option(app, "--cw-kappa", c.cw_kappa, "CW-L2: confidence", Bound::closed, 0);
  add_integer_option<int64_t>(app, "--cw-steps", c.cw_steps, "CW-L2: Adam steps", 1, int_max);
  add_real_option(app, "--cw-lr", c.cw_lr, "CW-L2: Adam learning rate", Bound::open, 0);
  app->add_flag("--obfuscation-checks,!--no-obfuscation-checks", c.obfuscation_checks,
                std::string("the gradient-obfuscation checklist under the attack table (six extra attacks on 200 "
                            "examples; default: ") +
                    (c.obfuscation_checks ? "on" : "off") + ")");
}

void validate(const RunConfig& c) {
  check_mi_settings(c);
  check_neuron_settings(c);
  check_encoding_settings(c);
  check_dataset_settings(c);
  parse_fraction_list(c.eps, "--eps");
  alpha_at(c.alpha, 1.0);
  if (!c.gn_std.empty()) parse_fraction(c.gn_std, "--gn-std");
  SG_CHECK(c.time_steps >= 1, "--T: must be >= 1, got " << c.time_steps);
  SG_CHECK(c.batch >= 1, "--batch: must be >= 1, got " << c.batch);
  SG_CHECK(c.adv == "none" || c.adv == "fgsm" || c.adv == "pgd", "--adv must be none, fgsm or pgd, got '" << c.adv << "'");
  const double adv_eps = parse_fraction(c.adv_eps, "--adv-eps");
  SG_CHECK(std::isfinite(adv_eps) && adv_eps <= 1,
           "--adv-eps must be in [0, 1] (pixel units of [0,1] images, e.g. 2/255), got " << c.adv_eps);
  const double adv_alpha = parse_fraction(c.adv_alpha, "--adv-alpha");
  SG_CHECK(std::isfinite(adv_alpha) && adv_alpha > 0, "--adv-alpha must be finite and > 0, got " << c.adv_alpha);
  SG_CHECK(c.adv_steps >= 1 && c.adv_steps <= std::numeric_limits<int32_t>::max(),
           "--adv-steps must be in [1, " << std::numeric_limits<int32_t>::max() << "], got " << c.adv_steps);
  SG_CHECK(std::isfinite(c.adv_mix) && c.adv_mix >= 0 && c.adv_mix <= 1, "--adv-mix must be in [0, 1], got " << c.adv_mix);
  SG_CHECK(std::isfinite(c.retraction_beta) && (c.retraction_beta == -1 || (c.retraction_beta >= 0 && c.retraction_beta <= 1)),
           "--retraction-beta must be in [0, 1] (or -1: auto), got " << c.retraction_beta);
  SG_CHECK(c.val_size > 0 || c.select_on_test,
           "--val-size 0 leaves nothing to select the best epoch on; give a validation size or pass --select-on-test");
}

void check_adversarial_training(const RunConfig& c) {
  SG_CHECK(c.adv_mix == 0 || c.adv != "none", "--adv-mix " << c.adv_mix << " needs --adv fgsm or pgd (there is no adversarial batch to mix)");
}

void resolve_training_defaults(RunConfig& c) {
  if (c.retraction_beta == -1) c.retraction_beta = c.adv == "none" ? 0.0 : 5e-4;  // [RAT] --beta default
}

void check_attack_settings(const RunConfig& c) {
  const char* range = "(pixel units of [0,1] images, e.g. 8/255 = 0.0314; a value above 1 is usually one in 0..255 units)";
  size_t start = 0;
  while (start <= c.eps.size()) {
    const size_t comma = c.eps.find(',', start);
    const std::string item = c.eps.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const double v = parse_fraction(item, "--eps");
    SG_CHECK(std::isfinite(v) && v <= 1, "--eps must be in [0, 1] " << range << ", got " << item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  const double alpha = alpha_at(c.alpha, 1.0);  // eps/N: N checked here; a fraction: its value
  SG_CHECK(std::isfinite(alpha) && alpha > 0, "--alpha must be finite and > 0 (a fraction or eps/N), got " << c.alpha);
  parse_attack_list(c.attacks);
  SG_CHECK(c.attack_loss == "ce" || c.attack_loss == "cw", "--attack-loss must be ce or cw, got '" << c.attack_loss << "'");
  if (!c.gn_std.empty()) {
    const double s = parse_fraction(c.gn_std, "--gn-std");
    SG_CHECK(std::isfinite(s) && s <= 1, "--gn-std must be in [0, 1] " << range << ", got " << c.gn_std);
  }
  SG_CHECK(c.steps >= 1 && c.steps <= std::numeric_limits<int32_t>::max(),
           "--steps must be in [1, " << std::numeric_limits<int32_t>::max() << "], got " << c.steps);
  SG_CHECK(c.attack_grad == "bptt" || c.attack_grad == "rga" || c.attack_grad == "ann-relu" || c.attack_grad == "ann-qcfs",
           "--attack-grad must be bptt, rga, ann-relu or ann-qcfs, got '" << c.attack_grad << "'");
  parse_attack_domain(c.attack_domain);  // the value; the rules with the encoding are check_encoding_settings's
}

void check_output_file(const std::string& path, const std::string& flag) {
  namespace fs = std::filesystem;
  SG_CHECK(!path.empty(), flag << ": empty path");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  SG_CHECK(!fs::is_directory(st), flag << " '" << path << "' is a directory; give a file path inside it");
  SG_CHECK(!fs::exists(st) || fs::is_regular_file(st),
           flag << " '" << path << "' exists and is not a regular file; give a file path");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const fs::file_status ds = fs::status(dir, ec);
  SG_CHECK(fs::exists(ds), flag << " '" << path << "': the folder '" << dir.string() << "' does not exist");
  SG_CHECK(fs::is_directory(ds), flag << " '" << path << "': '" << dir.string() << "' is not a folder");
  // The writer creates a temporary file beside the output and renames it: probe exactly that.
  static std::atomic<unsigned> counter{0};
  const fs::path probe = dir / (".spikegrad-write-probe-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  SG_CHECK(fd >= 0, flag << " '" << path << "': cannot create a file in the folder '" << dir.string() << "' ("
                         << std::strerror(errno) << ")");
  ::close(fd);
  ::unlink(probe.c_str());
}

void validate_before_training(const RunConfig& c, const std::string& config_file) {
  namespace fs = std::filesystem;
  validate(c);
  check_outputs_differ_from_inputs(c, config_file);
  check_attack_settings(c);
  if (!c.save_adv.empty()) check_output_file(c.save_adv, "--save-adv");
  if (!c.save_logits.empty()) check_output_file(c.save_logits, "--save-logits");
  std::error_code ec;
  const fs::file_status rs = fs::status(c.runs_dir.empty() ? "." : c.runs_dir, ec);
  SG_CHECK(!fs::exists(rs) || fs::is_directory(rs), "--runs-dir '" << c.runs_dir << "' exists and is not a folder");
}

void validate_before_evaluation(const RunConfig& flags, const std::string& config_file) {
  check_outputs_differ_from_inputs(flags, config_file);
  check_attack_settings(flags);
  if (!flags.save_adv.empty()) check_output_file(flags.save_adv, "--save-adv");
  if (!flags.save_logits.empty()) check_output_file(flags.save_logits, "--save-logits");
}

std::string flag_for_key(const std::string& key) {
  std::string flag = "--" + key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

RunConfig config_for_resume(const RunConfig& recorded, const RunConfig& asked, const GivenSettings& given,
                            const std::string& checkpoint_path) {
  // Where and how the run goes on, never what it computes. `resume` and `name` agree by construction;
  // `epochs` has its own rule below.
  static const std::set<std::string> may_differ = {"device",         "progress",      "data_dir",  "runs_dir", "name",
                                                   "resume",         "epochs",        "decode_threads",
                                                   "dvs_cache_dir",  "val_labels",    "collective_timeout"};
  const nlohmann::json was = recorded.to_json(), now = asked.to_json();
  auto shown = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  std::string differences;
  for (const auto& [key, value] : was.items()) {
    if (may_differ.count(key) || !given.has(key) || now.at(key) == value) continue;
    differences += std::string(differences.empty() ? "" : "; ") + flag_for_key(key) + " " + shown(now.at(key)) +
                   " differs from the run's " + (shown(value).empty() ? "(empty)" : shown(value));
  }
  SG_CHECK(differences.empty(),
           "--resume continues the run recorded in " << checkpoint_path << " as it was started: " << differences
               << ". Only --epochs (to extend it), --device, --progress, --data-dir, --runs-dir, --decode-threads, "
                  "--dvs-cache-dir, --val-labels may change (and --collective-timeout and the number of MPI ranks); drop the "
                  "other flags, or start a new run with --name");
  RunConfig c = recorded;
  if (given.has("epochs")) {
    SG_CHECK(asked.epochs >= recorded.epochs,
             "--resume: --epochs " << asked.epochs << " is fewer than the run's " << recorded.epochs
                                   << " (a run can be extended, not shortened)");
    c.epochs = asked.epochs;
  }
  // Not given: as recorded (a run started on the CPU does not move to a GPU because the default is auto).
  if (given.has("device")) c.device = asked.device;
  if (given.has("progress")) c.progress = asked.progress;
  if (given.has("data_dir")) c.data_dir = asked.data_dir;
  if (given.has("decode_threads")) c.decode_threads = asked.decode_threads;
  if (given.has("dvs_cache_dir")) c.dvs_cache_dir = asked.dvs_cache_dir;
  if (given.has("val_labels")) c.val_labels = asked.val_labels;
  if (given.has("collective_timeout")) c.collective_timeout = asked.collective_timeout;
  c.runs_dir = asked.runs_dir;  // the folder was found through these two

  c.name = asked.name;
  c.resume = true;
  return c;
}

void check_outputs_differ_from_inputs(const RunConfig& c, const std::string& config_file) {
  namespace fs = std::filesystem;
  const std::pair<const char*, const std::string*> inputs[] = {
      {"--checkpoint", &c.checkpoint}, {"--source-checkpoint", &c.source_checkpoint}, {"--config", &config_file}};
  const std::pair<const char*, const std::string*> outputs[] = {{"--save-adv", &c.save_adv}, {"--save-logits", &c.save_logits}};
  auto canonical = [](const std::string& p) {
    std::error_code ec;
    fs::path r = fs::weakly_canonical(fs::absolute(p, ec), ec);
    return ec ? fs::absolute(p).lexically_normal() : r;
  };
  for (const auto& [out_flag, out] : outputs) {
    if (out->empty()) continue;
    for (const auto& [in_flag, in] : inputs) {
      if (in->empty()) continue;
      std::error_code ec;
      const bool same = canonical(*out) == canonical(*in) || fs::equivalent(*out, *in, ec);
      if (same)
        throw Error(std::string(out_flag) + " '" + *out + "' is the same file as " + in_flag + " '" + *in +
                    "': writing it would destroy the input; choose another output path");
    }
  }
}

}  // namespace spikegrad::app
