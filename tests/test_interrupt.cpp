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
#include "apps/interrupt.h"
#include "apps/train.h"
#include "engine/check.h"
#include "engine/rng.h"
#include "engine/safetensors.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

void write_be32(std::ofstream& out, uint32_t v) {
  const unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  out.write(reinterpret_cast<const char*>(b), 4);
}

// A small Fashion-MNIST-format dataset: class c is a bright square at one of 10 positions, on noise.
void write_idx(const fs::path& dir, const std::string& prefix, int n, uint64_t seed) {
  Generator gen(seed);
  std::ofstream img(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary), lab(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  write_be32(img, 0x803);
  write_be32(img, uint32_t(n));
  write_be32(img, 28);
  write_be32(img, 28);
  write_be32(lab, 0x801);
  write_be32(lab, uint32_t(n));
  for (int i = 0; i < n; ++i) {
    const int c = int(gen.next_u32() % 10);
    std::vector<uint8_t> px(28 * 28);
    for (auto& p : px) p = uint8_t(gen.next_u32() % 60);
    const int r0 = 2 + (c / 5) * 14, c0 = 1 + (c % 5) * 5;
    for (int r = r0; r < r0 + 8; ++r)
      for (int q = c0; q < std::min(28, c0 + 6); ++q) px[size_t(r * 28 + q)] = uint8_t(200 + gen.next_u32() % 55);
    img.write(reinterpret_cast<const char*>(px.data()), std::streamsize(px.size()));
    const char label = char(c);
    lab.write(&label, 1);
  }
}

std::vector<std::vector<std::string>> csv(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

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
    data_ = fs::path(::testing::TempDir()) / ("spikegrad_interrupt_data_" + std::to_string(getpid()));
    fs::create_directories(data_);
    write_idx(data_, "train", 224, 1);
    write_idx(data_, "t10k", 32, 2);
  }
  void SetUp() override {
    runs_ = fs::path(::testing::TempDir()) /
            ("spikegrad_interrupt_runs_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
             "_" + std::to_string(getpid()));
    fs::remove_all(runs_);
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
    app::RunConfig c;
    c.data_dir = data_.string();
    c.runs_dir = runs_.string();
    c.device = "cpu";
    c.val_size = 32;  // 192 training examples: 6 steps of 32 per epoch
    c.time_steps = 2;
    c.batch = 32;
    c.epochs = 2;
    c.lr = 5e-3;
    c.attack_subset = 8;
    c.eval_batch = 32;
    c.augment = "on";  // the loader's random crops and flips must resume at the right sample too
    c.progress = false;
    c.name = "run";
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
    auto ra = csv(a / "metrics.csv"), rb = csv(b / "metrics.csv");
    ASSERT_EQ(ra.size(), rb.size());
    const size_t timing_cols = 3;  // train_peak_mib, seconds, images_per_s: measurements, not results
    for (size_t r = 0; r < ra.size(); ++r) {
      ASSERT_EQ(ra[r].size(), rb[r].size());
      for (size_t k = 0; k + timing_cols < ra[r].size(); ++k) EXPECT_EQ(ra[r][k], rb[r][k]) << "row " << r << " column " << k;
    }
    SafetensorsFile fa = load_safetensors((a / "last.safetensors").string()), fb = load_safetensors((b / "last.safetensors").string());
    ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
    for (size_t i = 0; i < fa.tensors.size(); ++i) {
      EXPECT_EQ(fa.tensors[i].name, fb.tensors[i].name);
      EXPECT_EQ(0, std::memcmp(fa.tensors[i].tensor.raw_data(), fb.tensors[i].tensor.raw_data(), fa.tensors[i].tensor.nbytes()))
          << fa.tensors[i].name << " differs after the interrupted run was resumed";
    }
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
  EXPECT_EQ(csv(b / "metrics.csv").size(), 2u) << "header + epoch 1";
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
  EXPECT_EQ(csv(b / "metrics.csv").size(), 0u) << "no epoch finished: no rows";

  g_raise_epoch = 0, g_raise_step = 6;  // the last step of epoch 1
  app::RunConfig again = base();
  again.name = "part";
  again.resume = true;
  EXPECT_EQ(interrupted(again), "interrupted at epoch 2 step 0; continue with --resume");
  EXPECT_EQ(csv(b / "metrics.csv").size(), 2u) << "epoch 1 was committed before stopping";
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

}  // namespace
}  // namespace spikegrad::testing
