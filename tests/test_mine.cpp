// MINE (losses/mine.h): the estimate against the closed-form MI of correlated Gaussians, ≈ 0 on independent
// variables, the moving-average-corrected gradient against finite differences, the features, the state round
// trip, and the trainer with --mi-estimator mine (a tiny run, and exact resume).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "apps/checkpoint.h"
#include "apps/train.h"
#include "losses/mine.h"
#include "models/model.h"
#include "support/cli_runs.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

// x ~ N(0, I_d), z = ρ x + sqrt(1−ρ²) ε: per coordinate a bivariate normal with correlation ρ, so
// I(X;Z) = −(d/2) log2(1 − ρ²) bits.
struct GaussianPairs {
  Tensor x, z;
};
GaussianPairs gaussian_pairs(int64_t batch, int64_t d, double rho, Generator& gen) {
  GaussianPairs g{rand_normal({batch, d}, gen), rand_normal({batch, d}, gen)};
  float* x = g.x.data<float>();
  float* z = g.z.data<float>();
  const float a = float(rho), b = float(std::sqrt(1 - rho * rho));
  for (int64_t i = 0; i < batch * d; ++i) z[i] = a * x[i] + b * z[i];
  return g;
}
double gaussian_mi_bits(int64_t d, double rho) { return -0.5 * double(d) * std::log2(1 - rho * rho); }

// Trains a fresh estimator for `steps` batches of 256 fresh pairs, then returns the mean DV estimate (bits)
// over 16 held-out batches of the same size with the network fixed, and their standard error.
struct Trained {
  double mean, stderr_of_mean;
};
Trained train_on_gaussians(int64_t d, double rho, int steps, uint64_t seed) {
  MineOptions opt;
  opt.lr = 1e-3;  // the paper's 1e-4 needs thousands of steps; the estimator's math is the same
  opt.seed = seed;
  MineEstimator mine(opt, Device::CPU);
  Generator data(seed + 1), perms(seed + 2);
  for (int s = 0; s < steps; ++s) {
    const GaussianPairs g = gaussian_pairs(256, d, rho, data);
    Tape tape;
    mine.estimate(tape, g.x, g.z, perms);
    mine.update();
  }
  double sum = 0, sum_sq = 0;
  const int held_out = 16;
  for (int s = 0; s < held_out; ++s) {
    const GaussianPairs g = gaussian_pairs(256, d, rho, data);
    NoGradGuard ng;
    Tape tape;
    const double v = mine.estimate(tape, g.x, g.z, perms).item();
    sum += v;
    sum_sq += v * v;
  }
  const double mean = sum / held_out;
  const double var = (sum_sq / held_out - mean * mean) * held_out / (held_out - 1);
  return {mean, std::sqrt(std::max(var, 0.0) / held_out)};
}

TEST(Mine, ApproachesTheMutualInformationOfCorrelatedGaussians) {
  for (const auto& [d, rho] : {std::pair<int64_t, double>{2, 0.8}, {10, 0.5}}) {
    const double truth = gaussian_mi_bits(d, rho);
    const Trained t = train_on_gaussians(d, rho, 400, 7);
    std::printf("d=%lld rho=%.1f: true %.4f bits, MINE %.4f ± %.4f bits\n", (long long)d, rho, truth, t.mean,
                t.stderr_of_mean);
    // DV is a lower bound of the true MI for any fixed T; on a finite batch log-mean-exp is biased low, so an
    // estimate may exceed the truth by its sampling error only: 3 standard errors of the held-out mean.
    EXPECT_LE(t.mean, truth + 3 * t.stderr_of_mean);
    // Tightness after 400 steps: within 25% of the truth (measured: see the printed line).
    EXPECT_GE(t.mean, 0.75 * truth);
  }
}

TEST(Mine, IndependentVariablesGiveAboutZero) {
  const Trained t = train_on_gaussians(2, 0.0, 200, 11);
  std::printf("independent: MINE %.4f ± %.4f bits\n", t.mean, t.stderr_of_mean);
  // Any fixed T gives DV <= 0 in expectation here; what remains is training noise (measured |mean| < 0.002).
  EXPECT_LE(std::fabs(t.mean), 0.02);
}


// The statistics network's gradient is MINE's corrected one: mean ∇T_joint − mean(e^T_marg ∇T_marg) / ema,
// checked entry by entry against central differences (float64) of mean T_joint and mean e^T_marg, with an
// ema away from the batch mean so that dropping the correction (or using the plain DV gradient) fails.
TEST(Mine, CorrectedGradientDividesByTheMovingAverage) {
  MineOptions opt;
  opt.hidden = 5;
  opt.seed = 3;
  MineEstimator mine(opt, Device::CPU, DType::F64);
  Generator gen(5);
  const Tensor x = rand_normal({8, 3}, gen, Device::CPU, DType::F64), z = rand_normal({8, 2}, gen, Device::CPU, DType::F64);
  {
    Tape build;
    mine.estimate(build, x, z, gen);  // builds the network
  }
  const Tensor perm = mine.permutation_matrix(MineEstimator::draw_permutation(8, gen));
  auto moments = [&] {  // mean T_joint and mean exp T_marginal, no tape
    NoGradGuard ng;
    Tape none;
    const auto [tj, tm] = mine.statistics(none, x, z, perm, true);
    double a = 0, b = 0;
    for (double v : tj.to_vector<double>()) a += v / 8;
    for (double v : tm.to_vector<double>()) b += std::exp(v) / 8;
    return std::pair<double, double>{a, b};
  };
  const double m = moments().second;
  const double log_ema = std::log(m) + 0.7;  // ema = 2.01 m
  Tape tape;
  const auto [tj, tm] = mine.statistics(tape, x, z, perm, true);
  tape.backward(MineEstimator::corrected_objective(tape, tj, tm, log_ema));
  const double h = 1e-6;
  int checked = 0;
  for (const NamedTensor& p : mine.params()) {
    double* v = p.tensor.data<double>();
    const std::vector<double> g = p.tensor.grad().to_vector<double>();
    for (int64_t i = 0; i < p.tensor.numel(); ++i) {
      const double keep = v[i];
      v[i] = keep + h;
      const auto up = moments();
      v[i] = keep - h;
      const auto down = moments();
      v[i] = keep;
      const double expected = (up.first - down.first) / (2 * h) - (up.second - down.second) / (2 * h) / std::exp(log_ema);
      EXPECT_NEAR(g[size_t(i)], expected, 1e-7 * (1 + std::fabs(expected))) << p.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5 * 3 + 5 * 2 + 5 + 25 + 5 + 5 + 1);
}

// The moving average: the first update sets ema to the batch's mean e^T_marginal m_1; later ones give
// ema_k = (1−r) ema_{k−1} + r m_k, with m_k recomputed here from the same permutation (a copy of the generator).
TEST(Mine, MovingAverageFollowsTheRate) {
  MineOptions opt;
  opt.ema_rate = 0.25;
  MineEstimator mine(opt, Device::CPU, DType::F64);  // float64: the recursion checked to 1e-12
  Generator data(1), perms(2);
  double ema = 0;
  for (int s = 0; s < 4; ++s) {
    GaussianPairs g = gaussian_pairs(64, 2, 0.5, data);
    g.x = g.x.to(DType::F64);
    g.z = g.z.to(DType::F64);
    Generator same = perms;
    Tape tape;
    mine.estimate(tape, g.x, g.z, perms);
    double m = 0;
    {
      NoGradGuard ng;
      Tape none;
      const Tensor perm = mine.permutation_matrix(MineEstimator::draw_permutation(64, same));
      for (double v : mine.statistics(none, g.x, g.z, perm, false).second.to_vector<double>()) m += std::exp(v) / 64;
    }
    mine.update();
    ema = s == 0 ? m : 0.75 * ema + 0.25 * m;
    EXPECT_NEAR(mine.log_ema(), std::log(ema), 1e-12) << "update " << s + 1;
  }
  EXPECT_EQ(mine.updates(), 4);
}

// (T,B,C,H,W) -> (B, C·min(p,H)·min(p,W)) time-averaged, adaptively pooled rates; (T,B,N) -> (B,N).
TEST(Mine, SpatialFeaturesAverageTimeThenPool) {
  Tape tape;
  Tensor s = Tensor::zeros({2, 3, 2, 5, 5});
  float* v = s.data<float>();
  // Example 1, channel 0: spikes at both steps in the top-left pixel, one step in the bottom-right.
  v[((0 * 3 + 1) * 2 + 0) * 25 + 0] = 1;
  v[((1 * 3 + 1) * 2 + 0) * 25 + 0] = 1;
  v[((1 * 3 + 1) * 2 + 0) * 25 + 24] = 1;
  const Tensor f = mine_spatial_features(tape, s, 4);
  ASSERT_EQ(f.shape(), (Shape{3, 2 * 4 * 4}));
  const std::vector<float> got = f.to_vector<float>();
  // 5 -> 4 adaptive bins: bin 0 covers rows/cols [0,2), bin 3 covers [3,5); each bin averages 4 pixels.
  EXPECT_FLOAT_EQ(got[1 * 32 + 0], 1.0f / 4);
  EXPECT_FLOAT_EQ(got[1 * 32 + 15], 0.5f / 4);
  EXPECT_FLOAT_EQ(got[0 * 32 + 0], 0.0f);
  const Tensor small = mine_spatial_features(tape, Tensor::full({2, 3, 1, 2, 2}, 1.0), 4);
  EXPECT_EQ(small.shape(), (Shape{3, 4})) << "pooling never enlarges a map";
  EXPECT_EQ(mine_spatial_features(tape, Tensor::full({4, 3, 7}, 1.0), 4).shape(), (Shape{3, 7}));
  EXPECT_THROW(mine_spatial_features(tape, Tensor::zeros({3, 7}), 4), Error);
}

// State round trip through a checkpoint file: a restored estimator continues exactly as the original.
TEST(Mine, CheckpointRoundTripContinuesExactly) {
  MineOptions opt;
  opt.seed = 9;
  MineEstimator a(opt, Device::CPU);
  Generator data(4), perms(5);
  for (int s = 0; s < 3; ++s) {
    const GaussianPairs g = gaussian_pairs(32, 2, 0.6, data);
    Tape tape;
    a.estimate(tape, g.x, g.z, perms);
    a.update();
  }
  const fs::path dir = fresh_test_dir("spikegrad_mine_ckpt");
  fs::create_directories(dir);
  const std::string path = (dir / "m.safetensors").string();
  ModelConfig mc;
  mc.time_steps = 2;
  auto model = make_model("small_cnn", mc);
  app::RunConfig cfg;
  cfg.mi_estimator = "mine";
  app::save_checkpoint(path, *model, nullptr, cfg, app::TrainProgress(), {}, &a);
  const app::Checkpoint ck = app::read_checkpoint(path);
  EXPECT_NO_THROW(app::restore_model(*model, ck)) << "the model loads with mine.* entries beside it";
  MineEstimator b(opt, Device::CPU);
  opt.seed = 10;  // a different initialisation: everything must come from the file
  MineEstimator c(opt, Device::CPU);
  app::restore_mine(b, ck);
  app::restore_mine(c, ck);
  EXPECT_EQ(b.updates(), 3);
  EXPECT_EQ(b.log_ema(), a.log_ema());
  const GaussianPairs g = gaussian_pairs(32, 2, 0.6, data);
  Generator pa = perms, pc = perms;
  double va, vc;
  {
    Tape t1, t2;
    a.estimate(t1, g.x, g.z, pa);
    c.estimate(t2, g.x, g.z, pc);
    va = a.update();
    vc = c.update();
  }
  EXPECT_EQ(va, vc);
  const NamedTensors sa = a.state(), sc = c.state();
  ASSERT_EQ(sa.size(), sc.size());
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_EQ(0, std::memcmp(sa[i].tensor.raw_data(), sc[i].tensor.raw_data(), sa[i].tensor.nbytes())) << sa[i].name;
  // A checkpoint without MINE state leaves the estimator unbuilt.
  app::save_checkpoint(path, *model, nullptr, cfg, app::TrainProgress());
  MineEstimator fresh(opt, Device::CPU);
  app::restore_mine(fresh, app::read_checkpoint(path));
  EXPECT_FALSE(fresh.built());
}

// CUDA runs the same ops: the estimate, the corrected gradient and the update's bound and moving average agree
// with the CPU to float32 rounding (GEMMs sum in another order), with the same initialisation and permutation.
// Parameters after an Adam step are not compared: Adam's first step is ±lr for any gradient entry, so an entry
// near zero may flip sign between two valid roundings.
TEST(Mine, CudaMatchesCpu) {
  if (!cuda_ok()) GTEST_SKIP() << "no CUDA device";
  MineOptions opt;
  opt.hidden = 16;
  MineEstimator cpu(opt, Device::CPU), gpu(opt, Device::CUDA);
  Generator data(3), perms_cpu(4), perms_gpu(4);
  const GaussianPairs g = gaussian_pairs(37, 3, 0.6, data);  // an odd batch
  const Tensor gx = g.x.to(Device::CUDA), gz = g.z.to(Device::CUDA);
  Tape t1, t2;
  EXPECT_NEAR(cpu.estimate(t1, g.x, g.z, perms_cpu).item(), gpu.estimate(t2, gx, gz, perms_gpu).item(), 1e-5);
  Generator same(4);
  const std::vector<int64_t> perm = MineEstimator::draw_permutation(37, same);
  for (MineEstimator* m : {&cpu, &gpu}) {
    const bool on_gpu = m == &gpu;
    Tape tape;
    const auto [tj, tm] = m->statistics(tape, on_gpu ? gx : g.x, on_gpu ? gz : g.z, m->permutation_matrix(perm), true);
    tape.backward(MineEstimator::corrected_objective(tape, tj, tm, 0.3));
  }
  for (size_t i = 0; i < cpu.params().size(); ++i) {
    const std::vector<float> a = cpu.params()[i].tensor.grad().to_vector<float>();
    const std::vector<float> b = gpu.params()[i].tensor.grad().to_vector<float>();
    for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-5) << cpu.params()[i].name << "[" << k << "]";
    Tensor(cpu.params()[i].tensor).zero_grad();
    Tensor(gpu.params()[i].tensor).zero_grad();
  }
  EXPECT_NEAR(cpu.update(), gpu.update(), 1e-5);
  EXPECT_NEAR(cpu.log_ema(), gpu.log_ema(), 1e-5);
}

class MineTraining : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = write_synthetic_dataset("spikegrad_mine_data", 448, 96); }
  void SetUp() override { runs_ = fresh_test_dir("spikegrad_mine_runs"); }
  // small_cnn, T = 2, 2 steps of 32 per epoch, 2 epochs.
  app::RunConfig base() const {
    app::RunConfig c = small_run_config(data_, runs_, 64, 16, 64);
    c.train_subset = 64;
    c.mi_estimator = "mine";
    c.mine_lr = 1e-3;
    return c;
  }
  static fs::path data_;
  fs::path runs_;
};
fs::path MineTraining::data_;

// 2 steps, then --resume for 2 more, equals 4 uninterrupted steps bit for bit: model, optimizer, the MINE
// network, its Adam state and moving average (all in last.safetensors), and every metrics.csv value.
TEST_F(MineTraining, ResumeReproducesAnUninterruptedRun) {
  app::RunConfig full = base();
  full.name = "full";
  const fs::path a = app::run_train(full);
  app::RunConfig part = base();
  part.name = "part";
  part.epochs = 1;
  app::run_train(part);
  app::RunConfig again = base();
  again.name = "part";
  again.resume = true;
  const fs::path b = app::run_train(again);
  expect_same_run_results(a, b);
  const app::Checkpoint ck = app::read_checkpoint((a / "last.safetensors").string());
  bool has_mine = false;
  for (const NamedTensor& t : ck.file.tensors) has_mine = has_mine || t.name == "mine.fc1_x.weight";
  EXPECT_TRUE(has_mine);
  EXPECT_EQ(ck.metadata["mine"]["hyper"]["step_count"].get<double>(), 4.0) << "one statistics step per SNN step";
  const auto rows = read_csv(a / "metrics.csv");
  const auto it = std::find(rows[0].begin(), rows[0].end(), "mi_bits");
  ASSERT_NE(it, rows[0].end());
  EXPECT_TRUE(std::isfinite(std::stod(rows[1][size_t(it - rows[0].begin())])));
}

// The command line as a user runs it, and eval on its checkpoint (which carries mine.* entries).
TEST_F(MineTraining, CliTrainsAndEvaluates) {
  std::string err;
  const std::string common = " --device cpu --data-dir " + data_.string() + " --runs-dir " + runs_.string();
  ASSERT_EQ(run_cli("train --mi-estimator mine --mine-hidden 16 --mine-pool 2 --mine-lr 1e-3 --mine-ema 0.05 "
                    "--val-size 64 --train-subset 64 --T 2 --batch 32 --epochs 1 --attack-subset 8 --no-progress --name cli" +
                        common,
                    &err),
            0)
      << err;
  EXPECT_EQ(run_cli("eval --device cpu --attack-subset 8 --checkpoint " + (runs_ / "cli" / "best.safetensors").string(), &err), 0)
      << err;
  EXPECT_EQ(run_cli("train --mi-estimator mien" + common, &err), 2);
  EXPECT_NE(err.find("--mi-estimator"), std::string::npos) << err;
}

}  // namespace
}  // namespace spikegrad::testing
