// Issue 16, defect 5: --resume continues the run as recorded. A finished run used to be extended to the
// default --epochs, and every other flag given with --resume was ignored without a word. Now: --epochs may
// extend the run (not given: the recorded count), --device/--progress/--data-dir/--runs-dir/--name may
// differ, and any other given flag that differs from the recorded run is an error naming it with both
// values; a finished run with its report is not retrained.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include <unistd.h>
#include <vector>

#include "apps/checkpoint.h"
#include "apps/cli.h"
#include "apps/train.h"
#include "engine/check.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

app::GivenSettings given(std::set<std::string> keys) {
  app::GivenSettings g;
  g.all = false;
  g.keys = std::move(keys);
  return g;
}

TEST(ResumeRules, AGivenFlagThatDiffersIsAnErrorNamingItAndAFlagNotGivenIsTheRecordedOne) {
  app::RunConfig recorded;
  recorded.lr = 0.01;
  recorded.time_steps = 8;
  recorded.epochs = 5;
  recorded.device = "cpu";
  recorded.model = "vgg11";
  app::RunConfig asked;  // every field at its default
  asked.resume = true;
  asked.name = "r";

  // Nothing but --resume/--name given: the recorded run, its 5 epochs (not the default 2) and its device.
  const app::RunConfig c = app::config_for_resume(recorded, asked, given({"resume", "name"}), "ck");
  EXPECT_EQ(c.lr, 0.01);
  EXPECT_EQ(c.time_steps, 8);
  EXPECT_EQ(c.epochs, 5);
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.model, "vgg11");
  EXPECT_EQ(c.name, "r");
  EXPECT_TRUE(c.resume);

  // Given and equal: accepted (re-running the same command line with --resume added is the common case).
  asked.lr = 0.01;
  EXPECT_EQ(app::config_for_resume(recorded, asked, given({"resume", "lr"}), "ck").lr, 0.01);

  // Given and different: every such flag is named, with both values.
  asked.lr = 0.001;
  asked.time_steps = 4;
  const std::string msg =
      error_of([&] { app::config_for_resume(recorded, asked, given({"resume", "lr", "time_steps"}), "ck.safetensors"); });
  EXPECT_NE(msg.find("--resume continues the run recorded in ck.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--lr 0.001 differs from the run's 0.01"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--time-steps 4 differs from the run's 8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Only --epochs (to extend it), --device, --progress, --data-dir, --runs-dir, --decode-threads, --dvs-cache-dir, --val-labels may change"),
            std::string::npos)
      << msg;

  // --epochs extends, never shortens; --device and --progress follow this invocation when given.
  asked = app::RunConfig();
  asked.epochs = 7;
  asked.device = "auto";
  asked.progress = false;
  const app::RunConfig longer = app::config_for_resume(recorded, asked, given({"epochs", "device", "progress"}), "ck");
  EXPECT_EQ(longer.epochs, 7);
  EXPECT_EQ(longer.device, "auto");
  EXPECT_FALSE(longer.progress);
  asked.epochs = 3;
  EXPECT_NE(error_of([&] { app::config_for_resume(recorded, asked, given({"epochs"}), "ck"); })
                .find("--epochs 3 is fewer than the run's 5"),
            std::string::npos);

  // A caller that fills the whole config in code gives every field.
  EXPECT_NE(error_of([&] { app::config_for_resume(recorded, app::RunConfig(), app::GivenSettings(), "ck"); }).find("--lr"),
            std::string::npos);
}

// The command line says which settings were given: flags and --config keys, not defaults.
TEST(ResumeRules, TheCommandLineRecordsTheSettingsGivenOnItAndInTheConfigFile) {
  const fs::path config = fs::path(::testing::TempDir()) / ("spikegrad_resume_rules_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(config) << "[train]\nepochs = 3\nsurrogate = \"atan\"\n";
  const std::string config_path = config.string();
  const char* argv[] = {"spikegrad", "train", "--resume", "--name", "x", "--T", "4", "--no-progress",
                        "--config", config_path.c_str()};
  app::CommandLine cl;
  ASSERT_EQ(app::parse_command_line(10, argv, &cl), -1);
  fs::remove(config);
  EXPECT_FALSE(cl.given.all);
  EXPECT_EQ(cl.given.keys, (std::set<std::string>{"resume", "name", "time_steps", "progress", "epochs", "surrogate"}));
  EXPECT_EQ(cl.config.epochs, 3);
  EXPECT_EQ(cl.config.surrogate, "atan");
}

class ResumeRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = write_synthetic_dataset("spikegrad_resume_rules_data", 160, 32); }
  void SetUp() override {
    root_ = fresh_test_dir("spikegrad_resume_rules");
    fs::create_directories(root_ / "runs");
  }
  void TearDown() override {
    app::train_commit_hook = nullptr;
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // `spikegrad train <args>` on the synthetic data, parsed as the binary parses it, run in process.
  std::string train(std::vector<std::string> args) const {
    const std::vector<std::string> where = {"--data-dir", data_.string(), "--runs-dir", (root_ / "runs").string(),
                                            "--device", "cpu", "--no-progress", "--name", "run"};
    args.insert(args.end(), where.begin(), where.end());
    args.insert(args.begin(), {"spikegrad", "train"});
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    app::CommandLine cl;
    EXPECT_EQ(app::parse_command_line(int(argv.size()), argv.data(), &cl), -1);
    return app::run_train(cl.config, cl.given);
  }
  std::vector<std::string> small() const {
    return {"--T", "2", "--batch", "32", "--lr", "5e-3", "--val-size", "32", "--attack-subset", "8", "--eval-batch", "32"};
  }
  static fs::path data_;
  fs::path root_;
};
fs::path ResumeRun::data_;

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_F(ResumeRun, AFinishedRunIsNotExtendedByTheDefaultAndAChangedFlagIsRefused) {
  const fs::path dir = train(with(small(), {"--epochs", "1"}));
  const std::string metrics = read_text(dir / "metrics.csv");

  // The default --epochs (2) used to extend this run silently.
  std::string msg = error_of([&] { train({"--resume"}); });
  EXPECT_NE(msg.find("is finished (epoch 1 of 1) and its report.md is written; to train it further give --epochs N with N > 1"),
            std::string::npos)
      << msg;
  // A flag that differs used to be ignored.
  msg = error_of([&] { train({"--resume", "--epochs", "2", "--lr", "0.1"}); });
  EXPECT_NE(msg.find("--lr 0.1 differs from the run's 0.005"), std::string::npos) << msg;
  EXPECT_EQ(read_text(dir / "metrics.csv"), metrics) << "a refused resume changes nothing";
  EXPECT_EQ(app::read_checkpoint((dir / "last.safetensors").string()).progress.epochs_done, 1);

  // The same command line plus --resume and a larger --epochs extends it; the recorded settings are kept.
  train(with(small(), {"--resume", "--epochs", "2"}));
  const app::Checkpoint ck = app::read_checkpoint((dir / "last.safetensors").string());
  EXPECT_EQ(ck.progress.epochs_done, 2);
  EXPECT_EQ(ck.config.epochs, 2);
  EXPECT_EQ(ck.config.lr, 5e-3);
  EXPECT_EQ(read_csv(dir / "metrics.csv").size(), 3u);
}

// A run stopped before its last epoch resumes to its recorded count with --resume alone (3 here, not the
// default 2); one whose report was lost after training writes the report and retrains nothing.
TEST_F(ResumeRun, AnUnfinishedRunContinuesToItsRecordedEpochsAndALostReportIsWritten) {
  app::train_commit_hook = [](const char*, int64_t epoch) {
    if (epoch == 2) throw std::runtime_error("simulated kill");
  };
  EXPECT_THROW(train(with(small(), {"--epochs", "3"})), std::runtime_error);
  app::train_commit_hook = nullptr;
  const fs::path dir = root_ / "runs" / "run";
  EXPECT_EQ(app::read_checkpoint((dir / "last.safetensors").string()).progress.epochs_done, 1);

  train({"--resume"});
  EXPECT_EQ(app::read_checkpoint((dir / "last.safetensors").string()).progress.epochs_done, 3);
  EXPECT_EQ(read_csv(dir / "metrics.csv").size(), 4u);
  const std::string metrics = read_text(dir / "metrics.csv");

  fs::remove(dir / "report.md");
  train({"--resume"});
  EXPECT_TRUE(fs::exists(dir / "report.md"));
  EXPECT_EQ(read_text(dir / "metrics.csv"), metrics) << "no epoch retrained";
}

}  // namespace
}  // namespace spikegrad::testing
