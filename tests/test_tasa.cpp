// TASA (apps/tasa.h) on hand-made spike taps with known values, its CSV, and `train --track-robustness`
// (apps/robustness_tracking.h): the metrics.csv columns it fills, and that it leaves training unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/metrics.h"
#include "apps/robustness_tracking.h"
#include "apps/setup.h"
#include "apps/tasa.h"
#include "apps/train.h"
#include "engine/safetensors.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

// Two layers, T = 2, B = 2. Layer "a" has 4 neurons, "b" has 2.
//   a, t=0: example 0 fires 1 of 4, example 1 fires 3 of 4   -> TASA_a[0] = (0.25 + 0.75)/2 = 0.5
//   a, t=1: example 0 fires 4 of 4, example 1 fires 0 of 4   -> TASA_a[1] = 0.5;  TASA_a = 0.5
//   b, t=0: 1 of 2, 1 of 2 -> 0.5;  t=1: 0, 1 of 2 -> 0.25;  TASA_b = 0.375
Taps hand_made_taps(const std::vector<float>& a, const std::vector<float>& b) {
  Taps taps;
  taps.keep(TapKeep::everything());
  taps.add("a", Tensor::from_vector<float>(a, {2, 2, 4}));
  taps.add("b", Tensor::from_vector<float>(b, {2, 2, 1, 2}));
  return taps;
}
std::vector<std::string> read_lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const std::vector<float> kCleanA = {1, 0, 0, 0, /*b1*/ 1, 1, 1, 0, /*t1 b0*/ 1, 1, 1, 1, /*b1*/ 0, 0, 0, 0};
const std::vector<float> kCleanB = {1, 0, 0, 1, /*t1*/ 0, 0, 0, 1};

TEST(Tasa, HandMadeTapsGiveTheKnownTasa) {
  const auto clean = app::rate_sums_per_step(hand_made_taps(kCleanA, kCleanB));
  ASSERT_EQ(clean.size(), 2u);
  EXPECT_EQ(clean[0].first, "a");
  EXPECT_EQ(clean[0].second, (std::vector<double>{1.0, 1.0})) << "sums over the batch of r[b,t]";
  EXPECT_EQ(clean[1].second, (std::vector<double>{1.0, 0.5}));
  // Adversarial: layer a silent everywhere, layer b fully on at t=1 only.
  const auto adversarial = app::rate_sums_per_step(
      hand_made_taps(std::vector<float>(16, 0.f), {0, 0, 0, 0, /*t1*/ 1, 1, 1, 1}));
  const std::vector<app::LayerTasa> t = app::tasa_from_sums(clean, adversarial, 2);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].clean_t, (std::vector<double>{0.5, 0.5}));
  EXPECT_DOUBLE_EQ(t[0].clean, 0.5);
  EXPECT_DOUBLE_EQ(t[0].adversarial, 0.0);
  EXPECT_DOUBLE_EQ(t[0].abs_diff, 0.5);
  EXPECT_EQ(t[1].clean_t, (std::vector<double>{0.5, 0.25}));
  EXPECT_DOUBLE_EQ(t[1].clean, 0.375);
  EXPECT_EQ(t[1].adversarial_t, (std::vector<double>{0.0, 1.0}));
  EXPECT_DOUBLE_EQ(t[1].adversarial, 0.5);
  EXPECT_DOUBLE_EQ(t[1].abs_diff, 0.125);

  // Accumulating two batches is the mean over all their examples: the same batch twice changes nothing.
  auto twice = clean;
  app::accumulate_rate_sums(twice, clean);
  EXPECT_DOUBLE_EQ(app::tasa_from_sums(twice, twice, 4)[1].clean, 0.375);
  EXPECT_THROW(app::accumulate_rate_sums(twice, {clean[0]}), Error) << "a layer missing in a batch";

  app::TasaResult r;
  r.layers = t;
  r.examples = 2;
  const auto lines = read_lines_of(app::tasa_csv(r));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "layer,tasa_clean,tasa_adv,abs_diff,clean_t0,clean_t1,adv_t0,adv_t1");
  EXPECT_EQ(lines[2], "b,0.375000,0.500000,0.125000,0.500000,0.250000,0.000000,1.000000");
  EXPECT_NE(app::tasa_markdown(r, "pgd").find("| b | 0.3750 | 0.5000 | 0.1250 |"), std::string::npos);
}

// Every tensor of a checkpoint (parameters, BN buffers, optimizer state) as its raw bytes.
std::vector<std::string> tensors_of(const fs::path& checkpoint) {
  std::vector<std::string> out;
  for (const auto& t : load_safetensors(checkpoint.string()).tensors)
    out.emplace_back(static_cast<const char*>(t.tensor.raw_data()), t.tensor.nbytes());
  return out;
}

std::string column(const std::vector<std::vector<std::string>>& rows, size_t row, const std::string& name) {
  const auto it = std::find(rows[0].begin(), rows[0].end(), name);
  EXPECT_NE(it, rows[0].end()) << "missing column " << name;
  const size_t k = size_t(it - rows[0].begin());
  return k < rows[row].size() ? rows[row][k] : std::string();
}

// The tracked numbers are measured from the model alone: a run with --track-robustness ends with the same
// parameters and running statistics, bit for bit, as one without, and its metrics.csv holds the two numbers.
TEST(TrackRobustness, FillsItsColumnsAndLeavesTrainingUnchanged) {
  const fs::path data = write_synthetic_dataset("spikegrad_track_data", 128, 64);
  const fs::path runs = fresh_test_dir("spikegrad_track_runs");
  app::RunConfig c = small_run_config(data, runs, 0, 32, 32);
  c.epochs = 2;  // epoch 2 trains after epoch 1's measurement: a generator draw or a BN update would show
  c.attacks = "none";
  c.obfuscation_checks = false;
  c.select_on_test = true;
  c.eps = "8/255";
  c.name = "off";
  const fs::path off = app::run_train(c);
  c.name = "on";
  c.track_robustness = 48;  // not a multiple of the eval batch: the last batch is cut
  const fs::path on = app::run_train(c);

  const auto a = tensors_of(off / "last.safetensors"), b = tensors_of(on / "last.safetensors");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i] == b[i]) << "tensor " << i << " differs";

  const auto rows_off = read_csv(off / "metrics.csv"), rows_on = read_csv(on / "metrics.csv");
  ASSERT_EQ(rows_off.size(), 3u);
  ASSERT_EQ(rows_on.size(), 3u);
  EXPECT_EQ(rows_off[0], rows_on[0]) << "one column set whether or not the run tracks";
  EXPECT_EQ(column(rows_off, 2, "test_mi_bits"), "") << "empty when off";
  EXPECT_EQ(column(rows_off, 2, "robust_acc"), "");
  EXPECT_EQ(column(rows_off, 2, "test_acc"), column(rows_on, 2, "test_acc"));
  EXPECT_EQ(column(rows_off, 2, "loss"), column(rows_on, 2, "loss"));
  EXPECT_FALSE(column(rows_on, 1, "test_mi_bits").empty()) << "every epoch is measured";
  const double mi = std::stod(column(rows_on, 2, "test_mi_bits"));
  const double robust = std::stod(column(rows_on, 2, "robust_acc"));
  EXPECT_TRUE(mi >= 0 && mi < 9) << mi << ": KDE MI over 256 bins is within [0, 8] bits";
  // 48 examples: the robust accuracy is a whole number of them.
  EXPECT_NEAR(robust * 48 / 100, std::round(robust * 48 / 100), 1e-5) << robust;

  // The row holds what the measurement gives for the epoch's final model (last.safetensors), not a model
  // from before the epoch's training.
  const app::Checkpoint ck = app::read_checkpoint((on / "last.safetensors").string());
  app::RunConfig rc = app::config_for_checkpoint(c, ck.config);
  rc.track_robustness = 48;  // the measurement's settings, as the run had them
  rc.eval_batch = c.eval_batch;
  rc.eps = c.eps;
  const app::Data d = app::load_data(rc, false);
  std::unique_ptr<Model> model = app::build_model(rc, d.test, Device::CPU);
  app::restore_model(*model, ck);
  const app::EpochRobustness again = app::measure_epoch_robustness(*model, d.test, rc);
  EXPECT_EQ(again.examples, 48);
  EXPECT_NEAR(again.test_mi_bits, mi, 1e-6 * std::max(1.0, mi));
  EXPECT_NEAR(again.robust_accuracy, robust, 1e-5);
}

// A run resumed across the upgrade keeps its file's column set: rows without test_mi_bits / robust_acc under a
// header that has none; a new file gets both columns (empty when not tracked).
TEST(TrackRobustness, MetricsRowsFollowTheirFilesHeader) {
  const fs::path dir = fresh_test_dir("spikegrad_metrics_columns");
  fs::create_directories(dir);
  app::EpochMetrics m;
  m.epoch = 1;
  m.loss_parts = {{"loss", 0.5}};
  m.test_mi_bits = 1.25;
  m.robust_accuracy = 40;
  const fs::path old_file = dir / "old.csv";
  {
    std::ofstream(old_file) << "epoch,lr,loss,train_acc,val_acc,test_acc,train_peak_mib,seconds,images_per_s\n";
  }
  app::MetricsFile(old_file.string()).append(m);
  const auto old_rows = read_csv(old_file);
  ASSERT_EQ(old_rows.size(), 2u);
  EXPECT_EQ(old_rows[1].size(), old_rows[0].size());
  const fs::path new_file = dir / "new.csv";
  app::MetricsFile(new_file.string()).append(m);
  m.epoch = 2;
  m.test_mi_bits = m.robust_accuracy = std::nan("");
  app::MetricsFile(new_file.string()).append(m);
  const auto rows = read_csv(new_file);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(column(rows, 1, "test_mi_bits"), "1.25");
  EXPECT_EQ(column(rows, 1, "robust_acc"), "40");
  EXPECT_EQ(column(rows, 2, "test_mi_bits"), "");
  EXPECT_EQ(read_lines(new_file)[2], "2,0,0.5,0,,0,,,0,0,0") << "empty cells; the timing columns stay last";
}

}  // namespace
}  // namespace spikegrad::testing
