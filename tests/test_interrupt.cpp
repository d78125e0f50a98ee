// Issue 16, defect 11: SIGINT/SIGTERM during `spikegrad train` finish the step in flight, write a mid-epoch
// last.safetensors (loader position + the epoch's running sums), throw app::Interrupted ("interrupted at
// epoch E step S; continue with --resume"; exit 130 in cli_main), and --resume then reproduces the
// uninterrupted run exactly. The handler lives only as long as run_train and restores the previous ones.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "apps/checkpoint.h"
#include "apps/evaluation.h"
#include "apps/interrupt.h"
#include "apps/train.h"
#include "engine/check.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "models/model.h"
#include "support/model_config.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

// The signal the hook raises, and after which step (0-based epoch, steps of it done); -1: none.
int g_raise_signal = SIGINT;
int64_t g_raise_epoch = -1, g_raise_step = -1;
void raise_at_step(int64_t epoch, int64_t steps_done) {
  if (epoch == g_raise_epoch && steps_done == g_raise_step) std::raise(g_raise_signal);
}

volatile std::sig_atomic_t g_previous_handler_calls = 0;
extern "C" void previous_handler(int) { g_previous_handler_calls = g_previous_handler_calls + 1; }

void (*handler_of(int sig))(int) {
  struct sigaction now {};
  sigaction(sig, nullptr, &now);
  return now.sa_handler;
}

// Installs `previous_handler` for SIGINT and SIGTERM for the test's life (so a signal that escaped the
// trainer's handler is counted, not fatal), restoring the originals afterwards.
class Interrupt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = write_synthetic_dataset("spikegrad_interrupt_data", 224, 32);
  }
  void SetUp() override {
    runs_ = fresh_test_dir("spikegrad_interrupt_runs");
    struct sigaction sa {};
    sa.sa_handler = previous_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &saved_int_);
    sigaction(SIGTERM, &sa, &saved_term_);
    g_previous_handler_calls = 0;
    g_raise_signal = SIGINT;
    g_raise_epoch = g_raise_step = -1;
    app::train_step_hook = raise_at_step;
  }
  void TearDown() override {
    app::train_step_hook = nullptr;
    sigaction(SIGINT, &saved_int_, nullptr);
    sigaction(SIGTERM, &saved_term_, nullptr);
    std::error_code ec;
    fs::remove_all(runs_, ec);
  }
  app::RunConfig base() const {
    app::RunConfig c = small_run_config(data_, runs_, /*val_size: 192 training examples, 6 steps*/ 32, 8, 32);
    c.augment = "on";  // the loader's random crops and flips must resume at the right sample too
    return c;
  }
  // Runs `c` expecting an Interrupted; returns its message ("" if none was thrown).
  std::string interrupted(app::RunConfig c) {
    try {
      app::run_train(c);
    } catch (const app::Interrupted& e) {
      return e.what();
    }
    return "";
  }
  // The metrics rows (without the timing columns) and the final weights of b equal a's exactly.
  void expect_same_run(const fs::path& a, const fs::path& b) {
    expect_same_run_results(a, b);
    EXPECT_TRUE(fs::exists(b / "report.md"));
  }
  static fs::path data_;
  fs::path runs_;
  struct sigaction saved_int_ {}, saved_term_ {};
};
fs::path Interrupt::data_;

TEST_F(Interrupt, TheGuardSetsAFlagOnceAndRestoresThePreviousHandlers) {
  {
    app::InterruptGuard guard;
    EXPECT_EQ(guard.received(), 0);
    EXPECT_NE(handler_of(SIGINT), previous_handler);
    EXPECT_NE(handler_of(SIGTERM), previous_handler);
    std::raise(SIGTERM);
    EXPECT_EQ(guard.received(), SIGTERM);
    EXPECT_EQ(g_previous_handler_calls, 0) << "the guard's handler, not the previous one, takes the signal";
    // One delivery only: a second signal gets the default disposition (the process ends as usual).
    EXPECT_EQ(handler_of(SIGTERM), SIG_DFL);
  }
  EXPECT_EQ(handler_of(SIGINT), previous_handler);
  EXPECT_EQ(handler_of(SIGTERM), previous_handler);
  std::raise(SIGINT);
  EXPECT_EQ(g_previous_handler_calls, 1);
  app::InterruptGuard fresh;
  EXPECT_EQ(fresh.received(), 0) << "a new guard starts with the flag clear";
}

TEST_F(Interrupt, SigintMidEpochSavesResumablyAndResumeReproducesTheUninterruptedRun) {
  app::RunConfig full = base();
  full.name = "full";
  const fs::path a = app::run_train(full);
  EXPECT_EQ(handler_of(SIGINT), previous_handler) << "run_train restores the handlers it replaced";

  g_raise_epoch = 1, g_raise_step = 4;  // SIGINT after step 4 of epoch 2
  app::RunConfig part = base();
  part.name = "part";
  EXPECT_EQ(interrupted(part), "interrupted at epoch 2 step 4; continue with --resume");
  EXPECT_EQ(g_previous_handler_calls, 0);
  EXPECT_EQ(handler_of(SIGINT), previous_handler) << "the handlers are restored when run_train throws";
  EXPECT_EQ(handler_of(SIGTERM), previous_handler);
  const fs::path b = runs_ / "part";
  ASSERT_TRUE(fs::exists(b / "last.safetensors"));
  EXPECT_FALSE(fs::exists(b / "report.md"));
  EXPECT_EQ(read_csv(b / "metrics.csv").size(), 2u) << "header + epoch 1";
  for (const auto& e : fs::directory_iterator(b))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  const app::Checkpoint ck = app::read_checkpoint((b / "last.safetensors").string());
  EXPECT_EQ(ck.progress.epochs_done, 1);
  EXPECT_EQ(ck.progress.loader.epoch, 1);
  EXPECT_EQ(ck.progress.loader.next_batch, 4);

  g_raise_epoch = g_raise_step = -1;
  app::RunConfig again = base();
  again.name = "part";
  again.resume = true;
  app::run_train(again);
  expect_same_run(a, b);
}

// SIGTERM too; interrupted twice (mid-epoch, then after an epoch's last step, which commits the epoch
// first and stops at the next one's start), each resume continuing exactly.
TEST_F(Interrupt, SigtermTwiceIncludingAtAnEpochEndResumesExactly) {
  app::RunConfig full = base();
  full.name = "full";
  const fs::path a = app::run_train(full);

  g_raise_signal = SIGTERM;
  g_raise_epoch = 0, g_raise_step = 2;
  app::RunConfig part = base();
  part.name = "part";
  EXPECT_EQ(interrupted(part), "interrupted at epoch 1 step 2; continue with --resume");
  const fs::path b = runs_ / "part";
  EXPECT_EQ(read_csv(b / "metrics.csv").size(), 0u) << "no epoch finished: no rows";

  g_raise_epoch = 0, g_raise_step = 6;  // the last step of epoch 1
  app::RunConfig again = base();
  again.name = "part";
  again.resume = true;
  EXPECT_EQ(interrupted(again), "interrupted at epoch 2 step 0; continue with --resume");
  EXPECT_EQ(read_csv(b / "metrics.csv").size(), 2u) << "epoch 1 was committed before stopping";
  const app::Checkpoint ck = app::read_checkpoint((b / "last.safetensors").string());
  EXPECT_EQ(ck.progress.epochs_done, 1);
  EXPECT_EQ(ck.progress.loader.next_batch, 0);

  g_raise_epoch = g_raise_step = -1;
  app::run_train(again);
  EXPECT_EQ(g_previous_handler_calls, 0);
  expect_same_run(a, b);
}

// A mid-epoch checkpoint whose running sums were lost cannot be resumed silently into wrong metrics.
TEST_F(Interrupt, AMidEpochCheckpointWithoutItsSumsIsRefused) {
  g_raise_epoch = 0, g_raise_step = 3;
  app::RunConfig part = base();
  EXPECT_FALSE(interrupted(part).empty());
  const fs::path last = runs_ / "run" / "last.safetensors";
  SafetensorsFile f = load_safetensors(last.string());
  ASSERT_EQ(f.metadata.erase("spikegrad_epoch_in_progress"), 1u);
  save_safetensors(last.string(), f.tensors, f.metadata);
  g_raise_epoch = g_raise_step = -1;
  app::RunConfig again = base();
  again.resume = true;
  try {
    app::run_train(again);
    FAIL() << "resume must refuse a mid-epoch checkpoint without its running sums";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a mid-epoch checkpoint (epoch 1, step 3) without the epoch's running sums"),
              std::string::npos)
        << e.what();
  }
}

// Defect 11, the report: training is committed before the final report, whose passes (clean accuracy,
// the attacks, temporal statistics) used to run to their end after a Ctrl-C. Given the trainer's guard, a
// signal ends the pass after the batch in flight; run_train adds where training stands and that --resume
// writes the report (ResumeRun.AnUnfinishedRunContinuesToItsRecordedEpochsAndALostReportIsWritten).
TEST_F(Interrupt, ASignalEndsAReportPassAfterTheBatchInFlight) {
  ModelConfig mc = model_config(1, 28, 1);
  auto model = make_model("small_cnn", mc);
  Dataset d;
  d.images = Tensor::full({6, 1, 28, 28}, 100, DType::U8);
  d.labels = Tensor::zeros({6}, DType::I32);
  d.num_classes = 10;
  app::RunConfig c = base();
  c.attack_subset = 4;
  c.eval_batch = 2;
  app::TrainProgress best;
  {
    const app::InterruptGuard guard;
    EXPECT_FALSE(app::report_text(*model, c, d, best, &guard).empty()) << "no signal: the whole report";
    std::raise(SIGINT);
    try {
      app::report_text(*model, c, d, best, &guard);
      FAIL() << "a signal must end the report";
    } catch (const app::Interrupted& e) {
      EXPECT_EQ(std::string(e.what()), "interrupted during report: clean accuracy");
    }
    // Without the guard (the trainer's per-epoch scoring) a pass runs to its end.
    EXPECT_NO_THROW(app::clean_accuracy(*model, d, 2));
  }
  EXPECT_EQ(g_previous_handler_calls, 0);
}

}  // namespace
}  // namespace spikegrad::testing
