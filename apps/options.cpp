#include "apps/options.h"

#include <CLI/CLI.hpp>

#include "engine/check.h"

namespace spikegrad::app {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    RunConfig, dataset, data_dir, val_size, select_on_test, train_subset, test_subset, augment, model, time_steps, neuron,
    threshold, decay, reset, detach_reset, surrogate, surrogate_alpha, memory_savers, conv, tf32, loss, tet_lambda, tet_phi, mi_lambda, mi_x, mi_z,
    entropy_weight, entropy_sign, optimizer, lr, momentum, weight_decay, nesterov, schedule, step_size, gamma, grad_clip,
    epochs, batch, seed, device, runs_dir, name, resume, progress, checkpoint, attack_subset, eps, alpha, steps, gn_std,
    attack_grad, save_logits, save_adv, eval_batch)

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

void add_common_options(CLI::App* app, RunConfig& c) {
  app->add_option("--dataset", c.dataset, "fashion-mnist | mnist | cifar10 | cifar100")
      ->check(CLI::IsMember({"fashion-mnist", "mnist", "cifar10", "cifar100"}))
      ->capture_default_str();
  app->add_option("--data-dir", c.data_dir, "dataset folder (default: the dataset's standard location)");
  app->add_option("--device", c.device, "cpu | cuda | auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}))->capture_default_str();
  app->add_option("--seed", c.seed, "seed of every random draw")->capture_default_str();
  app->add_option("--test-subset", c.test_subset, "score only the first N test examples (0: all)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--eval-batch", c.eval_batch, "batch size for evaluation")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_flag("--progress,!--no-progress", c.progress, "progress bar on a terminal")->capture_default_str();
}

void add_train_options(CLI::App* app, RunConfig& c) {
  add_common_options(app, c);
  add_eval_options(app, c, false);
  app->add_option("--val-size", c.val_size, "examples held out of the training set for model selection")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_flag("--select-on-test", c.select_on_test, "pick the best epoch on TEST accuracy, as the released code does (marked in the report)");
  app->add_option("--train-subset", c.train_subset, "train on the first N training examples (0: all)")->check(CLI::NonNegativeNumber);
  app->add_option("--augment", c.augment, "auto | on | off")->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str();
  app->add_option("--model", c.model, "vggsnn | vgg11 | vgg11_rat | alexnet | small_cnn")->capture_default_str();
  app->add_option("--T,--time-steps", c.time_steps, "time steps")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--neuron", c.neuron, "lif | if")->check(CLI::IsMember({"lif", "if"}))->capture_default_str();
  app->add_option("--threshold", c.threshold, "firing threshold")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--decay", c.decay, "LIF decay factor (h = decay*v + I)")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app->add_option("--reset", c.reset, "hard | soft")->check(CLI::IsMember({"hard", "soft"}))->capture_default_str();
  app->add_flag("--detach-reset", c.detach_reset, "no gradient through the reset");
  app->add_option("--surrogate", c.surrogate, "triangle | sigmoid | atan | rectangle")
      ->check(CLI::IsMember({"triangle", "sigmoid", "atan", "rectangle"}))->capture_default_str();
  app->add_option("--surrogate-alpha", c.surrogate_alpha, "triangle gamma, sigmoid/atan alpha, rectangle width")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app->add_flag("--memory-savers,!--no-memory-savers", c.memory_savers,
                "fused BN + neuron with recomputation, and spike inputs kept as bytes for backward (same results, less memory)")
      ->capture_default_str();
  app->add_option("--conv", c.conv, "CUDA convolution: cudnn (fp32, deterministic) | ours (hand-written implicit GEMM)")
      ->check(CLI::IsMember({"cudnn", "ours"}))
      ->capture_default_str();
  app->add_flag("--tf32", c.tf32, "TF32 tensor cores in the convolutions (needs --conv ours; ~1e-3 relative error)");
  app->add_option("--loss", c.loss, "ce | tet")->check(CLI::IsMember({"ce", "tet"}))->capture_default_str();
  app->add_option("--tet-lambda", c.tet_lambda, "TET's lambda")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app->add_option("--tet-phi", c.tet_phi, "TET's phi (MSE target)")->capture_default_str();
  app->add_option("--mi-lambda", c.mi_lambda, "weight of the TMI term I(X;Z) (0: off)")->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--mi-x", c.mi_x, "tap for X (default: the first spiking layer)");
  app->add_option("--mi-z", c.mi_z, "tap for Z (default: the last convolutional spiking layer)");
  app->add_option("--entropy-weight", c.entropy_weight, "weight of the output-entropy regulariser")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--entropy-sign", c.entropy_sign, "+1 or -1: loss += sign*weight*H")->check(CLI::IsMember({-1.0, 1.0}))->capture_default_str();
  app->add_option("--optimizer", c.optimizer, "adam | adamw | sgd")->check(CLI::IsMember({"adam", "adamw", "sgd"}))->capture_default_str();
  app->add_option("--lr", c.lr, "initial learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--momentum", c.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app->add_option("--weight-decay", c.weight_decay, "weight decay")->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_flag("--nesterov", c.nesterov, "SGD Nesterov momentum");
  app->add_option("--schedule", c.schedule, "cosine | step | none")->check(CLI::IsMember({"cosine", "step", "none"}))->capture_default_str();
  app->add_option("--step-size", c.step_size, "step schedule: epochs per decay")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--gamma", c.gamma, "step schedule: decay factor")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--grad-clip", c.grad_clip, "clip the global gradient norm (0: off)")->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--epochs", c.epochs, "epochs")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--batch", c.batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--runs-dir", c.runs_dir, "parent folder of run folders")->capture_default_str();
  app->add_option("--name", c.name, "run folder name (default <model>-<dataset>-<loss>)");
  app->add_flag("--resume", c.resume, "continue the run in runs/<name> from its last checkpoint");
}

void add_eval_options(CLI::App* app, RunConfig& c, bool sweep) {
  app->add_option("--attack-subset", c.attack_subset, "attack the first N test examples (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--eps", c.eps, sweep ? "comma-separated epsilons, e.g. 0,2/255,4/255,8/255" : "attack epsilon, e.g. 4/255")
      ->capture_default_str();
  app->add_option("--alpha", c.alpha, "PGD/BIM step size")->capture_default_str();
  app->add_option("--steps", c.steps, "PGD/BIM steps")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--gn-std", c.gn_std, "Gaussian-noise std (default: eps)");
  app->add_option("--attack-grad,--grad", c.attack_grad, "attack gradients: bptt (surrogate BPTT) | rga")->check(CLI::IsMember({"bptt", "rga"}))->capture_default_str();
}

void validate(const RunConfig& c) {
  parse_fraction_list(c.eps, "--eps");
  parse_fraction(c.alpha, "--alpha");
  if (!c.gn_std.empty()) parse_fraction(c.gn_std, "--gn-std");
  SG_CHECK(c.time_steps >= 1, "--T: must be >= 1, got " << c.time_steps);
  SG_CHECK(c.batch >= 1, "--batch: must be >= 1, got " << c.batch);
  SG_CHECK(c.val_size > 0 || c.select_on_test,
           "--val-size 0 leaves nothing to select the best epoch on; give a validation size or pass --select-on-test");
}

}  // namespace spikegrad::app
