// apps/obfuscation.h (issue 12, item 4): the gradient-obfuscation checklist passes on a working classifier
// and flags a model whose gradients are useless (a model with all weights zero: constant logits, zero input
// gradients, no attack can move it), naming the failed checks with their numbers.
#include "attack_test_util.h"
#include "apps/obfuscation.h"

#include <map>

namespace spikegrad {
namespace {
using namespace attack_test;

// The synthetic batch as a uint8 dataset (the loader's form).
Dataset as_dataset(const attack_test::Batch& b) {
  Dataset d;
  const std::vector<float> x = b.images.to_vector<float>();
  std::vector<uint8_t> u(x.size());
  for (size_t i = 0; i < x.size(); ++i) u[i] = uint8_t(std::lround(std::clamp(x[i], 0.f, 1.f) * 255.f));
  d.images = Tensor::from_vector<uint8_t>(u, b.images.shape());
  d.labels = b.labels;
  d.num_classes = kClasses;
  return d;
}

app::RunConfig sweep_config() {
  app::RunConfig c;
  c.eps = "0,8/255,16/255";
  c.attacks = "fgsm,pgd";
  c.attack_subset = 24;
  c.eval_batch = 12;
  c.progress = false;
  return c;
}

std::map<std::string, app::ObfuscationCheck> by_name(const std::vector<app::ObfuscationCheck>& checks) {
  std::map<std::string, app::ObfuscationCheck> m;
  for (const auto& k : checks) m[k.name] = k;
  return m;
}

std::vector<app::AttackRow> sweep(Model& model, const Dataset& d, const app::RunConfig& c) {
  std::vector<app::SweepAttack> attacks;
  for (double eps : app::parse_fraction_list(c.eps, "--eps"))
    for (const app::SweepAttack& a : app::report_attacks(c, eps)) attacks.push_back(a);
  return app::attack_table(model, d, attacks, c.attack_subset, c.eval_batch, c.seed, nullptr);
}

TEST(Obfuscation, AWorkingClassifierPassesEveryCheck) {
  Model& model = trained_model();
  const Dataset d = as_dataset(synthetic_batch(24, 808));
  const app::RunConfig c = sweep_config();
  const auto checks = app::obfuscation_checks(model, d, c, sweep(model, d, c), {});
  const auto m = by_name(checks);
  for (const char* name : {"eps = 0 equals clean", "monotone in eps", "more steps", "unbounded", "zero gradients",
                           "BPTT vs RGA", "BPTT vs ANN-ReLU", "BPTT vs ANN-QCFS"}) {
    ASSERT_EQ(m.count(name), 1u) << name;
    EXPECT_TRUE(m.at(name).pass) << name << ": " << m.at(name).detail;
  }
  EXPECT_NE(app::format_checks(checks).find("verdict: no sign of gradient obfuscation"), std::string::npos);
}

TEST(Obfuscation, AModelWithUselessGradientsIsFlagged) {
  auto flat = make_model("small_cnn", tiny_config());
  for (NamedTensor p : flat->parameters()) p.tensor.copy_from(Tensor::zeros(p.tensor.shape()));
  attack_test::Batch b = synthetic_batch(24, 809);
  b.labels = Tensor::zeros({24}, DType::I32);  // constant logits predict class 0 (first index): all "correct"
  const Dataset d = as_dataset(b);
  const app::RunConfig c = sweep_config();
  const auto checks = app::obfuscation_checks(*flat, d, c, sweep(*flat, d, c), {});
  const auto m = by_name(checks);
  EXPECT_TRUE(m.at("eps = 0 equals clean").pass);
  EXPECT_FALSE(m.at("unbounded").pass) << m.at("unbounded").detail;
  EXPECT_NE(m.at("unbounded").detail.find("100.00%"), std::string::npos) << m.at("unbounded").detail;
  EXPECT_FALSE(m.at("zero gradients").pass) << m.at("zero gradients").detail;
  const std::string text = app::format_checks(checks);
  EXPECT_NE(text.find("**POSSIBLY OBFUSCATED** (unbounded, zero gradients)"), std::string::npos) << text;
}

// AutoAttack's Square stage breaking what its three gradient stages could not is the black-box sign of weak
// gradients (measured on the demo model: 67.0% after FAB-T, 49.7% after Square at 4/255).
TEST(Obfuscation, SquareBreakingWhatAutoAttacksGradientStagesMissedIsFlagged) {
  Model& model = trained_model();
  const Dataset d = as_dataset(synthetic_batch(24, 810));
  const app::RunConfig c = sweep_config();
  auto stage = [](const char* name, int64_t robust) {
    app::AttackRow r;
    r.attack = std::string("autoattack: after ") + name;
    r.eps = 8.0 / 255;
    r.result.total = 1000;
    r.result.clean_correct = 900;
    r.result.adv_correct = robust;
    return r;
  };
  std::vector<app::AttackRow> rows = sweep(model, d, c);
  rows.push_back(stage("apgd-ce", 690));
  rows.push_back(stage("fab-t", 670));
  rows.push_back(stage("square", 497));
  auto m = by_name(app::obfuscation_checks(model, d, c, rows, {}));
  ASSERT_EQ(m.count("black-box inside AutoAttack"), 1u);
  EXPECT_FALSE(m.at("black-box inside AutoAttack").pass);
  EXPECT_NE(m.at("black-box inside AutoAttack").detail.find("gradient stages 67.00%, after Square 49.70%"),
            std::string::npos)
      << m.at("black-box inside AutoAttack").detail;

  rows.back() = stage("square", 665);  // half a point: what a model with useful gradients looks like
  m = by_name(app::obfuscation_checks(model, d, c, rows, {}));
  EXPECT_TRUE(m.at("black-box inside AutoAttack").pass) << m.at("black-box inside AutoAttack").detail;
}

}  // namespace
}  // namespace spikegrad
