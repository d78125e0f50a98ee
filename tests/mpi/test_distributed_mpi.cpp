// Data-parallel training with 2 ranks (ctest label `mpi`: `mpirun -np 2 spikegrad_mpi_tests`, README
// "Scaling out"). Every rank runs every test in the same order; a test that needs one process's reference
// computes it on each rank locally, with no communication.
//   - N = 2 with --sync-bn and B/2 each equals one process with B: loss, gradients and parameters after
//     several optimizer steps (float tolerance: only the order of the sums over the ranks differs);
//   - the same run twice with N = 2 is bit-identical (parameters and gradients; whole run folders);
//   - run_train: N = 2 matches N = 1 epoch by epoch; rank 1 writes nothing; ranks that disagree on the config
//     stop with an error naming the rank.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "apps/setup.h"
#include "apps/train.h"
#include "datasets/loader.h"
#include "engine/distributed.h"
#include "engine/distributed_gradients.h"
#include "losses/losses.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

dist::Communicator& ranks() { return dist::world(); }

// A folder every rank sees: rank 0 names (and empties) it, the others take rank 0's name.
fs::path shared_dir(const std::string& stem) {
  std::string path;
  if (ranks().rank() == 0) {
    path = fresh_test_dir(stem).string();
    fs::create_directories(path);
  }
  return ranks().broadcast(path, "the test folder's name");
}

// Rank 0 writes a small 12x12 dataset into a shared folder; all ranks use it.
fs::path shared_dataset(const std::string& stem, int train, int test) {
  const fs::path dir = shared_dir(stem) / "data";
  if (ranks().rank() == 0) {
    fs::create_directories(dir);
    write_synthetic_idx(dir, "train", train, 1, 12);
    write_synthetic_idx(dir, "t10k", test, 2, 12);
  }
  ranks().agree_with_rank0("", "the dataset written by rank 0");
  return dir;
}

#define SKIP_UNLESS_TWO_RANKS()                                                       \
  if (ranks().size() != 2) GTEST_SKIP() << "run under mpirun -np 2 (ctest -L mpi)"; \
  static_assert(true)

// This rank's half of the first batch of the training order (the shard a 2-rank run trains on first).
Batch this_ranks_first_batch(const Dataset& train, const app::RunConfig& c) {
  LoaderOptions lo = LoaderOptions::training(train, c.batch, c.seed);
  lo.shard_rank = ranks().rank();
  lo.shard_count = 2;
  Loader loader(train, lo);
  Batch batch;
  // A throw ends the calling test as a failure, as an ASSERT in its body would.
  if (!loader.next(batch)) throw std::runtime_error("the loader gave no first batch");
  return batch;
}

struct Replica {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer> optimizer;
};

Replica make_replica(const app::RunConfig& c, const Dataset& train) {
  Replica r;
  r.model = app::build_model(c, train, Device::CPU);
  r.optimizer = app::build_optimizer(c, *r.model);
  return r;
}

std::vector<std::vector<float>> gradients(const Replica& r) {
  std::vector<std::vector<float>> g;
  for (const NamedTensor& p : r.optimizer->params()) g.push_back(p.tensor.grad().to_vector<float>());
  return g;
}
std::vector<std::vector<float>> parameters(const Replica& r) {
  std::vector<std::vector<float>> v;
  for (const NamedTensor& p : r.model->state()) v.push_back(p.tensor.to_vector<float>());
  return v;
}

// |a - b| <= 1e-5 + 1e-4·|b| everywhere: float rounding of sums taken in another order, nothing more.
void expect_close(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t t = 0; t < a.size(); ++t) {
    ASSERT_EQ(a[t].size(), b[t].size());
    for (size_t i = 0; i < a[t].size(); ++i)
      ASSERT_LE(std::fabs(a[t][i] - b[t][i]), 1e-5 + 1e-4 * std::fabs(b[t][i]))
          << what << ": tensor " << t << " element " << i << ": " << a[t][i] << " vs " << b[t][i];
  }
}

struct StepRecord {
  std::vector<double> losses;                     // the global batch's mean loss per step
  std::vector<std::vector<std::vector<float>>> grads;  // averaged gradients per step
  std::vector<std::vector<float>> final_params;
};

// `steps` SGD steps of small_cnn (with BN) with CE + TMI on batches of 16; `comm` null: one process on the whole
// batch; else this rank's half with --sync-bn and gradient averaging.
StepRecord train_steps(const app::RunConfig& c, const Dataset& train, const dist::Communicator* comm, int steps) {
  Replica r = make_replica(c, train);
  dist::BatchNormSum bn_sum(comm ? *comm : ranks());
  std::unique_ptr<dist::GradientAverager> averager;
  if (comm) {
    r.model->set_cross_replica(&bn_sum);
    averager = std::make_unique<dist::GradientAverager>(*comm, r.optimizer->params(), /*bucket_bytes=*/16 << 10);
  }
  LoaderOptions lo = LoaderOptions::training(train, c.batch, c.seed);
  if (comm) {
    lo.shard_rank = comm->rank();
    lo.shard_count = comm->size();
  }
  Loader loader(train, lo);
  LossConfig lcfg;
  lcfg.mi_lambda = c.mi_lambda;
  StepRecord rec;
  Batch batch;
  for (int s = 0; s < steps && loader.next(batch); ++s) {
    Tape tape;
    ForwardResult out = r.model->forward(tape, batch.images, taps_needed(lcfg));
    const LossParts parts = compute_loss(tape, out.logits, batch.labels, out.taps, lcfg);
    if (averager) {
      tape.backward(parts.total, [&](const Tensor& leaf) { averager->gradient_final(leaf); });
      averager->finish();
    } else {
      tape.backward(parts.total);
    }
    double loss_total = parts.total.item() * double(batch.labels.numel());
    if (comm) comm->sum(&loss_total, 1, "the test's loss");
    rec.losses.push_back(loss_total / double(c.batch));
    rec.grads.push_back(gradients(r));
    r.optimizer->step();
    r.optimizer->zero_grad();
  }
  rec.final_params = parameters(r);
  return rec;
}

app::RunConfig step_config() {
  app::RunConfig c;
  c.model = "small_cnn";
  c.time_steps = 2;
  c.batch = 16;
  // SGD with momentum, not Adam: a conv bias feeding BN has a gradient that is rounding noise (BN cancels
  // it), and Adam's m/sqrt(v) turns noise of any size into lr-sized steps, so its parameters would differ by
  // ~lr however exact the sums; SGD maps a gradient difference of 1e-7 to a parameter difference of ~lr·1e-7.
  c.optimizer = "sgd";
  c.lr = 0.05;
  c.device = "cpu";
  c.val_size = 0;
  c.mi_lambda = 0.05;  // TMI on: its KDE-MI is a mean over examples, so it decomposes over the ranks too
  return c;
}

TEST(TwoRanks, SyncBnWithHalfTheBatchEachMatchesOneProcessWithTheWholeBatch) {
  SKIP_UNLESS_TWO_RANKS();
  app::RunConfig c = step_config();
  c.data_dir = shared_dataset("mpi_steps", 96, 16).string();
  const Dataset train = app::load_data(c, true).train;
  const StepRecord one = train_steps(c, train, nullptr, 4);
  const StepRecord two = train_steps(c, train, &ranks(), 4);
  ASSERT_EQ(one.losses.size(), 4u);
  ASSERT_EQ(two.losses.size(), 4u);
  for (size_t s = 0; s < one.losses.size(); ++s) {
    EXPECT_NEAR(two.losses[s], one.losses[s], 1e-5 * std::fabs(one.losses[s])) << "step " << s;
    expect_close(two.grads[s], one.grads[s], "gradients of step " + std::to_string(s));
  }
  expect_close(two.final_params, one.final_params, "parameters and BN buffers after 4 steps");
}

// Plain DDP's per-rank statistics do differ (else the test above would prove nothing about --sync-bn).
TEST(TwoRanks, WithoutSyncBnTheStatisticsArePerRankAndDiffer) {
  SKIP_UNLESS_TWO_RANKS();
  app::RunConfig c = step_config();
  c.data_dir = shared_dataset("mpi_nosync", 48, 16).string();
  const Dataset train = app::load_data(c, true).train;
  const StepRecord one = train_steps(c, train, nullptr, 1);
  // The same two-rank steps with per-rank BN: no cross-replica sum.
  Replica r = make_replica(c, train);
  dist::GradientAverager averager(ranks(), r.optimizer->params());
  const Batch batch = this_ranks_first_batch(train, c);
  Tape tape;
  LossConfig lcfg;
  lcfg.mi_lambda = c.mi_lambda;
  ForwardResult out = r.model->forward(tape, batch.images, taps_needed(lcfg));
  tape.backward(compute_loss(tape, out.logits, batch.labels, out.taps, lcfg).total,
                [&](const Tensor& leaf) { averager.gradient_final(leaf); });
  averager.finish();
  double max_difference = 0;
  const auto g = gradients(r);
  for (size_t t = 0; t < g.size(); ++t)
    for (size_t i = 0; i < g[t].size(); ++i)
      max_difference = std::max(max_difference, double(std::fabs(g[t][i] - one.grads[0][t][i])));
  EXPECT_GT(max_difference, 1e-4);
}

TEST(TwoRanks, TheSameStepsTwiceAreBitIdentical) {
  SKIP_UNLESS_TWO_RANKS();
  app::RunConfig c = step_config();
  c.data_dir = shared_dataset("mpi_bits", 64, 16).string();
  const Dataset train = app::load_data(c, true).train;
  const StepRecord a = train_steps(c, train, &ranks(), 3);
  const StepRecord b = train_steps(c, train, &ranks(), 3);
  EXPECT_EQ(a.losses, b.losses);
  EXPECT_EQ(a.grads, b.grads);
  EXPECT_EQ(a.final_params, b.final_params);
}

TEST(TwoRanks, BucketsStartDuringBackwardAsTheirGradientsBecomeFinal) {
  SKIP_UNLESS_TWO_RANKS();
  app::RunConfig c = step_config();
  c.data_dir = shared_dataset("mpi_overlap", 32, 16).string();
  const Dataset train = app::load_data(c, true).train;
  Replica r = make_replica(c, train);
  // 4 KiB buckets: small_cnn's 7,786 parameters make several, the classifier's first.
  dist::GradientAverager averager(ranks(), r.optimizer->params(), /*bucket_bytes=*/4 << 10);
  ASSERT_GE(averager.num_buckets(), 3);
  const Batch batch = this_ranks_first_batch(train, c);
  Tape tape;
  LossConfig lcfg;
  lcfg.mi_lambda = 0;
  ForwardResult out = r.model->forward(tape, batch.images, taps_needed(lcfg));
  std::vector<int64_t> started_at_each_hook;
  tape.backward(compute_loss(tape, out.logits, batch.labels, out.taps, lcfg).total, [&](const Tensor& leaf) {
    averager.gradient_final(leaf);
    started_at_each_hook.push_back(averager.buckets_started());
  });
  // Started one by one while backward went on: the first before the last gradient was final, all by the end.
  ASSERT_FALSE(started_at_each_hook.empty());
  EXPECT_GE(started_at_each_hook.front(), 0);
  EXPECT_LT(started_at_each_hook[started_at_each_hook.size() / 2], averager.num_buckets());
  EXPECT_GT(started_at_each_hook[started_at_each_hook.size() / 2], 0);
  EXPECT_TRUE(std::is_sorted(started_at_each_hook.begin(), started_at_each_hook.end()));
  EXPECT_EQ(started_at_each_hook.back(), averager.num_buckets());
  averager.finish();
  EXPECT_EQ(averager.buckets_started(), 0);  // reset for the next step
}

app::RunConfig run_config(const fs::path& data, const fs::path& runs) {
  app::RunConfig c = small_run_config(data, runs, /*val_size=*/32, /*attack_subset=*/16, /*eval_batch=*/64);
  c.batch = 16;
  c.attacks = "fgsm";
  c.eps = "4/255";
  c.obfuscation_checks = false;
  return c;
}

// Every metrics.csv cell but the timing and memory columns, within float tolerance.
void expect_same_metrics(const fs::path& a, const fs::path& b) {
  const auto x = read_csv(a / "metrics.csv"), y = read_csv(b / "metrics.csv");
  ASSERT_EQ(x.size(), y.size());
  ASSERT_GE(x.size(), 2u);
  for (size_t row = 1; row < x.size(); ++row)
    for (size_t col = 0; col < x[0].size(); ++col) {
      const std::string& name = x[0][col];
      if (name == "seconds" || name == "images_per_s" || name == "train_peak_mib") continue;
      if (x[row][col].empty() || y[row][col].empty()) {  // a column the run does not measure (--track-robustness)
        EXPECT_EQ(x[row][col], y[row][col]) << name << " of epoch " << row;
        continue;
      }
      const double u = std::stod(x[row][col]), v = std::stod(y[row][col]);
      EXPECT_NEAR(u, v, 1e-4 * std::max(1.0, std::fabs(v))) << name << " of epoch " << row;
    }
}

TEST(TwoRanksRunTrain, MatchesOneProcessEpochByEpochAndOnlyRankZeroWrites) {
  SKIP_UNLESS_TWO_RANKS();
  const fs::path base = shared_dir("mpi_run");
  const fs::path data = shared_dataset("mpi_run_data", 160, 48);
  app::RunConfig c = run_config(data, base / "runs");
  c.sync_bn = true;
  app::RunConfig mine = c;
  if (ranks().rank() == 1) mine.runs_dir = (base / "rank1_runs").string();  // paths may differ per rank
  const std::string folder = app::run_train(mine, app::GivenSettings(), ranks());
  EXPECT_EQ(folder, (fs::path(mine.runs_dir) / "run").string());
  if (ranks().rank() == 1) EXPECT_FALSE(fs::exists(base / "rank1_runs")) << "rank 1 wrote into its run folder";
  if (ranks().rank() == 0) {
    dist::Communicator one_process;
    app::RunConfig solo = c;
    solo.name = "solo";
    app::run_train(solo, app::GivenSettings(), one_process);
    expect_same_metrics(base / "runs" / "run", base / "runs" / "solo");
    EXPECT_TRUE(fs::exists(base / "runs" / "run" / "report.md"));
  }
  ranks().agree_with_rank0("", "the end of the test");
}

TEST(TwoRanksRunTrain, TwoRunsAreBitIdenticalAndAResumeWithOneProcessContinuesThem) {
  SKIP_UNLESS_TWO_RANKS();
  const fs::path base = shared_dir("mpi_twice");
  const fs::path data = shared_dataset("mpi_twice_data", 96, 32);
  app::RunConfig c = run_config(data, base / "runs");
  c.epochs = 1;
  c.name = "a";
  app::run_train(c, app::GivenSettings(), ranks());
  c.name = "b";
  app::run_train(c, app::GivenSettings(), ranks());
  if (ranks().rank() == 0) {
    expect_same_run_results(base / "runs" / "a", base / "runs" / "b");
    // The run goes on with one process (--batch is global, the checkpoint's position is in global batches).
    dist::Communicator one_process;
    app::RunConfig more = c;
    more.name = "a";
    more.resume = true;
    more.epochs = 2;
    app::GivenSettings given;
    given.all = false;
    given.keys = {"epochs"};
    app::run_train(more, given, one_process);
    EXPECT_EQ(read_csv(base / "runs" / "a" / "metrics.csv").size(), 3u);
  }
  ranks().agree_with_rank0("", "the end of the test");
}

TEST(TwoRanksRunTrain, RanksThatDisagreeOnTheConfigStopWithAnErrorNamingTheRank) {
  SKIP_UNLESS_TWO_RANKS();
  const fs::path base = shared_dir("mpi_disagree");
  const fs::path data = shared_dataset("mpi_disagree_data", 64, 16);
  app::RunConfig c = run_config(data, base / "runs");
  if (ranks().rank() == 1) c.lr = 1e-2;
  try {
    app::run_train(c, app::GivenSettings(), ranks());
    ADD_FAILURE() << "the run started";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank(s) 1 of 2 run a different config"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace spikegrad::testing
