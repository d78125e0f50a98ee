// Losses (losses/losses.h): CE on mean logits, TET, output entropy and the TMI term, checked against
// direct evaluations of their formulas, by finite differences through compute_loss, and for what is
// (not) recorded on the tape.
#include <gtest/gtest.h>

#include <cmath>

#include "losses/losses.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

constexpr int64_t kT = 3, kB = 4, kK = 5;

// log softmax of row `row` of a (N,K) double array.
std::vector<double> log_softmax(const double* row, int64_t K) {
  double m = row[0];
  for (int64_t k = 1; k < K; ++k) m = std::max(m, row[k]);
  double s = 0;
  for (int64_t k = 0; k < K; ++k) s += std::exp(row[k] - m);
  std::vector<double> out(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) out[size_t(k)] = row[k] - m - std::log(s);
  return out;
}

Tensor logits64() { return randn({kT, kB, kK}, DType::F64, 101, 2.0); }
Tensor labels4() { return labels(kB, kK, 102); }

TEST(Losses, CeOnMeanLogitsMatchesFormula) {
  const Tensor lg = logits64(), y = labels4();
  const double* a = lg.data<double>();
  const int32_t* py = y.data<int32_t>();
  double expected = 0;
  for (int64_t b = 0; b < kB; ++b) {
    std::vector<double> mean(size_t(kK), 0.0);
    for (int64_t t = 0; t < kT; ++t)
      for (int64_t k = 0; k < kK; ++k) mean[size_t(k)] += a[(t * kB + b) * kK + k] / double(kT);
    expected -= log_softmax(mean.data(), kK)[size_t(py[b])] / double(kB);
  }
  Tape tape;
  EXPECT_NEAR(ce_mean_logits(tape, lg, y).item(), expected, 1e-12);
}

TEST(Losses, TetMatchesFormula) {
  const Tensor lg = logits64(), y = labels4();
  const double* a = lg.data<double>();
  const int32_t* py = y.data<int32_t>();
  const double lambda = 0.05, phi = 1.0;
  double ce = 0, mse = 0;
  for (int64_t t = 0; t < kT; ++t)
    for (int64_t b = 0; b < kB; ++b) {
      const double* row = a + (t * kB + b) * kK;
      ce -= log_softmax(row, kK)[size_t(py[b])] / double(kT * kB);
      for (int64_t k = 0; k < kK; ++k) mse += (row[k] - phi) * (row[k] - phi) / double(kT * kB * kK);
    }
  Tape tape;
  EXPECT_NEAR(tet_loss(tape, lg, y, lambda, phi).item(), (1 - lambda) * ce + lambda * mse, 1e-12);
  EXPECT_NEAR(tet_loss(tape, lg, y, 0.0, phi).item(), ce, 1e-12) << "lambda 0 is the per-step CE alone";
}

TEST(Losses, OutputEntropyMatchesFormula) {
  const Tensor lg = logits64();
  const double* a = lg.data<double>();
  double expected = 0;
  for (int64_t b = 0; b < kB; ++b) {
    std::vector<double> mean(size_t(kK), 0.0);
    for (int64_t t = 0; t < kT; ++t)
      for (int64_t k = 0; k < kK; ++k) mean[size_t(k)] += a[(t * kB + b) * kK + k] / double(kT);
    const std::vector<double> lp = log_softmax(mean.data(), kK);
    for (double v : lp) expected -= std::exp(v) * v / double(kB);
  }
  Tape tape;
  EXPECT_NEAR(output_entropy(tape, lg).item(), expected, 1e-12);
}

// Taps as a model would register them: X first, Z the last conv layer, one extra in between.
Taps make_taps(const Tensor& x, const Tensor& mid, const Tensor& z) {
  Taps taps;
  taps.add("features.0", x);
  taps.add("features.3", mid);
  taps.add("features.7", z);
  taps.set_defaults("features.0", "features.7");
  return taps;
}

std::vector<Tensor> loss_inputs(DType d) {
  return {randn({kT, kB, kK}, d, 103, 2.0), uniform({kT, kB, 4, 3, 3}, d, 104, 0, 1), uniform({kT, kB, 2, 2, 2}, d, 105, 0, 1),
          uniform({kT, kB, 8, 2, 2}, d, 106, 0, 1)};
}

TEST(Losses, TotalIsTheWeightedSumOfItsParts) {
  const std::vector<Tensor> in = loss_inputs(DType::F64);
  const Taps taps = make_taps(in[1], in[2], in[3]);
  LossConfig cfg;
  cfg.base = LossBase::tet;
  cfg.mi_lambda = 0.3;
  cfg.entropy_weight = 0.2;
  cfg.entropy_sign = -1;
  Tape tape;
  const LossParts p = compute_loss(tape, in[0], labels4(), taps, cfg);
  EXPECT_NEAR(p.total.item(), p.base.item() + 0.3 * p.mi.item() - 0.2 * p.entropy.item(), 1e-12);
  EXPECT_NEAR(p.base.item(), tet_loss(tape, in[0], labels4(), 0.05, 1.0).item(), 1e-12);
  // The MI is that of the default taps' rates x255.
  Tape t2;
  const double mi = ops::kde_mi_stats(ops::firing_rate(t2, in[1]), ops::firing_rate(t2, in[3])).mean_mi;
  EXPECT_NEAR(p.mi.item(), mi, 1e-12);
  std::vector<std::string> names;
  for (const auto& [name, t] : p.named()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"loss", "tet", "mi_bits", "entropy"}));
}

TEST(Losses, MiIsOnlyComputedWhenUsed) {
  std::vector<Tensor> in = loss_inputs(DType::F32);
  for (Tensor& t : in) t.set_requires_grad(true);
  const Taps taps = make_taps(in[1], in[2], in[3]);
  auto recorded = [](const Tape& tape, const std::string& op) {
    int n = 0;
    for (const TapeNode& node : tape.nodes()) n += node.op == op;
    return n;
  };
  LossConfig cfg;
  cfg.mi_lambda = 0;
  {
    Tape tape;
    const LossParts p = compute_loss(tape, in[0], labels4(), taps, cfg);
    EXPECT_FALSE(p.mi.defined());
    EXPECT_EQ(recorded(tape, "kde_mutual_information"), 0);
    EXPECT_EQ(recorded(tape, "firing_rate"), 0);
  }
  cfg.report_mi = true;  // reported, but neither recorded nor part of the loss
  {
    Tape tape;
    const LossParts p = compute_loss(tape, in[0], labels4(), taps, cfg);
    ASSERT_TRUE(p.mi.defined());
    EXPECT_GT(p.mi.item(), 0.0);
    EXPECT_EQ(recorded(tape, "kde_mutual_information"), 0);
    EXPECT_EQ(p.total.item(), p.base.item());
  }
  cfg.mi_lambda = 0.05;
  {
    Tape tape;
    const LossParts p = compute_loss(tape, in[0], labels4(), taps, cfg);
    EXPECT_EQ(recorded(tape, "kde_mutual_information"), 1);
    // Gradients reach both taps (and nothing reaches the unused middle one).
    const std::vector<Tensor> g = tape.grad(p.total, {in[1], in[2], in[3]});
    double sx = 0, smid = 0, sz = 0;
    for (float v : g[0].to_vector<float>()) sx += std::abs(v);
    for (float v : g[1].to_vector<float>()) smid += std::abs(v);
    for (float v : g[2].to_vector<float>()) sz += std::abs(v);
    EXPECT_GT(sx, 0.0);
    EXPECT_EQ(smid, 0.0);
    EXPECT_GT(sz, 0.0);
  }
}

TEST(Losses, TapsSelectableByNameAndUnknownNamesListTheKnownOnes) {
  const std::vector<Tensor> in = loss_inputs(DType::F64);
  const Taps taps = make_taps(in[1], in[2], in[3]);
  Tape tape;
  const double by_name = tap_mutual_information(tape, taps, "features.3", "features.7").item();
  Tape t2;
  EXPECT_NEAR(by_name, ops::kde_mi_stats(ops::firing_rate(t2, in[2]), ops::firing_rate(t2, in[3])).mean_mi, 1e-12);
  LossConfig cfg;
  cfg.mi_z = "features.9";
  try {
    compute_loss(tape, in[0], labels4(), taps, cfg);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tap named 'features.9'; this model has [features.0, features.3, features.7]"),
              std::string::npos)
        << e.what();
  }
}

TEST(Losses, BadConfigAndShapesAreErrors) {
  const std::vector<Tensor> in = loss_inputs(DType::F64);
  const Taps taps = make_taps(in[1], in[2], in[3]);
  Tape tape;
  LossConfig cfg;
  cfg.entropy_sign = 0.5;
  EXPECT_THROW(compute_loss(tape, in[0], labels4(), taps, cfg), Error);
  try {
    tet_loss(tape, in[0], labels4(), 1.5, 1.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tet_loss: lambda must be in [0,1], got 1.5"), std::string::npos) << e.what();
  }
  try {
    ce_mean_logits(tape, in[0], labels(kB + 1, kK, 1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ce_mean_logits: labels must be (B) with B = 4, got (5)"), std::string::npos)
        << e.what();
  }
}

// Finite differences in double through each loss and through the whole compute_loss (TET + TMI + entropy).
// The labels follow the logits to their device: the op table also runs these cases on CUDA (they failed
// there with "labels are on cpu but logits are on cuda" when the emulated backend first ran them).
Tensor labels_for(const Tensor& logits) { return labels4().to(logits.device()); }
SG_OP_CASE({.name = "loss/ce_mean_logits",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({kT, kB, kK}, d, 107, 2.0)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ce_mean_logits(t, x[0], labels_for(x[0])); }});
SG_OP_CASE({.name = "loss/tet",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({kT, kB, kK}, d, 108, 2.0)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return tet_loss(t, x[0], labels_for(x[0]), 0.3, 1.0); }});
SG_OP_CASE({.name = "loss/output_entropy",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({kT, kB, kK}, d, 109, 2.0)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return output_entropy(t, x[0]); }});
SG_OP_CASE({.name = "loss/compute_loss_tet_tmi_entropy",
            .make_inputs = loss_inputs,
            .grad_inputs = {0, 1, 3},
            .forward =
                [](Tape& t, const std::vector<Tensor>& x) {
                  LossConfig cfg;
                  cfg.base = LossBase::tet;
                  cfg.mi_lambda = 0.5;
                  cfg.entropy_weight = 0.1;
                  return compute_loss(t, x[0], labels_for(x[0]), make_taps(x[1], x[2], x[3]), cfg).total;
                }});
SG_OP_CASE({.name = "loss/compute_loss_ce_tmi_channel_max",
            .make_inputs = loss_inputs,
            .grad_inputs = {0, 2, 3},
            .forward =
                [](Tape& t, const std::vector<Tensor>& x) {
                  LossConfig cfg;
                  cfg.mi_lambda = 0.05;
                  cfg.mi_x = "features.3";
                  cfg.mi_reduce = ops::RateReduce::ChannelMax;
                  return compute_loss(t, x[0], labels_for(x[0]), make_taps(x[1], x[2], x[3]), cfg).total;
                }});

}  // namespace
}  // namespace spikegrad::testing
