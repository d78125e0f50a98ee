// spikegrad: train | eval | attack. Errors become one line on stderr and exit code 2.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "apps/commands.h"
#include "apps/train.h"
#include "engine/check.h"

int main(int argc, char** argv) {
  using namespace spikegrad::app;
  CLI::App app{"spikegrad: spiking neural networks, TMI training and adversarial evaluation"};
  app.set_config("--config", "", "TOML file with [train] / [eval] / [attack] sections");
  app.require_subcommand(1);
  RunConfig train_cfg, eval_cfg, attack_cfg;
  CLI::App* train = app.add_subcommand("train", "train a model; writes runs/<name>/");
  add_train_options(train, train_cfg);
  CLI::App* eval = app.add_subcommand("eval", "clean and attacked accuracy of a checkpoint");
  add_common_options(eval, eval_cfg);
  add_eval_options(eval, eval_cfg, false);
  eval->add_option("--checkpoint", eval_cfg.checkpoint, "checkpoint file")->required();
  eval->add_option("--save-logits", eval_cfg.save_logits, "write per-example mean logits (safetensors)");
  CLI::App* attack = app.add_subcommand("attack", "epsilon sweep of FGSM, PGD, BIM and GN on a checkpoint");
  add_common_options(attack, attack_cfg);
  add_eval_options(attack, attack_cfg, true);
  attack->add_option("--checkpoint", attack_cfg.checkpoint, "checkpoint file")->required();
  attack->add_option("--save-adv", attack_cfg.save_adv, "write the adversarial inputs (safetensors)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (*train) std::printf("run folder: %s\n", run_train(train_cfg).c_str());
    else if (*eval) run_eval(eval_cfg);
    else if (*attack) run_attack(attack_cfg);
  } catch (const spikegrad::Error& e) {
    std::fprintf(stderr, "spikegrad: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spikegrad: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
