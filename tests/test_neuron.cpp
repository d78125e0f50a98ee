// Neuron family: hand-worked spike/reset sequences and gradients, RGA against its formula, surrogates,
// state and memory, error messages. Backend agreement and finite differences: tests/test_neuron_backends.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>

#include "engine/ops_neuron_ext.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

using ops::SpikeOptions;

// x of shape (T, 1) from a list of per-step values, one neuron.
Tensor steps_of(const std::vector<double>& v, DType dtype = DType::F64) {
  return Tensor::from_vector<double>(v, {int64_t(v.size()), 1}).to(dtype);
}

std::vector<double> spikes_of(const std::vector<double>& x, const SpikeOptions& opt) {
  Tape tape;
  return ops::spike(tape, steps_of(x), opt).to_vector<double>();
}

// d sum(y * gy) / dx for one neuron.
std::vector<double> gx_of(const std::vector<double>& x, const std::vector<double>& gy, const SpikeOptions& opt) {
  Tape tape;
  Tensor xt = steps_of(x);
  xt.set_requires_grad(true);
  Tensor y = ops::spike(tape, xt, opt);
  return tape.vjp(y, steps_of(gy), {xt})[0].to_vector<double>();
}

// ---- golden sequences (T = 4), worked by hand -------------------------------------------------------------
// LIF (decay 0.5, theta 1), x = 1, 0.5, 0.75, 0.25. Strict (h > 1, the reference):
//   h0 = 1 -> no spike, v = 1;  h1 = 0.5 + 0.5 = 1 -> no spike, v = 1;  h2 = 0.5 + 0.75 = 1.25 -> spike, v = 0;
//   h3 = 0.25 -> none.  Non-strict (h >= 1): h0 = 1 spike v = 0; h1 = 0.5, v = 0.5; h2 = 0.25 + 0.75 = 1 spike;
//   h3 = 0.25.  Both thresholds are hit exactly at 1.0, which is where > and >= differ.
TEST(Neuron, LifGoldenStrictAndNonStrictAtExactlyOne) {
  const std::vector<double> x = {1.0, 0.5, 0.75, 0.25};
  SpikeOptions lif;
  EXPECT_EQ(spikes_of(x, lif), (std::vector<double>{0, 0, 1, 0}));
  lif.strict = false;
  EXPECT_EQ(spikes_of(x, lif), (std::vector<double>{1, 0, 1, 0}));
}

// IF (no leak), x = 0.5, 0.5, 0.25, 1. Non-strict (RAT/RGA default): h = 0.5; 1 -> spike, v = 0; 0.25; 1.25 -> spike.
// Strict: h = 0.5; 1 (none, v = 1); 1.25 -> spike, v = 0; 1 (none).
TEST(Neuron, IfGoldenNonStrictByDefault) {
  const std::vector<double> x = {0.5, 0.5, 0.25, 1.0};
  SpikeOptions opt;
  opt.neuron = ops::NeuronKind::if_;
  EXPECT_EQ(spikes_of(x, opt), (std::vector<double>{0, 1, 0, 1}));
  opt.strict = true;
  EXPECT_EQ(spikes_of(x, opt), (std::vector<double>{0, 0, 1, 0}));
}

// Soft reset keeps the excess: IF, x = 2.5, 0, 0, 0: h = 2.5 -> spike, v = 1.5; h = 1.5 -> spike, v = 0.5; then
// 0.5, 0.5. A hard reset stops after the first spike. Threshold 2 with LIF: x = 1.5, 1.5, 0, 3:
// h = 1.5; 0.75 + 1.5 = 2.25 -> spike, v = 0; 0; 3 -> spike.
TEST(Neuron, SoftResetAndThresholdGolden) {
  SpikeOptions opt;
  opt.neuron = ops::NeuronKind::if_;
  opt.strict = true;
  opt.reset = ops::ResetKind::soft;
  EXPECT_EQ(spikes_of({2.5, 0, 0, 0}, opt), (std::vector<double>{1, 1, 0, 0}));
  opt.reset = ops::ResetKind::hard;
  EXPECT_EQ(spikes_of({2.5, 0, 0, 0}, opt), (std::vector<double>{1, 0, 0, 0}));
  SpikeOptions high;
  high.threshold = 2.0;
  EXPECT_EQ(spikes_of({1.5, 1.5, 0, 3}, high), (std::vector<double>{0, 1, 0, 1}));
}

// BPTT by hand with reference.md §2's recursion, strict LIF, x = 1, 0.5, 0.75, 0.25 (h = 1, 1, 1.25, 0.25,
// s = 0, 0, 1, 0), upstream g_s = 1 at every step, triangle sg(h-1) = 1, 1, 0.75, 0.25:
//   t3: g_h = 0.25,                                         g_v[2] = 0.125
//   t2: g_h = 0.75 + 0.125 * ((1-1) - 1.25*0.75) = 0.6328125,  g_v[1] = 0.31640625
//   t1: g_h = 1 + 0.31640625 * ((1-0) - 1*1) = 1,           g_v[0] = 0.5
//   t0: g_h = 1 + 0.5 * (1 - 1) = 1
// detach_reset drops -h*sg from the reset: t2: 0.75 + 0.125*0 = 0.75, g_v[1] = 0.375; t1: 1 + 0.375 = 1.375,
// g_v[0] = 0.6875; t0: 1 + 0.6875 = 1.6875.
TEST(Neuron, LifGoldenGradientsWithAndWithoutDetachedReset) {
  const std::vector<double> x = {1.0, 0.5, 0.75, 0.25}, ones = {1, 1, 1, 1};
  SpikeOptions opt;
  EXPECT_EQ(gx_of(x, ones, opt), (std::vector<double>{1, 1, 0.6328125, 0.25}));
  opt.detach_reset = true;
  EXPECT_EQ(gx_of(x, ones, opt), (std::vector<double>{1.6875, 1.375, 0.75, 0.25}));
}

// Soft reset, IF strict, x = 2.5, 0, 0, 0 (h = 2.5, 1.5, 0.5, 0.5; s = 1, 1, 0, 0), g_s = (1, 2, 3, 4), triangle:
// sg = 0, 0.5, 0.5, 0.5.  v = h - s: dv/dh = 1, dv/ds = -1 (also where s = 0); dh/dv_prev = 1.
//   t3: g_h = 4*0.5 = 2,                                    g_v[2] = 2
//   t2: g_s = 3 - 2 = 1   -> g_h = 2 + 1*0.5 = 2.5,         g_v[1] = 2.5
//   t1: g_s = 2 - 2.5     -> g_h = 2.5 - 0.5*0.5 = 2.25,     g_v[0] = 2.25
//   t0: g_s = 1 - 2.25, sg = 0 -> g_h = 2.25
TEST(Neuron, SoftResetGoldenGradient) {
  SpikeOptions opt;
  opt.neuron = ops::NeuronKind::if_;
  opt.strict = true;
  opt.reset = ops::ResetKind::soft;
  EXPECT_EQ(gx_of({2.5, 0, 0, 0}, {1, 2, 3, 4}, opt), (std::vector<double>{2.25, 2.25, 2.5, 2}));
}

// RGA (reference.md §5.3): gx[t] = g_s[t] * g(mean_t x). tau = 1: 0.5 on [0,2] and 0.7 at exactly 0;
// tau = 0.5: 0.6 on [0.5,2], 0.2 on [0,0.5), 0.8 at exactly 0.5; 0 outside.
TEST(Neuron, RgaBackwardMatchesItsFormula) {
  // 6 neurons with means -0.5, 0, 0.25, 0.5, 1.5, 2.5 (T = 2: x = mean +- 0.125, so the forward spikes vary).
  const std::vector<double> means = {-0.5, 0.0, 0.25, 0.5, 1.5, 2.5};
  const int64_t n = int64_t(means.size());
  std::vector<double> xv, gv;
  for (int t = 0; t < 2; ++t)
    for (int64_t i = 0; i < n; ++i) {
      xv.push_back(means[size_t(i)] + (t == 0 ? 0.125 : -0.125));
      gv.push_back(1.0 + double(t) + 0.5 * double(i));
    }
  const std::vector<std::pair<double, std::vector<double>>> expected = {
      {1.0, {0, 0.7, 0.5, 0.5, 0.5, 0}},
      {0.5, {0, 0.2, 0.2, 0.8, 0.6, 0}},
  };
  for (const auto& [tau, g] : expected) {
    SpikeOptions opt;
    opt.backward = ops::SpikeBackward::rga;
    opt.rga_tau = tau;
    Tape tape;
    Tensor x = Tensor::from_vector<double>(xv, {2, n});
    x.set_requires_grad(true);
    Tensor y = ops::spike(tape, x, opt);
    const std::vector<double> gx = tape.vjp(y, Tensor::from_vector<double>(gv, {2, n}), {x})[0].to_vector<double>();
    for (size_t k = 0; k < gx.size(); ++k)
      EXPECT_NEAR(gx[k], gv[k] * g[k % size_t(n)], 1e-12) << "tau " << tau << " element " << k;
  }
}

// Unset rga_tau means the neuron's decay: LIF 0.5 here, so mean 0.25 gets gamma = 0.2.
TEST(Neuron, RgaTauDefaultsToTheDecay) {
  SpikeOptions opt;
  opt.backward = ops::SpikeBackward::rga;
  EXPECT_NEAR(gx_of({0.25, 0.25}, {1, 1}, opt)[0], 0.2, 1e-12);
  opt.neuron = ops::NeuronKind::if_;  // tau = 1: 0.5
  EXPECT_NEAR(gx_of({0.25, 0.25}, {1, 1}, opt)[0], 0.5, 1e-12);
}

// The surrogates: the backward derivative is the derivative of the smooth forward (central differences), the
// reference triangle is max(0, 1 - |u|), and sigmoid's stays finite far out (pitfall 3).
TEST(Neuron, SurrogateIsTheDerivativeOfTheSmoothSpike) {
  for (const ops::Surrogate s : {ops::Surrogate::triangle(1.0), ops::Surrogate::triangle(0.5), ops::Surrogate::sigmoid(),
                                 ops::Surrogate::atan(), ops::Surrogate::rectangle(0.8)}) {
    neurons::Firing f;
    f.kind = ops::neuron_detail::kernel_surrogate(s.kind);
    f.alpha = s.alpha;
    f.smooth = true;
    for (double u = -1.37; u < 1.4; u += 0.05) {
      const double step = 1e-6;
      const double numeric = (f.spike(u + step) - f.spike(u - step)) / (2 * step);
      EXPECT_NEAR(f.grad(u), numeric, 1e-6) << "kind " << int(s.kind) << " u " << u;
    }
    EXPECT_LT(f.spike(-50.0), 0.01);
    EXPECT_GT(f.spike(50.0), 0.99);
  }
  neurons::Firing tri;
  for (double u : {-1.5, -0.25, 0.0, 0.5, 2.0}) EXPECT_DOUBLE_EQ(tri.grad(u), std::max(0.0, 1.0 - std::abs(u)));
}

TEST(Neuron, SigmoidSurrogateIsFiniteEverywhere) {
  neurons::Firing f;
  f.kind = neurons::SurrogateKind::sigmoid;
  f.alpha = 4.0;
  const double inf = std::numeric_limits<double>::infinity();
  for (double u : {-inf, -1e300, -1e30, -1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4, 1e30, 1e300, inf}) {
    EXPECT_TRUE(std::isfinite(f.grad(u))) << u;
    EXPECT_TRUE(std::isfinite(f.grad(float(u)))) << u;
    f.smooth = true;
    EXPECT_TRUE(std::isfinite(f.spike(float(u))) && f.spike(float(u)) >= 0 && f.spike(float(u)) <= 1) << u;
    f.smooth = false;
  }
  EXPECT_GT(f.grad(-20.0f), 0.0f) << "no premature underflow near the threshold";
}

// ---- semantics of the op ----------------------------------------------------------------------------------
TEST(Neuron, OneTapeNodePerLayerAndNoStateAcrossCalls) {
  Tensor x = uniform({8, 3, 5}, DType::F32, 11, -0.5, 2.0);
  x.set_requires_grad(true);
  Tape tape;
  Tensor a = ops::spike(tape, x);
  Tensor b = ops::spike(tape, x);  // a second forward must start from v = 0 again (pitfall 1)
  EXPECT_EQ(tape.size(), 2u) << "one node per layer call, not one per time step";
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_EQ(a.shape(), x.shape());
}

TEST(Neuron, SavesOnlyThePotentialForBpttAndTheMeanForRga) {
  const int64_t T = 8, n = 4096;
  Tensor x = uniform({T, 2, n / 2}, DType::F32, 3, -0.5, 2.0);
  x.set_requires_grad(true);
  auto live_bytes_after = [&](const SpikeOptions& opt, bool grad) {
    CachingAllocator& alloc = allocator(Device::CPU);
    alloc.empty_cache();  // a cached block up to twice a request's size may serve it: start from none
    const size_t before = alloc.stats().current_bytes;
    Tape tape;
    std::optional<NoGradGuard> off;
    if (!grad) off.emplace();
    Tensor y = ops::spike(tape, x, opt);
    return alloc.stats().current_bytes - before;
  };
  const size_t out = CachingAllocator::round_size(size_t(T * n) * 4);
  EXPECT_EQ(live_bytes_after({}, false), out) << "inference keeps only the spikes";
  EXPECT_EQ(live_bytes_after({}, true), out + CachingAllocator::round_size(size_t(T * n) * 4))
      << "BPTT keeps h: 4 B per neuron per step";
  SpikeOptions rga;
  rga.backward = ops::SpikeBackward::rga;
  EXPECT_EQ(live_bytes_after(rga, true), out + CachingAllocator::round_size(size_t(n) * 4))
      << "RGA keeps the time-mean: 4 B per neuron";
}

TEST(Neuron, PlifAtLogitZeroIsTheReferenceLif) {
  Tensor x = uniform({5, 3, 7}, DType::F64, 21, -0.5, 2.0);
  Tensor logit = Tensor::zeros({1}, DType::F64);
  x.set_requires_grad(true);
  Tape tape;
  Tensor a = ops::spike(tape, x), b = ops::plif_spike(tape, x, logit);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
  Tensor r = randn(x.shape(), DType::F64, 5);
  expect_close(tape.vjp(b, r, {x})[0], tape.vjp(a, r, {x})[0], 0, 1e-15, "plif(0) vs lif gradient");
}

TEST(Neuron, ErrorsNameTheOpAndTheProblem) {
  Tape tape;
  EXPECT_NE(error_of([&] { ops::spike(tape, Tensor::zeros({0, 64, 128})); })
                .find("lif: x must be (T,B,...) with T>=1, got (0,64,128)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::spike(tape, Tensor::zeros({4})); }).find("lif: x must be (T,B,...)"), std::string::npos);
  SpikeOptions opt;
  opt.neuron = ops::NeuronKind::if_;
  EXPECT_NE(error_of([&] { ops::spike(tape, Tensor::zeros({2, 3}, DType::I32), opt); })
                .find("if: x must be float32 (or float64 on the cpu), got int32"),
            std::string::npos);
  opt = {};
  opt.threshold = 0;
  EXPECT_NE(error_of([&] { ops::spike(tape, Tensor::zeros({2, 3}), opt); }).find("lif: threshold must be > 0, got 0"),
            std::string::npos);
  opt = {};
  opt.decay = 1.5;
  EXPECT_NE(error_of([&] { ops::spike(tape, Tensor::zeros({2, 3}), opt); }).find("lif: decay must be in [0,1], got 1.5"),
            std::string::npos);
  opt = {};
  opt.surrogate = ops::Surrogate::sigmoid(-1);
  EXPECT_NE(error_of([&] { ops::spike(tape, Tensor::zeros({2, 3}), opt); }).find("must be > 0, got -1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::plif_spike(tape, Tensor::zeros({2, 3}), Tensor::zeros({2})); })
                .find("plif: decay_logit must hold one value (shape () or (1)), got (2)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::plif_spike(tape, Tensor::zeros({2, 3}), Tensor::zeros({1}, DType::F64)); })
                .find("plif: decay_logit is float64 but x is float32"),
            std::string::npos);
  opt = {};
  opt.backward = ops::SpikeBackward::rga;
  EXPECT_NE(error_of([&] { ops::plif_spike(tape, Tensor::zeros({2, 3}), Tensor::zeros({1}), opt); })
                .find("plif: the RGA backward needs rga_tau"),
            std::string::npos);
  opt.rga_tau = 2.0;
  EXPECT_NE(error_of([&] { ops::spike(tape, Tensor::zeros({2, 3}), opt); }).find("lif: rga_tau must be in [0,1], got 2"),
            std::string::npos);
}

}  // namespace
}  // namespace spikegrad::testing
