// apps/attack_sweep.h (issue 12, items 2, 3 and 7): --attacks selects any of fgsm, pgd, bim, gn, apgd-ce,
// apgd-t, fab-t, square, autoattack and cw; the PGD/BIM step follows each epsilon of a sweep (eps/4 by
// default) unless given; --save-adv names each tensor by attack and epsilon, and re-classifying a saved set
// gives the robust count the table reports; AutoAttack adds its cumulative stage rows and its diagnostics.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <unistd.h>

#include "apps/attack_sweep.h"
#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/evaluation.h"
#include "apps/train.h"
#include "attacks/evaluate.h"
#include "datasets/registry.h"
#include "engine/safetensors.h"
#include "models/model.h"
#include "support/op_cases.h"
#include "support/saved_adversarials.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

TEST(AttackSweep, ListsStepsAndNames) {
  EXPECT_EQ(app::parse_attack_list("pgd,autoattack,cw"), (std::vector<std::string>{"pgd", "autoattack", "cw"}));
  EXPECT_TRUE(app::parse_attack_list("none").empty());
  EXPECT_NE(error_of([] { app::parse_attack_list("pgd,apgd"); }).find("--attacks: unknown attack 'apgd'"), std::string::npos);
  EXPECT_NE(error_of([] { app::parse_attack_list("pgd,pgd"); }).find("listed twice"), std::string::npos);
  // eps/4: TMI's 1/255 at 4/255, and 2/255 at 8/255, where a fixed 1/255 × 4 steps cannot reach eps.
  EXPECT_DOUBLE_EQ(app::alpha_at("eps/4", 4.0 / 255), 1.0 / 255);
  EXPECT_DOUBLE_EQ(app::alpha_at("eps/4", 8.0 / 255), 2.0 / 255);
  EXPECT_DOUBLE_EQ(app::alpha_at("1/255", 8.0 / 255), 1.0 / 255);
  EXPECT_NE(error_of([] { app::alpha_at("eps/0", 0.1); }).find("eps/N needs N > 0"), std::string::npos);

  app::RunConfig c;
  c.attacks = "pgd,gn,apgd-t,cw";
  const std::vector<app::SweepAttack> a = app::report_attacks(c, 8.0 / 255);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(app::describe(a[0]), "eps 8/255, alpha 2/255, 4 steps, random start, ce loss, grad bptt");
  EXPECT_EQ(app::adversarial_name(a[0]), "pgd/eps=8/255");
  EXPECT_EQ(app::adversarial_name(a[1]), "gn/std=8/255");
  EXPECT_EQ(app::describe(a[2]), "eps 8/255, 100 APGD iterations, 9 target classes, grad bptt");
  EXPECT_EQ(a[2].ensemble.stages, (std::vector<std::string>{"apgd-t"}));
  EXPECT_EQ(app::adversarial_name(a[3]), "cw/c=1");
}

class AttackSweepRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = write_synthetic_dataset("spikegrad_attack_sweep_data", 160, 32);
    // (fresh_test_dir names the current test, which a suite's setup does not have)
    runs_ = fs::path(::testing::TempDir()) / ("spikegrad_attack_sweep_runs_" + std::to_string(::getpid()));
    fs::remove_all(runs_);
    app::RunConfig c = small_run_config(data_, runs_, 32, 16, 32);
    c.epochs = 1;
    checkpoint_ = (fs::path(app::run_train(c)) / "best.safetensors").string();
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(runs_, ec);
  }
  static fs::path data_, runs_;
  static std::string checkpoint_;
};
fs::path AttackSweepRun::data_, AttackSweepRun::runs_;
std::string AttackSweepRun::checkpoint_;

TEST_F(AttackSweepRun, EveryAttackRunsFromTheCommandAndItsSavedInputsReproduceTheTable) {
  app::RunConfig flags = small_run_config(data_, runs_, 32, 16, 32);
  flags.checkpoint = checkpoint_;
  flags.eps = "0,24/255";
  flags.attacks = "pgd,apgd-ce,apgd-t,fab-t,square,autoattack,cw";
  flags.apgd_iterations = 5;
  flags.fab_iterations = 5;
  flags.square_queries = 10;
  flags.target_classes = 2;
  flags.cw_steps = 5;
  flags.save_adv = (runs_ / "sweep_adv.safetensors").string();
  ::testing::internal::CaptureStdout();
  app::run_attack(flags);
  const std::string table = ::testing::internal::GetCapturedStdout();
  for (const char* s : {"| apgd-ce |", "| apgd-t |", "| fab-t |", "| square |", "| autoattack |", "| cw |",
                        "| autoattack: after apgd-ce |", "| autoattack: after square |",
                        "exactly equal top-2 clean logits"})
    EXPECT_NE(table.find(s), std::string::npos) << s << "\n" << table;

  const SafetensorsFile adv = load_safetensors(flags.save_adv);
  std::set<std::string> names;
  for (const auto& t : adv.tensors) names.insert(t.name);
  for (const char* n : {"pgd/eps=0/255", "pgd/eps=24/255", "apgd-ce/eps=24/255", "autoattack/eps=24/255", "cw/c=1", "labels"})
    EXPECT_EQ(names.count(n), 1u) << n;
  EXPECT_EQ(names.size(), 6u * 2u + 1u + 1u) << "6 attacks at 2 epsilons, cw once (an L2 attack), the labels";

  // Re-classify every saved set: the robust count of its table row.
  EXPECT_EQ(expect_saved_adversarials_reproduce_table(flags.save_adv, checkpoint_, 16), 13);
}

// --source-checkpoint (issue 12, item 3): each attack is also crafted on another model and evaluated on the
// attacked one. The source is the trained model with its classifier negated (it prefers what the target
// rejects): the saved transfer FGSM set must be exactly FGSM on the source, re-classifying every saved set
// with the target gives its table row, and a transfer attack must not beat the white-box one.
TEST_F(AttackSweepRun, TransferAttacksAreCraftedOnTheSourceAndCountedOnTheTarget) {
  const app::Checkpoint ck = app::read_checkpoint(checkpoint_);
  ModelConfig mc;  // small_run_config's model (as support/saved_adversarials.cpp)
  mc.time_steps = 2;
  mc.mean = {0.2860f, 0, 0};
  mc.std = {0.3530f, 1, 1};
  auto source = make_model("small_cnn", mc);
  app::restore_model(*source, ck);
  for (NamedTensor p : source->parameters())
    if (p.name.rfind("classifier.", 0) == 0) {
      NoGradGuard no_grad;
      Tape tape;
      p.tensor.copy_from(ops::scale(tape, p.tensor, -1.0));
    }
  const std::string source_path = (runs_ / "negated.safetensors").string();
  app::save_checkpoint(source_path, *source, nullptr, ck.config, ck.progress);

  app::RunConfig flags = small_run_config(data_, runs_, 32, 16, 32);
  flags.checkpoint = checkpoint_;
  flags.source_checkpoint = source_path;
  flags.eps = "16/255";
  flags.attacks = "fgsm,pgd";
  flags.save_adv = (runs_ / "transfer_adv.safetensors").string();
  ::testing::internal::CaptureStdout();
  app::run_attack(flags);
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("Transfer attacks, crafted on " + source_path), std::string::npos) << out;
  EXPECT_NE(out.find("pass: transfer"), std::string::npos) << out;

  const SafetensorsFile adv = load_safetensors(flags.save_adv);
  Tensor white, transfer;
  for (const auto& t : adv.tensors) {
    if (t.name == "fgsm/eps=16/255") white = t.tensor;
    if (t.name == "transfer/fgsm/eps=16/255") transfer = t.tensor;
  }
  ASSERT_TRUE(white.defined() && transfer.defined());
  const Dataset test = load_dataset("fashion-mnist", data_.string(), Split::Test);
  const std::vector<uint8_t> px = test.images.slice0(0, 16).to_vector<uint8_t>();
  std::vector<float> images(px.size());
  for (size_t i = 0; i < px.size(); ++i) images[i] = float(px[i]) / 255.0f;
  const Tensor x = Tensor::from_vector<float>(images, {16, 1, 28, 28});
  const Tensor y = test.labels.slice0(0, 16).clone();
  AttackConfig fgsm = tmi_default(AttackKind::fgsm);
  fgsm.eps = 16.0 / 255;
  EXPECT_EQ(transfer.to_vector<float>(), attack(*source, x, y, fgsm).to_vector<float>()) << "crafted on the source";
  EXPECT_NE(transfer.to_vector<float>(), white.to_vector<float>());
  EXPECT_EQ(expect_saved_adversarials_reproduce_table(flags.save_adv, checkpoint_, 16), 4);
}

}  // namespace
}  // namespace spikegrad::testing
