// The trainer end to end on a small synthetic Fashion-MNIST-format dataset the test writes itself:
// run folder contents, accuracy rising, exact resume, strict checkpoints, NaN handling, CLI exit codes,
// saved logits and adversarial inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/train.h"
#include "attacks/evaluate.h"
#include "engine/safetensors.h"
#include "support/op_cases.h"
#include "support/saved_adversarials.h"
#include "support/synthetic_data.h"
#include "support/cli_runs.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

class App : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Per process: ctest runs the tests of this suite in parallel processes.
    data_ = write_synthetic_dataset("spikegrad_app_data", 448, 96);
  }
  void SetUp() override {
    runs_ = fresh_test_dir("spikegrad_app_runs");
  }
  app::RunConfig base() const { return small_run_config(data_, runs_, 64, 32, 64); }
  void expect_last_is_the_state_before_epoch_1() const;
  static fs::path data_;
  fs::path runs_;
};
fs::path App::data_;

TEST_F(App, TrainWritesTheRunFolderAndLearns) {
  const fs::path dir = app::run_train(base());
  for (const char* f : {"config.json", "metrics.csv", "best.safetensors", "last.safetensors", "results.csv", "report.md"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  // results.csv holds report.md's numbers: the clean row, then one per attack row in the table's order
  const auto results = read_csv(dir / "results.csv");
  ASSERT_EQ(results.size(), 6u) << "header, clean, fgsm, pgd, bim, gn";
  EXPECT_EQ(results[0], (std::vector<std::string>{"attack", "eps", "examples", "accuracy_pct", "attack_success_pct",
                                                   "zero_input_gradient_pct", "mean_kde_mi_bits"}));
  const char* attacks[] = {"clean", "fgsm", "pgd", "bim", "gn"};
  for (size_t i = 1; i < results.size(); ++i) {
    ASSERT_EQ(results[i].size(), 7u) << i;
    EXPECT_EQ(results[i][0], attacks[i - 1]);
    EXPECT_EQ(results[i][1], i == 1 ? "" : "4/255");
  }
  EXPECT_EQ(results[1][2], "96") << "clean accuracy on the whole test split";
  EXPECT_GT(std::stod(results[1][6]), 0.0) << "mean KDE MI on the clean row";
  auto rows = read_csv(dir / "metrics.csv");
  ASSERT_EQ(rows.size(), 3u) << "header + 2 epochs";
  const std::vector<std::string>& h = rows[0];
  auto col = [&](const std::string& name) {
    auto it = std::find(h.begin(), h.end(), name);
    EXPECT_NE(it, h.end()) << "missing column " << name;
    return size_t(it - h.begin());
  };
  for (const char* name : {"loss", "ce", "mi_bits", "train_acc", "val_acc", "test_acc", "lr", "train_peak_mib", "seconds",
                           "images_per_s"})
    col(name);
  EXPECT_GT(std::stod(rows[1][col("train_peak_mib")]), 0.0);
  EXPECT_GT(std::stod(rows[2][col("test_acc")]), 40.0) << "10 classes: chance is 10%";
  std::ifstream report(dir / "report.md");
  std::string text((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  for (const char* s : {"robust accuracy", "attack success rate", "| fgsm |", "| pgd |", "| bim |", "| gn |", "mean KDE MI",
                        "selected on the validation split"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
  char clean[64];
  std::snprintf(clean, sizeof clean, "**%.2f%%** on 96 test examples", std::stod(results[1][3]));
  EXPECT_NE(text.find(clean), std::string::npos) << "report.md and results.csv disagree on " << clean;
  for (size_t i = 2; i < results.size(); ++i) {
    char cell[64];
    std::snprintf(cell, sizeof cell, "| %.2f | %.2f |", std::stod(results[i][3]), std::stod(results[i][4]));
    EXPECT_NE(text.find(cell), std::string::npos) << results[i][0] << ": report.md lacks " << cell;
  }
}

TEST_F(App, ResumeReproducesAnUninterruptedRun) {
  app::RunConfig full = base();
  full.name = "full";
  const fs::path a = app::run_train(full);
  app::RunConfig part = base();
  part.name = "part";
  part.epochs = 1;
  app::run_train(part);
  app::RunConfig again = base();
  again.name = "part";
  again.epochs = 2;
  again.resume = true;
  const fs::path b = app::run_train(again);
  expect_same_run_results(a, b);
}

TEST_F(App, RefusesToOverwriteARunAndLoadsStrictly) {
  app::RunConfig c = base();
  c.epochs = 1;
  const fs::path dir = app::run_train(c);
  try {
    app::run_train(c);
    FAIL() << "a second run into the same folder must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds a run; use --resume"), std::string::npos) << e.what();
  }
  // A checkpoint of another model must be refused with a clear message.
  app::Checkpoint ck = app::read_checkpoint((dir / "last.safetensors").string());
  ModelConfig mc;
  mc.time_steps = 2;
  auto other = make_model("alexnet", mc);
  try {
    app::restore_model(*other, ck);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint of model 'small_cnn', but the model is 'alexnet'"), std::string::npos)
        << e.what();
  }
}

// No checkpoint may hold diverged weights: last.safetensors is still the one a new run writes before epoch 1,
// and it loads (restore_model refuses non-finite state).
void App::expect_last_is_the_state_before_epoch_1() const {
  const fs::path dir = runs_ / "run";
  const app::Checkpoint ck = app::read_checkpoint((dir / "last.safetensors").string());
  EXPECT_EQ(ck.progress.epochs_done, 0);
  EXPECT_FALSE(fs::exists(dir / "best.safetensors"));
  ModelConfig mc;
  mc.time_steps = 2;
  auto model = make_model("small_cnn", mc);
  EXPECT_NO_THROW(app::restore_model(*model, ck));
}

TEST_F(App, NonFiniteLossStopsWithStepAndKeepsLastGoodCheckpoint) {
  app::RunConfig c = base();
  c.loss = "tet";
  c.tet_phi = 1e20;  // (logit - phi)^2 overflows float32: the very first loss is +inf
  try {
    app::run_train(c);
    FAIL() << "training must stop on a non-finite loss";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("training stopped: the loss is"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at epoch 1, step 1;"), std::string::npos) << msg;
    EXPECT_NE(msg.find("the last good checkpoint is " + (runs_ / "run" / "last.safetensors").string()), std::string::npos)
        << msg;
  }
  expect_last_is_the_state_before_epoch_1();
}

// A learning rate of 1e30 drives BN's running statistics (or the weights) non-finite while the loss may stay
// finite: the epoch-end state check stops the run before such a state is saved (issue 16, defect 8).
TEST_F(App, DivergedStateStopsTrainingBeforeItIsSaved) {
  app::RunConfig c = base();
  c.lr = 1e30;
  try {
    app::run_train(c);
    FAIL() << "training must stop once the model holds non-finite values";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training stopped"), std::string::npos) << e.what();
  }
  expect_last_is_the_state_before_epoch_1();
}

TEST_F(App, SavedAdversarialInputsReproduceTheReportedAccuracy) {
  app::RunConfig c = base();
  c.epochs = 1;
  const fs::path dir = app::run_train(c);
  app::RunConfig flags = base();
  flags.checkpoint = (dir / "best.safetensors").string();
  flags.eps = "0,8/255";
  flags.save_adv = (runs_ / "adv.safetensors").string();
  flags.save_logits = (runs_ / "logits.safetensors").string();
  app::run_attack(flags);
  app::run_eval(flags);
  SafetensorsFile logits = load_safetensors(flags.save_logits);
  ASSERT_EQ(logits.tensors.size(), 2u);
  EXPECT_EQ(logits.tensors[0].tensor.shape(), (Shape{96, 10}));
  // Re-classify every saved adversarial set and compare with the accuracy written in its metadata row.
  app::Checkpoint ck = app::read_checkpoint(flags.checkpoint);
  app::RunConfig cfg = app::config_for_checkpoint(flags, ck.config);
  const int sets = expect_saved_adversarials_reproduce_table(flags.save_adv, flags.checkpoint, 32);
  EXPECT_EQ(sets, 8) << "2 epsilons x 4 attacks";
}

#ifdef SPIKEGRAD_CLI_PATH

TEST_F(App, CliErrorsAreOneLineWithExitCode2) {
  std::string err;
  EXPECT_EQ(run_cli("train --val-size 64 --model nope --runs-dir " + runs_.string() + " --data-dir " + data_.string(), &err), 2);
  EXPECT_NE(err.find("unknown model 'nope'; known models:"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(run_cli("train --data-dir /nonexistent/dir --runs-dir " + runs_.string(), &err), 2);
  EXPECT_NE(err.find("/nonexistent/dir"), std::string::npos) << err;
  EXPECT_EQ(run_cli("eval --checkpoint " + (runs_ / "missing.safetensors").string(), &err), 2);
  EXPECT_NE(err.find("missing.safetensors"), std::string::npos) << err;
  EXPECT_EQ(run_cli("train --loss mse", &err), 2);
  EXPECT_NE(err.find("--loss"), std::string::npos) << err;
  EXPECT_EQ(run_cli("train --eps 4/0 --data-dir " + data_.string() + " --runs-dir " + runs_.string(), &err), 2);
  EXPECT_NE(err.find("--eps"), std::string::npos) << err;
  EXPECT_EQ(run_cli("train --tf32 --val-size 64 --data-dir " + data_.string() + " --runs-dir " + runs_.string(), &err), 2);
  EXPECT_NE(err.find("--tf32 needs --conv ours"), std::string::npos) << err;
  EXPECT_EQ(run_cli("train --conv winograd", &err), 2);
  EXPECT_NE(err.find("--conv"), std::string::npos) << err;
  EXPECT_EQ(run_cli("train --cpu-conv sparse", &err), 2);
  EXPECT_NE(err.find("--cpu-conv"), std::string::npos) << err;
  if (!cuda_ok()) {
    EXPECT_EQ(run_cli("train --device cuda --data-dir " + data_.string() + " --runs-dir " + runs_.string(), &err), 2);
    EXPECT_NE(err.find("--device cuda"), std::string::npos) << err;
  }
}

// Issue 16, defect 9: --save-adv onto the checkpoint it attacks used to replace the checkpoint with the
// adversarial inputs (exit 0). Refused before anything runs, naming both flags; the checkpoint is unchanged.
TEST_F(App, SaveAdvOntoTheCheckpointIsRefused) {
  app::RunConfig c = base();
  c.epochs = 1;
  const fs::path dir = app::run_train(c);
  const fs::path ckpt = dir / "best.safetensors";
  auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string before = bytes(ckpt);
  std::string err;
  const std::string same = (dir / "." / "best.safetensors").string();
  EXPECT_EQ(run_cli("attack --device cpu --attack-subset 8 --eps 4/255 --checkpoint " + ckpt.string() + " --save-adv " + same, &err), 2);
  EXPECT_NE(err.find("--save-adv '" + same + "' is the same file as --checkpoint '" + ckpt.string() + "'"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_TRUE(bytes(ckpt) == before) << "the checkpoint was overwritten";
  EXPECT_NO_THROW(app::read_checkpoint(ckpt.string()));
  EXPECT_EQ(run_cli("eval --device cpu --attack-subset 8 --checkpoint " + ckpt.string() + " --save-logits " + ckpt.string(), &err), 2);
  EXPECT_NE(err.find("--save-logits"), std::string::npos) << err;
  EXPECT_TRUE(bytes(ckpt) == before);
}
#endif

}  // namespace
}  // namespace spikegrad::testing
