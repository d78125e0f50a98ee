// Issue 16, defects 4 and 10: every flag and output path is checked before anything runs (a bad --eps or
// --save-adv used to fail only after training or after the whole attack sweep), the splits of a run share
// one image shape, eval/attack refuse a --dataset other than the checkpoint's (it used to be ignored), and
// the attack sweep shows a progress display when --progress is on.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/evaluation.h"
#include "apps/options.h"
#include "apps/train.h"
#include "models/model.h"
#include "support/model_config.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

class EarlyValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("spikegrad_early_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  // Flags whose checkpoint and data do not exist: an error about anything but the flag under test means the
  // flag was checked too late (after the checkpoint would have been read, the data loaded, the sweep run).
  app::RunConfig flags() const {
    app::RunConfig f;
    f.checkpoint = (dir_ / "no-such-checkpoint.safetensors").string();
    f.data_dir = (dir_ / "no-such-data").string();
    f.device = "cpu";
    f.progress = false;
    f.dataset.clear();
    return f;
  }
  fs::path dir_;
};

TEST_F(EarlyValidation, AttackSettingsAreCheckedAgainstTheAttacksRanges) {
  app::RunConfig c;
  EXPECT_NO_THROW(app::check_attack_settings(c));
  c.eps = "0,2/255,4/255,8/255,1";
  EXPECT_NO_THROW(app::check_attack_settings(c));
  c.eps = "4/255,1e9";
  EXPECT_NE(error_of([&] { app::check_attack_settings(c); }).find("--eps must be in [0, 1]"), std::string::npos);
  EXPECT_NE(error_of([&] { app::check_attack_settings(c); }).find("got 1e9"), std::string::npos);
  c.eps = "8";
  EXPECT_NE(error_of([&] { app::check_attack_settings(c); }).find("--eps"), std::string::npos);
  c = app::RunConfig();
  c.alpha = "0";
  EXPECT_NE(error_of([&] { app::check_attack_settings(c); }).find("--alpha must be finite and > 0"), std::string::npos);
  c = app::RunConfig();
  c.gn_std = "2";
  EXPECT_NE(error_of([&] { app::check_attack_settings(c); }).find("--gn-std must be in [0, 1]"), std::string::npos);
  c = app::RunConfig();
  c.steps = 0;
  EXPECT_NE(error_of([&] { app::check_attack_settings(c); }).find("--steps"), std::string::npos);
  c = app::RunConfig();
  c.attack_grad = "exact";
  EXPECT_NE(error_of([&] { app::check_attack_settings(c); }).find("--attack-grad"), std::string::npos);
}

TEST_F(EarlyValidation, OutputPathsAreProbedBeforeAnythingRuns) {
  EXPECT_NO_THROW(app::check_output_file((dir_ / "adv.safetensors").string(), "--save-adv"));
  EXPECT_TRUE(fs::is_empty(dir_)) << "the write probe must leave nothing behind";
  const std::string missing = (dir_ / "missing" / "adv.safetensors").string();
  EXPECT_NE(error_of([&] { app::check_output_file(missing, "--save-adv"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { app::check_output_file(dir_.string(), "--save-adv"); }).find("is a directory"), std::string::npos);
  std::ofstream(dir_ / "file") << "x";
  EXPECT_NE(error_of([&] { app::check_output_file((dir_ / "file" / "adv").string(), "--save-logits"); }).find("is not a folder"),
            std::string::npos);
  // /proc takes no new files, not even from root.
  if (fs::is_directory("/proc/self"))
    EXPECT_NE(error_of([&] { app::check_output_file("/proc/spikegrad-adv.safetensors", "--save-adv"); }).find("cannot create a file"),
              std::string::npos);
  const fs::path ro = dir_ / "read-only";
  fs::create_directories(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(ro.c_str(), W_OK) != 0)  // root writes anywhere: the /proc case covers it
    EXPECT_NE(error_of([&] { app::check_output_file((ro / "adv").string(), "--save-adv"); }).find("--save-adv"), std::string::npos);
  fs::permissions(ro, fs::perms::owner_all);
}

TEST_F(EarlyValidation, ValidateBeforeTrainingChecksEveryFlagAndPath) {
  app::RunConfig c;
  c.runs_dir = (dir_ / "runs").string();
  EXPECT_NO_THROW(app::validate_before_training(c));
  c.eps = "1e9";
  EXPECT_NE(error_of([&] { app::validate_before_training(c); }).find("--eps"), std::string::npos);
  c = app::RunConfig();
  c.runs_dir = (dir_ / "runs").string();
  c.save_adv = (dir_ / "missing" / "adv.safetensors").string();
  EXPECT_NE(error_of([&] { app::validate_before_training(c); }).find("--save-adv"), std::string::npos);
  c.save_adv.clear();
  c.save_logits = dir_.string();
  EXPECT_NE(error_of([&] { app::validate_before_training(c); }).find("--save-logits"), std::string::npos);
  c.save_logits.clear();
  std::ofstream(dir_ / "runs-file") << "x";
  c.runs_dir = (dir_ / "runs-file").string();
  EXPECT_NE(error_of([&] { app::validate_before_training(c); }).find("--runs-dir"), std::string::npos);
  c = app::RunConfig();
  c.val_size = 0;  // validate()'s cross-field rules are part of it
  EXPECT_NE(error_of([&] { app::validate_before_training(c); }).find("--val-size"), std::string::npos);
}

// Before: the checkpoint was read (here: missing) and the data loaded before the flags were looked at;
// with a real checkpoint, a bad --save-adv failed only after the whole sweep.
TEST_F(EarlyValidation, EvalAndAttackCheckTheirFlagsBeforeReadingTheCheckpoint) {
  app::RunConfig f = flags();
  f.eps = "0,1e9";
  EXPECT_NE(error_of([&] { app::run_attack(f); }).find("--eps must be in [0, 1]"), std::string::npos);
  EXPECT_NE(error_of([&] { app::run_eval(f); }).find("--eps must be in [0, 1]"), std::string::npos);
  f = flags();
  f.save_adv = (dir_ / "missing" / "adv.safetensors").string();
  EXPECT_NE(error_of([&] { app::run_attack(f); }).find("--save-adv"), std::string::npos);
  f.save_adv = dir_.string();
  EXPECT_NE(error_of([&] { app::run_attack(f); }).find("is a directory"), std::string::npos);
  f = flags();
  f.save_logits = (dir_ / "missing" / "logits.safetensors").string();
  EXPECT_NE(error_of([&] { app::run_eval(f); }).find("--save-logits"), std::string::npos);
  // Good flags get as far as the checkpoint.
  f = flags();
  EXPECT_NE(error_of([&] { app::run_eval(f); }).find("no-such-checkpoint"), std::string::npos);
}

TEST_F(EarlyValidation, SplitsOfOneRunShareTheImageShape) {
  auto data = [](int64_t c, int64_t hw, int64_t n, int64_t classes) {
    Dataset d;
    d.images = Tensor::zeros({n, c, hw, hw}, DType::U8);
    d.labels = Tensor::zeros({n}, DType::I32);
    d.num_classes = classes;
    return d;
  };
  EXPECT_NO_THROW(app::check_splits_match(data(1, 28, 4, 10), data(1, 28, 2, 10), data(1, 28, 3, 10), "x"));
  EXPECT_NO_THROW(app::check_splits_match(data(1, 28, 4, 10), Dataset(), data(1, 28, 3, 10), "x"));  // --val-size 0
  const std::string msg =
      error_of([&] { app::check_splits_match(data(1, 28, 4, 10), data(1, 28, 2, 10), data(1, 32, 3, 10), "fashion-mnist in d"); });
  EXPECT_NE(msg.find("fashion-mnist in d: the test split holds 1x32x32 (CxHxW) images but the training split 1x28x28"),
            std::string::npos)
      << msg;
  EXPECT_NE(error_of([&] { app::check_splits_match(data(1, 28, 4, 10), Dataset(), data(3, 28, 3, 10), "x"); }).find("3x28x28"),
            std::string::npos);
  EXPECT_NE(error_of([&] { app::check_splits_match(data(1, 28, 4, 10), Dataset(), data(1, 28, 3, 100), "x"); }).find("classes"),
            std::string::npos);
}

// Defect 10: --dataset used to be listed by eval/attack and ignored (the checkpoint's dataset was scored
// regardless). Now it defaults to the checkpoint's and a different one is an error naming both.
TEST_F(EarlyValidation, EvalRefusesADatasetOtherThanTheCheckpoints) {
  app::RunConfig saved;
  saved.dataset = "cifar10";
  app::RunConfig f = flags();
  EXPECT_EQ(app::config_for_checkpoint(f, saved).dataset, "cifar10");
  f.dataset = "cifar10";
  EXPECT_EQ(app::config_for_checkpoint(f, saved).dataset, "cifar10");
  f.dataset = "mnist";
  const std::string msg = error_of([&] { app::config_for_checkpoint(f, saved); });
  EXPECT_NE(msg.find("--dataset mnist differs from the checkpoint's dataset (cifar10)"), std::string::npos) << msg;

  // On the command line the default is the checkpoint's (empty), not fashion-mnist.
  for (const char* command : {"eval", "attack"}) {
    app::CommandLine cl;
    const char* plain[] = {"spikegrad", command, "--checkpoint", "c.safetensors"};
    ASSERT_EQ(app::parse_command_line(4, plain, &cl), -1);
    EXPECT_EQ(cl.config.dataset, "") << command;
    const char* given[] = {"spikegrad", command, "--checkpoint", "c.safetensors", "--dataset", "mnist"};
    ASSERT_EQ(app::parse_command_line(6, given, &cl), -1);
    EXPECT_EQ(cl.config.dataset, "mnist") << command;
  }
  app::CommandLine cl;
  const char* train[] = {"spikegrad", "train"};
  ASSERT_EQ(app::parse_command_line(2, train, &cl), -1);
  EXPECT_EQ(cl.config.dataset, "fashion-mnist");
}

TEST_F(EarlyValidation, AttackSweepShowsProgressWhenAsked) {
  ModelConfig mc = model_config(1, 28, 1);
  auto model = make_model("small_cnn", mc);
  Dataset d;
  d.images = Tensor::full({6, 1, 28, 28}, 100, DType::U8);
  d.labels = Tensor::zeros({6}, DType::I32);
  d.num_classes = 10;
  AttackConfig a;
  a.kind = AttackKind::fgsm;
  a.eps = 4.0 / 255;
  const std::vector<app::SweepAttack> configs{a, a};
  ::testing::internal::CaptureStderr();
  const auto rows = app::attack_table(*model, d, configs, 5, 2, 1, nullptr, {"attack", true});
  const std::string shown = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].result.total, 5);
  // 5 examples in batches of 2 -> 3 batches per attack, 6 in all; stderr is not a terminal here, so the
  // display is a plain line at the end.
  EXPECT_NE(shown.find("attack 6/6"), std::string::npos) << shown;
  EXPECT_NE(shown.find("fgsm eps 4/255"), std::string::npos) << shown;
  ::testing::internal::CaptureStderr();
  app::attack_table(*model, d, configs, 5, 2, 1, nullptr, {"attack", false});
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");

  // The other passes of eval (defect 10: its clean pass showed nothing): one bar each, over their batches.
  ::testing::internal::CaptureStderr();
  app::clean_accuracy(*model, d, 4, {"clean accuracy", true});
  app::all_mean_logits(*model, d, 4, {"logits", true});
  std::string other = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(other.find("clean accuracy 2/2"), std::string::npos) << other;
  EXPECT_NE(other.find("logits 2/2"), std::string::npos) << other;
  ::testing::internal::CaptureStderr();
  app::clean_accuracy(*model, d, 4, {"clean accuracy", false});
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

class EarlyValidationTrain : public EarlyValidation {
 protected:
  app::RunConfig train_config(int test_size) {
    const fs::path data = dir_ / "data";
    fs::create_directories(data);
    write_synthetic_idx(data, "train", 96, 1, 28);
    write_synthetic_idx(data, "t10k", 32, 2, test_size);
    app::RunConfig c;
    c.data_dir = data.string();
    c.runs_dir = (dir_ / "runs").string();
    c.name = "run";
    c.device = "cpu";
    c.val_size = 32;
    c.time_steps = 1;
    c.batch = 32;
    c.epochs = 1;
    c.attack_subset = 8;
    c.eval_batch = 32;
    c.progress = false;
    return c;
  }
};

TEST_F(EarlyValidationTrain, TrainStopsOnABadEpsBeforeTheFirstStep) {
  app::RunConfig c = train_config(28);
  c.eps = "1e9";
  const std::string msg = error_of([&] { app::run_train(c); });
  EXPECT_NE(msg.find("--eps must be in [0, 1]"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "runs" / "run" / "last.safetensors")) << "an epoch was trained before the check";
}

TEST_F(EarlyValidationTrain, TrainStopsOnMismatchedSplitsBeforeTheFirstStep) {
  app::RunConfig c = train_config(32);
  const std::string msg = error_of([&] { app::run_train(c); });
  EXPECT_NE(msg.find("the test split holds 1x32x32 (CxHxW) images but the training split 1x28x28"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "runs" / "run" / "last.safetensors")) << "an epoch was trained before the check";
}

}  // namespace
}  // namespace spikegrad::testing
