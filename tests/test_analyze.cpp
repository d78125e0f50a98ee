// `spikegrad analyze` (apps/analyze.h): the metric functions on hand-made gradients (zero fractions per time
// step, s_eff, thresholded counts, structural zeros of conv taps), R on a linear loss computable by hand,
// Tape::grad for non-leaf tensors (what the analyzer asks of the tape), and the command end to end on a tiny
// trained small_cnn: the CSV columns, and BN train mode leaving the running statistics unchanged.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "apps/analyze.h"
#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/gradient_stats.h"
#include "apps/setup.h"
#include "apps/train.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "support/cli_runs.h"
#include "support/model_config.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;
using app::gradient_stats;

TEST(GradientStats, ZeroFractionsPerStepNormsAndThresholds) {
  // Two time steps (time-major rows): step 0 = {0, 1, 0, -2}, step 1 = {0, 0, 3, 0}.
  const Tensor g = Tensor::from_vector<float>({0, 1, 0, -2, 0, 0, 3, 0}, {4, 2});
  const app::GradientStats s = gradient_stats({g}, 2);
  EXPECT_EQ(s.numel, 8);
  EXPECT_DOUBLE_EQ(s.zero_fraction(), 5.0 / 8);
  ASSERT_EQ(s.zero_fraction_per_step().size(), 2u);
  EXPECT_DOUBLE_EQ(s.zero_fraction_per_step()[0], 2.0 / 4);
  EXPECT_DOUBLE_EQ(s.zero_fraction_per_step()[1], 3.0 / 4);
  EXPECT_DOUBLE_EQ(s.norm(), std::sqrt(14.0));
  EXPECT_DOUBLE_EQ(s.effective_support(), 36.0 / 14.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.fraction_above(0), 3.0 / 8);  // |g| > 3e-6: the three non-zeros
  // 1e-3 · max = 3e-3: an entry of 2e-3 is below it, one of 4e-3 above.
  const app::GradientStats t = gradient_stats({Tensor::from_vector<float>({2e-3f, 4e-3f, 3.f, 0.f}, {4})}, 1);
  EXPECT_DOUBLE_EQ(t.fraction_above(0), 3.0 / 4);
  EXPECT_DOUBLE_EQ(t.fraction_above(1), 2.0 / 4);
  // Two parts (a merge's operands) read as one vector; a dim 0 that does not split into S steps has no per-step list.
  const app::GradientStats both = gradient_stats({g, Tensor::zeros({2, 2})}, 2);
  EXPECT_DOUBLE_EQ(both.zero_fraction(), 9.0 / 12);
  EXPECT_DOUBLE_EQ(both.zero_fraction_per_step()[1], 5.0 / 6);
  EXPECT_TRUE(gradient_stats({Tensor::zeros({3, 2})}, 2).zero_fraction_per_step().empty());
}

TEST(GradientStats, EffectiveSupportIsOneForFlatAndOneOverDForOneHot) {
  const int64_t d = 50;
  EXPECT_NEAR(gradient_stats({Tensor::full({d}, -0.3)}, 1).effective_support(), 1.0, 1e-12);
  std::vector<float> one_hot(size_t(d), 0.f);
  one_hot[17] = 5.f;
  EXPECT_NEAR(gradient_stats({Tensor::from_vector(one_hot, {d})}, 1).effective_support(), 1.0 / double(d), 1e-12);
  const app::GradientStats zero = gradient_stats({Tensor::zeros({d})}, 1);
  EXPECT_EQ(zero.effective_support(), 0.0);
  EXPECT_EQ(zero.fraction_above(0), 0.0);
  EXPECT_EQ(zero.zero_fraction(), 1.0);
}

int64_t count(const std::vector<bool>& taps) { return std::count(taps.begin(), taps.end(), true); }

TEST(GradientStats, StructuralZeroTapsOfSmallMaps) {
  // 3x3 p1 on a 1x1 map: only the centre tap sees the pixel (8/9 structural, gradient_sparsity.md §2.2).
  const std::vector<bool> one = app::conv_taps_seeing_data(3, 1, 1, 1, 1);
  EXPECT_EQ(count(one), 1);
  EXPECT_TRUE(one[4]);
  // The stride-2 first conv of a block, 2x2 -> 1x1: rows/columns 1 and 2 see data (5/9 structural).
  const std::vector<bool> strided = app::conv_taps_seeing_data(3, 2, 1, 2, 2);
  EXPECT_EQ(count(strided), 4);
  EXPECT_FALSE(strided[0] || strided[1] || strided[2] || strided[3] || strided[6]);
  // An ordinary 3x3 p1 on 8x8: every tap sees data.
  EXPECT_EQ(count(app::conv_taps_seeing_data(3, 1, 1, 8, 8)), 9);
  EXPECT_EQ(count(app::conv_taps_seeing_data(3, 2, 1, 8, 8)), 9);
  EXPECT_THROW(app::conv_taps_seeing_data(0, 1, 1, 8, 8), Error);

  // A (2,1,3,3) weight gradient on the 1x1 map: output channel 0 got gradient at its centre tap, channel 1 none.
  std::vector<float> gw(18, 0.f);
  gw[4] = 0.5f;
  const app::WeightZeros w = app::weight_zeros(Tensor::from_vector(gw, {2, 1, 3, 3}), one);
  EXPECT_DOUBLE_EQ(w.zero_fraction(), 17.0 / 18);
  EXPECT_DOUBLE_EQ(w.structural_fraction(), 16.0 / 18);
  EXPECT_DOUBLE_EQ(w.nonstructural_zero_fraction(), 1.0 / 2);
  const app::WeightZeros dense = app::weight_zeros(Tensor::from_vector(gw, {2, 9}), {});
  EXPECT_EQ(dense.structural, 0);
  EXPECT_DOUBLE_EQ(dense.nonstructural_zero_fraction(), 17.0 / 18);
}

double dot(const Tensor& a, const std::vector<float>& w) {
  const std::vector<float> v = a.to_vector<float>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * double(w[i]);
  return s;
}

TEST(GradientStats, SignRatioOnALinearLossByHand) {
  // ℓ(x) = w·x, so g = w; x in the interior so that ε-steps are not clamped.
  const std::vector<float> w{2.f, 0.f, -1.f, 0.5f, 0.f, 0.f};
  const Tensor x = Tensor::full({2, 3}, 0.5);
  const Tensor g = Tensor::from_vector(w, {2, 3});
  const double eps = 0.01;
  const double clean = dot(x, w);
  const double adversarial = dot(app::signed_step(x, g, eps), w);
  EXPECT_NEAR(adversarial - clean, eps * 3.5, 1e-6) << "FGSM gains ε·‖g‖₁";
  const std::vector<Tensor> signs = app::random_sign_vectors(x.shape(), 8, 7, Device::CPU);
  ASSERT_EQ(signs.size(), 8u);
  std::vector<double> random;
  double expected_mean = 0, expected_abs = 0;
  for (const Tensor& s : signs) {
    for (float v : s.to_vector<float>()) ASSERT_TRUE(v == 1.f || v == -1.f);
    random.push_back(dot(app::signed_step(x, s, eps), w));
    const double by_hand = eps * dot(s, w);  // ℓ(x + ε s) − ℓ(x) = ε ⟨s, w⟩
    expected_mean += by_hand / 8;
    expected_abs += std::fabs(by_hand) / 8;
  }
  const app::SignRatio r = app::sign_ratio(clean, adversarial, random);
  EXPECT_NEAR(r.random_increase, expected_mean, 1e-6);
  EXPECT_NEAR(r.random_abs_increase, expected_abs, 1e-6);
  EXPECT_NEAR(r.abs_ratio, eps * 3.5 / expected_abs, 1e-3);
  // First order: ε‖g‖₁ / E|ε⟨s,g⟩| <= √(2‖g‖₀) holds for the exact expectation; a one-hot g makes it 1 exactly.
  const double one_hot_ratio = app::sign_ratio(0, 2 * eps, {2 * eps, -2 * eps, 2 * eps}).abs_ratio;
  EXPECT_DOUBLE_EQ(one_hot_ratio, 1.0);
  EXPECT_TRUE(std::isnan(app::sign_ratio(0, 1, {0, 0}).ratio)) << "no random change: R is undefined, not infinite";
  // Same seed, same signs; the sign vectors differ from each other.
  EXPECT_EQ(app::random_sign_vectors(x.shape(), 8, 7, Device::CPU)[3].to_vector<float>(), signs[3].to_vector<float>());
  EXPECT_NE(signs[0].to_vector<float>(), signs[1].to_vector<float>());
  // The attack clamps to [0,1].
  const Tensor edge = app::signed_step(Tensor::full({2}, 1.0), Tensor::full({2}, 1.0), 0.5);
  EXPECT_EQ(edge.to_vector<float>(), (std::vector<float>{1.f, 1.f}));
}

TEST(GradientStats, TapeGradReachesNonLeafTensors) {
  // loss = sum((3x)^2): d/dy = 2y at y = 3x, d/dx = 18x; asked together and one at a time.
  Tape tape;
  Tensor x = Tensor::from_vector<float>({1.f, -2.f}, {2});
  x.set_requires_grad(true);
  const Tensor y = ops::scale(tape, x, 3.0);
  const Tensor loss = ops::sum(tape, ops::mul(tape, y, y));
  const std::vector<Tensor> both = tape.grad(loss, {y, x, y});
  EXPECT_EQ(both[0].to_vector<float>(), (std::vector<float>{6.f, -12.f}));
  EXPECT_EQ(both[1].to_vector<float>(), (std::vector<float>{18.f, -36.f}));
  EXPECT_EQ(both[2].to_vector<float>(), both[0].to_vector<float>());
  EXPECT_EQ(tape.grad(loss, {y})[0].to_vector<float>(), (std::vector<float>{6.f, -12.f}));
  EXPECT_FALSE(x.grad().defined()) << "grad() leaves .grad() alone";
}

class Analyze : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = write_synthetic_dataset("spikegrad_analyze_data", 256, 64);
    // Per process (fresh_test_dir needs a running test): ctest runs this suite's tests in parallel processes.
    runs_ = fs::path(::testing::TempDir()) / ("spikegrad_analyze_runs_" + std::to_string(getpid()));
    fs::remove_all(runs_);
    app::RunConfig c = small_run_config(data_, runs_, 64, 32, 32);
    c.epochs = 1;
    c.attacks = "none";
    c.obfuscation_checks = false;
    checkpoint_ = (fs::path(app::run_train(c)) / "best.safetensors").string();
  }
  static app::RunConfig flags() {
    app::RunConfig f = small_run_config(data_, runs_, 64, 32, 32);
    f.checkpoint = checkpoint_;
    f.eps = "8/255";
    return f;
  }
  static fs::path data_, runs_;
  static std::string checkpoint_;
};
fs::path Analyze::data_, Analyze::runs_;
std::string Analyze::checkpoint_;

std::vector<std::string> header_of(const fs::path& csv) { return read_csv(csv).at(0); }

TEST_F(Analyze, WritesTheReportAndItsCsvColumns) {
  app::AnalyzeOptions o;
  o.batches = 2;
  o.out = (runs_ / "analysis_eval").string();
  app::run_analyze(flags(), o);
  const fs::path out = o.out;
  for (const char* f : {"analysis.md", "layers.csv", "summary.csv"}) EXPECT_TRUE(fs::exists(out / f)) << f;
  const auto layers = read_csv(out / "layers.csv");
  EXPECT_EQ(layers.at(0),
            (std::vector<std::string>{"layer", "kind", "shape", "z_in", "z_out", "z_in_t", "z_out_t", "grad_in_norm",
                                      "s_eff_in", "frac_in_above_1e-6", "frac_in_above_1e-3", "weight", "z_w",
                                      "z_w_structural", "z_w_nonstructural", "rate", "mi_bits_first"}));
  ASSERT_GT(layers.size(), 2u) << "small_cnn records its layers (models/trace.h)";
  EXPECT_EQ(layers[1][1], "input");
  bool conv = false, neuron = false;
  for (size_t i = 1; i < layers.size(); ++i) {
    // (read_csv drops a row's trailing empty cells: the input record has no MI.)
    ASSERT_LE(layers[i].size(), layers[0].size()) << "row " << i;
    ASSERT_GE(layers[i].size(), 12u) << "row " << i;
    if (layers[i][1] == "conv") {
      conv = true;
      EXPECT_FALSE(layers[i][12].empty()) << "z_w of " << layers[i][0];
    }
    if (layers[i][1] == "neuron") {
      neuron = true;
      EXPECT_FALSE(layers[i][15].empty()) << "rate of " << layers[i][0];
    }
    if (layers[i][1] == "neuron" || layers[i][1] == "conv")
      EXPECT_EQ(std::count(layers[i][5].begin(), layers[i][5].end(), ';'), 1) << "z_in per t: T = 2 values";
  }
  EXPECT_TRUE(conv && neuron);
  const auto summary = read_csv(out / "summary.csv");
  ASSERT_EQ(summary.size(), 2u);
  const std::vector<std::string>& h = summary[0];
  auto value = [&](const std::string& name) {
    const auto it = std::find(h.begin(), h.end(), name);
    EXPECT_NE(it, h.end()) << "missing column " << name;
    return it == h.end() ? std::string() : summary[1][size_t(it - h.begin())];
  };
  // The columns scripts/plot.py's scatter reads, then the analysis' own.
  for (const char* name : {"model", "sparsity", "clean_acc", "robust_acc", "eps", "attack"})
    EXPECT_FALSE(value(name).empty()) << name;
  for (const char* name :
       {"bn_mode", "encoding", "input_z", "input_s_eff", "domain_z", "R", "R_abs", "bound_l0", "bound_s_eff"})
    value(name);
  EXPECT_EQ(value("bn_mode"), "eval");
  EXPECT_EQ(value("attack_domain"), "pixels");
  EXPECT_EQ(value("domain_dim"), "25088") << "32 images of 1x28x28";
  EXPECT_EQ(value("examples"), "64");
  const double sparsity = std::stod(value("sparsity"));
  EXPECT_TRUE(sparsity >= 0 && sparsity <= 1);
  EXPECT_GE(std::stod(value("bound_l0")), 1.0);
  const std::string md = read_text(out / "analysis.md");
  for (const char* s : {"| layer | kind | shape |", "BN mode: eval", "gradient masking", "mean over the batches"})
    EXPECT_NE(md.find(s), std::string::npos) << s;
}

// --tasa (apps/tasa.h): tasa.csv with one row per spiking layer, its columns, TASA values that are fractions,
// |diff| consistent with them, and the table and attack in analysis.md.
TEST_F(Analyze, TasaWritesItsCsvAndTable) {
  app::AnalyzeOptions o;
  o.batches = 1;
  o.tasa = true;
  o.out = (runs_ / "analysis_tasa").string();
  app::RunConfig f = flags();
  f.steps = 2;
  app::run_analyze(f, o);
  const auto rows = read_csv(fs::path(o.out) / "tasa.csv");
  EXPECT_EQ(rows.at(0), (std::vector<std::string>{"layer", "tasa_clean", "tasa_adv", "abs_diff", "clean_t0",
                                                   "clean_t1", "adv_t0", "adv_t1"}))
      << "T = 2";
  const auto layers = read_csv(fs::path(o.out) / "layers.csv");
  const size_t neurons =
      size_t(std::count_if(layers.begin(), layers.end(), [](const auto& r) { return r.at(1) == "neuron"; }));
  ASSERT_EQ(rows.size(), neurons + 1) << "one row per spiking layer";
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 8u);
    const double clean = std::stod(rows[i][1]), adv = std::stod(rows[i][2]);
    EXPECT_TRUE(clean >= 0 && clean <= 1 && adv >= 0 && adv <= 1) << rows[i][0];
    EXPECT_NEAR(std::stod(rows[i][3]), std::fabs(clean - adv), 2e-6) << rows[i][0];
    EXPECT_NEAR((std::stod(rows[i][4]) + std::stod(rows[i][5])) / 2, clean, 2e-6) << "the mean over t";
  }
  const std::string md = read_text(fs::path(o.out) / "analysis.md");
  for (const char* s : {"## TASA", "| layer | TASA clean | TASA adversarial | abs diff |", "Attack: pgd", "under the attack"})
    EXPECT_NE(md.find(s), std::string::npos) << s;
}

TEST_F(Analyze, TrainModeBatchNormLeavesTheRunningStatisticsUnchanged) {
  const app::Checkpoint ck = app::read_checkpoint(checkpoint_);
  const app::RunConfig c = app::config_for_checkpoint(flags(), ck.config);
  const app::Data data = app::load_data(c, false);
  std::unique_ptr<Model> model = app::build_model(c, data.test, Device::CPU);
  app::restore_model(*model, ck);
  std::vector<std::vector<float>> before;
  for (const NamedTensor& b : model->buffers()) before.push_back(b.tensor.to_vector<float>());
  ASSERT_FALSE(before.empty()) << "small_cnn has BN running statistics";
  const bool was_training = model->training();
  app::AnalysisSettings s;
  s.bn_mode = "train";
  s.batches = 2;
  s.batch_size = 32;
  const app::Analysis a = app::analyze_model(*model, data.test, s);
  EXPECT_EQ(a.examples, 64);
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_EQ(model->buffers()[i].tensor.to_vector<float>(), before[i]) << model->buffers()[i].name;
  EXPECT_EQ(model->training(), was_training) << "the mode is restored";
  // The check can fail: a train-mode forward does move the statistics.
  {
    model->train(true);
    Tape tape;
    model->forward(tape, Tensor::full({4, 1, 28, 28}, 0.7), TapKeep::none());
    model->train(false);
  }
  bool moved = false;
  for (size_t i = 0; i < before.size(); ++i)
    moved = moved || model->buffers()[i].tensor.to_vector<float>() != before[i];
  EXPECT_TRUE(moved);
}

// A phase-encoded model (gradient_sparsity.md §3) is analysed where the released code attacks it, in the spike
// domain; in pixels its gradient would be identically zero, which the flag rules refuse.
TEST_F(Analyze, PhaseEncodedModelInTheSpikeDomain) {
  app::RunConfig c = small_run_config(data_, runs_, 64, 32, 32);
  c.name = "phase";
  c.epochs = 1;
  c.encoding = "phase";
  c.attack_domain = "spikes";
  c.attacks = "none";
  c.obfuscation_checks = false;
  app::RunConfig f = flags();
  f.checkpoint = (fs::path(app::run_train(c)) / "best.safetensors").string();
  f.attack_domain = "spikes";
  app::AnalyzeOptions o;
  o.batches = 1;
  o.out = (runs_ / "analysis_phase").string();
  app::run_analyze(f, o);
  const auto summary = read_csv(fs::path(o.out) / "summary.csv");
  ASSERT_EQ(summary.size(), 2u);
  auto value = [&](const std::string& name) {
    const auto it = std::find(summary[0].begin(), summary[0].end(), name);
    return it == summary[0].end() ? std::string("(missing)") : summary[1][size_t(it - summary[0].begin())];
  };
  EXPECT_EQ(value("encoding"), "phase");
  EXPECT_EQ(value("attack_domain"), "spikes");
  EXPECT_EQ(value("domain_dim"), "50176") << "32 examples x T = 2 x 1x28x28 spikes";
  EXPECT_FALSE(value("bound_l0").empty());
  // R: the released code's setting makes the loss piecewise constant in the spikes; where no random step moves
  // it, R is reported as undefined (empty) with a note, never as 0 or infinity.
  if (value("R").empty())
    EXPECT_NE(read_text(fs::path(o.out) / "analysis.md").find("R is not a number"), std::string::npos);
  f.attack_domain = "pixels";
  EXPECT_THROW(app::run_analyze(f, o), Error);
}

TEST(AnalyzeCli, ParsesItsFlags) {
  app::CommandLine cl;
  std::string err;
  ASSERT_EQ(
      parse_cli({"analyze", "--checkpoint", "x.safetensors", "--bn-mode", "train", "--batches", "3", "--out", "o"}, &cl,
                &err),
      -1)
      << err;
  EXPECT_EQ(cl.command, "analyze");
  EXPECT_EQ(cl.config.checkpoint, "x.safetensors");
  EXPECT_EQ(cl.config.eps, "8/255") << "analyze's default radius";
  EXPECT_EQ(cl.analyze.bn_mode, "train");
  EXPECT_EQ(cl.analyze.batches, 3);
  EXPECT_EQ(cl.analyze.out, "o");
  EXPECT_FALSE(cl.analyze.tasa);
  ASSERT_EQ(parse_cli({"analyze", "--checkpoint", "x", "--tasa", "--tasa-attack", "bim", "--steps", "3", "--alpha",
                       "1/255"},
                      &cl, &err),
            -1)
      << err;
  EXPECT_TRUE(cl.analyze.tasa);
  EXPECT_EQ(cl.analyze.tasa_attack, "bim");
  EXPECT_EQ(cl.config.steps, 3);
  EXPECT_EQ(cl.config.alpha, "1/255");
  EXPECT_EQ(parse_cli({"analyze", "--checkpoint", "x", "--tasa-attack", "gn"}, &cl, &err), 2);
  EXPECT_EQ(parse_cli({"analyze", "--checkpoint", "x", "--bn-mode", "batch"}, &cl, &err), 2);
  EXPECT_NE(err.find("--bn-mode"), std::string::npos) << err;
  EXPECT_EQ(parse_cli({"analyze", "--bn-mode", "eval"}, &cl, &err), 2) << "--checkpoint is required";
}

// gradient_sparsity.md §2.2 / §5.2: SEW-ResNet-18's ImageNet stem on 32x32 leaves layer4 at 1x1, so its stride-2
// first conv (2x2 -> 1x1) has 5/9 and every later 3x3 conv 8/9 structural zeros; the 1x1 downsample none.
TEST(AnalyzeModel, StructuralZerosOfSewResnet18On32px) {
  std::unique_ptr<Model> model = make_model("sew_resnet18", model_config(3, 32, 1));
  Dataset data;
  data.name = "random";
  Generator gen(5);
  std::vector<uint8_t> pixels;
  for (float u : rand_uniform({2 * 3 * 32 * 32}, gen).to_vector<float>()) pixels.push_back(uint8_t(u * 255));
  data.images = Tensor::from_vector(pixels, {2, 3, 32, 32});
  data.labels = Tensor::from_vector<int32_t>({3, 7}, {2});
  data.num_classes = 10;
  app::AnalysisSettings s;
  s.batches = 1;
  s.batch_size = 2;
  const app::Analysis a = app::analyze_model(*model, data, s);
  std::map<std::string, double> structural;
  for (const app::LayerAnalysis& l : a.layers) {
    if (l.kind != "conv") continue;
    structural[l.name] = l.z_w_structural;
    EXPECT_GE(l.z_w, l.z_w_structural) << l.name << ": structural entries are zeros";
  }
  ASSERT_TRUE(structural.count("layer4.0.conv1") && structural.count("layer4.1.conv2")) << "the trace names";
  EXPECT_DOUBLE_EQ(structural["layer4.0.conv1"], 5.0 / 9);
  EXPECT_DOUBLE_EQ(structural["layer4.0.conv2"], 8.0 / 9);
  EXPECT_DOUBLE_EQ(structural["layer4.1.conv1"], 8.0 / 9);
  EXPECT_DOUBLE_EQ(structural["layer4.1.conv2"], 8.0 / 9);
  EXPECT_DOUBLE_EQ(structural["layer3.0.conv1"], 0.0) << "4x4 -> 2x2: every tap sees data";
  EXPECT_DOUBLE_EQ(structural["conv1"], 0.0);
}

// The analysis on the CUDA backend (real or emulated) measures what the CPU one does: the same spikes, hence the
// same zeros, rates and accuracies; norms to float rounding.
TEST_F(Analyze, CudaMatchesCpu) {
  if (!cuda_ok()) GTEST_SKIP() << "no CUDA device";
  const app::Checkpoint ck = app::read_checkpoint(checkpoint_);
  const app::RunConfig c = app::config_for_checkpoint(flags(), ck.config);
  const app::Data data = app::load_data(c, false);
  app::AnalysisSettings s;
  s.batches = 1;
  s.batch_size = 8;
  std::vector<app::Analysis> runs;
  for (Device device : {Device::CPU, Device::CUDA}) {
    std::unique_ptr<Model> model = app::build_model(c, data.test, Device::CPU);
    app::restore_model(*model, ck);
    model->to(device);
    runs.push_back(app::analyze_model(*model, data.test, s));
  }
  const app::Analysis &cpu = runs[0], &cuda = runs[1];
  ASSERT_EQ(cpu.layers.size(), cuda.layers.size());
  for (size_t i = 0; i < cpu.layers.size(); ++i) {
    const app::LayerAnalysis &a = cpu.layers[i], &b = cuda.layers[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_NEAR(a.z_out, b.z_out, 1e-3) << a.name;
    if (!std::isnan(a.rate)) EXPECT_DOUBLE_EQ(a.rate, b.rate) << a.name;
    if (!std::isnan(a.norm_in)) EXPECT_NEAR(a.norm_in, b.norm_in, 1e-3 * a.norm_in + 1e-7) << a.name;
    if (!std::isnan(a.z_w)) EXPECT_NEAR(a.z_w, b.z_w, 1e-3) << a.name;
  }
  EXPECT_EQ(cpu.clean_accuracy, cuda.clean_accuracy);
  EXPECT_NEAR(cpu.input.domain_norm, cuda.input.domain_norm, 1e-3 * cpu.input.domain_norm);
}

TEST_F(Analyze, RefusesOtherGradientsAndBadFlags) {
  app::AnalyzeOptions o;
  o.out = (runs_ / "analysis_refused").string();
  app::RunConfig f = flags();
  f.attack_grad = "rga";
  try {
    app::run_analyze(f, o);
    ADD_FAILURE() << "rga accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--attack-grad rga"), std::string::npos) << e.what();
  }
  o.bn_mode = "batch";
  EXPECT_THROW(app::run_analyze(flags(), o), Error);
}

}  // namespace
}  // namespace spikegrad::testing
