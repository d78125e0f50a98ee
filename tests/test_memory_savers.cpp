// The memory savers of a spiking training step (issue 7, item 3), each checked against the path it replaces:
//   - ops::batch_norm_spike (fused BN + LIF/IF that recomputes the neuron's records in backward) equals
//     batch_norm followed by spike: same spikes, same running buffers, same gradients;
//   - conv2d with input_levels (input kept as bytes for backward) gives the gradients of the float path;
//   - TapKeep: a forward keeps only the taps asked for;
//   - a whole model with the savers on equals the model with them off, and its training step's peak
//     memory is lower (allocator bytes, deterministic on the CPU — not a timing).
// The op-table cases at the top also put both ops through the CUDA-vs-CPU and finite-difference checks.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/allocator.h"
#include "engine/optim.h"
#include "kernels/spike_pack.h"
#include "losses/losses.h"
#include "models/model.h"
#include "support/model_config.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// ---- op table ------------------------------------------------------------------------------------------
// Inputs: x (T·B,C,H,W), weight, bias, running_mean, running_var. T = 3.
std::vector<Tensor> bn_spike_inputs(const Shape& x_shape, DType d, uint64_t seed) {
  const int64_t C = x_shape[1];
  // BN bias in [0.2, 1]: the normalised currents reach the threshold often, so the layers fire (10-20%).
  return {randn(x_shape, d, seed, 1.5), uniform({C}, d, seed + 1, 0.5, 1.5), uniform({C}, d, seed + 2, 0.2, 1.0),
          randn({C}, d, seed + 3, 0.5), uniform({C}, d, seed + 4, 0.5, 2.0)};
}
std::function<Tensor(Tape&, const std::vector<Tensor>&)> bn_spike(bool training, ops::SpikeOptions opt) {
  return [training, opt](Tape& t, const std::vector<Tensor>& x) {
    ops::BatchNormOptions bn;
    bn.training = training;
    return ops::batch_norm_spike(t, x[0], x[1], x[2], x[3], x[4], bn, 3, opt);
  };
}
ops::SpikeOptions smooth_lif() {
  ops::SpikeOptions o;
  o.smooth = true;  // finite differences need a differentiable forward (spikes are steps otherwise)
  o.surrogate = ops::Surrogate::sigmoid(4.0);
  return o;
}
ops::SpikeOptions smooth_if_soft() {
  ops::SpikeOptions o = smooth_lif();
  o.neuron = ops::NeuronKind::if_;
  o.reset = ops::ResetKind::soft;
  return o;
}

SG_OP_CASE({.name = "batch_norm_spike/train_lif_smooth",
            .make_inputs = [](DType d) { return bn_spike_inputs({6, 3, 3, 4}, d, 100); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_spike(true, smooth_lif())});
SG_OP_CASE({.name = "batch_norm_spike/eval_if_soft_smooth",
            .make_inputs = [](DType d) { return bn_spike_inputs({9, 2, 2, 3}, d, 110); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_spike(false, smooth_if_soft())});
SG_OP_CASE({.name = "batch_norm_spike/train_2d_smooth",
            .make_inputs = [](DType d) { return bn_spike_inputs({12, 5}, d, 120); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_spike(true, smooth_lif())});

// conv2d keeping its input as bytes. Only w and b are perturbed by the finite differences: x must stay on
// the levels it promises (a perturbed x is rejected, which the error test below relies on).
std::vector<Tensor> level_conv_inputs(DType d, uint64_t seed, int levels) {
  Tensor x = uniform({2, 3, 5, 6}, d, seed, 0, 1);  // -> multiples of 1/levels in [0,1]
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) {
    if (d == DType::F32) x.data<float>()[i] = std::floor(x.data<float>()[i] * float(levels + 1)) / float(levels);
    else x.data<double>()[i] = std::floor(x.data<double>()[i] * double(levels + 1)) / double(levels);
  }
  return {x, randn({4, 3, 3, 3}, d, seed + 1, 0.5), randn({4}, d, seed + 2)};
}
std::function<Tensor(Tape&, const std::vector<Tensor>&)> level_conv(int levels, int stride) {
  return [levels, stride](Tape& t, const std::vector<Tensor>& in) {
    ops::Conv2dOptions o{stride, 1};
    o.input_levels = levels;
    return ops::conv2d(t, in[0], in[1], in[2], o);
  };
}
SG_OP_CASE({.name = "conv2d/input_levels_spikes",
            .make_inputs = [](DType d) { return level_conv_inputs(d, 130, 1); },
            .grad_inputs = {1, 2},
            .forward = level_conv(1, 1)});
SG_OP_CASE({.name = "conv2d/input_levels_pooled_s2",
            .make_inputs = [](DType d) { return level_conv_inputs(d, 140, 4); },
            .grad_inputs = {1, 2},
            .forward = level_conv(4, 2)});

// ---- fused equals unfused --------------------------------------------------------------------------------
struct Grads {
  Tensor y, dx, dw, db, running_mean, running_var;
};

// One forward + backward with a fixed random upstream gradient R (loss = sum(y * R)).
Grads run_bn_spike(bool fused, DType d, bool training, const ops::SpikeOptions& opt, int64_t T, const Shape& shape) {
  std::vector<Tensor> in = bn_spike_inputs(shape, d, 7);
  for (int k = 0; k < 3; ++k) in[size_t(k)].set_requires_grad(true);
  Tape tape;
  ops::BatchNormOptions bn;
  bn.training = training;
  Tensor y;
  if (fused) {
    y = ops::batch_norm_spike(tape, in[0], in[1], in[2], in[3], in[4], bn, T, opt);
  } else {
    Tensor u = ops::batch_norm(tape, in[0], in[1], in[2], in[3], in[4], bn);
    y = ops::reshape(tape, ops::spike(tape, ops::reshape(tape, u, {T, -1}), opt), shape);
  }
  Tensor r = randn(shape, d, 99);
  std::vector<Tensor> g = tape.grad(ops::sum(tape, ops::mul(tape, y, r)), {in[0], in[1], in[2]});
  return {y, g[0], g[1], g[2], in[3], in[4]};
}

void expect_identical(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
  for (int64_t i = 0; i < a.numel(); ++i)
    ASSERT_EQ(a64.data<double>()[i], b64.data<double>()[i]) << what << " differs at " << i;
}

TEST(BatchNormSpike, EqualsBatchNormThenSpikeExactly) {
  struct Variant {
    const char* name;
    bool training;
    ops::SpikeOptions opt;
  };
  ops::SpikeOptions lif;
  ops::SpikeOptions if_soft_detach;
  if_soft_detach.neuron = ops::NeuronKind::if_;
  if_soft_detach.reset = ops::ResetKind::soft;
  if_soft_detach.detach_reset = true;
  ops::SpikeOptions rga;
  rga.backward = ops::SpikeBackward::rga;
  ops::SpikeOptions atan_threshold;
  atan_threshold.surrogate = ops::Surrogate::atan(2.0);
  atan_threshold.threshold = 0.7;
  const Variant variants[] = {{"lif train", true, lif},           {"lif eval", false, lif},
                              {"if soft detach", true, if_soft_detach}, {"rga eval", false, rga},
                              {"atan theta 0.7", true, atan_threshold}, {"smooth", true, smooth_lif()}};
  for (DType d : {DType::F32, DType::F64})
    for (const Variant& v : variants) {
      SCOPED_TRACE(std::string(v.name) + (d == DType::F32 ? " f32" : " f64"));
      const Shape shape{8, 3, 5, 7};  // T = 4, B = 2
      Grads a = run_bn_spike(true, d, v.training, v.opt, 4, shape);
      Grads b = run_bn_spike(false, d, v.training, v.opt, 4, shape);
      double spikes = 0;
      for (double s : a.y.to(DType::F64).to_vector<double>()) spikes += s;
      if (!v.opt.smooth) ASSERT_GT(spikes, 0.05 * double(a.y.numel())) << "the inputs must make the layer fire";
      expect_identical(a.y, b.y, "spikes");
      expect_identical(a.dx, b.dx, "dx");
      expect_identical(a.dw, b.dw, "d weight");
      expect_identical(a.db, b.db, "d bias");
      expect_identical(a.running_mean, b.running_mean, "running_mean");
      expect_identical(a.running_var, b.running_var, "running_var");
    }
}

TEST(BatchNormSpike, RejectsBadTimeStepsAndNeurons) {
  std::vector<Tensor> in = bn_spike_inputs({6, 2, 3, 3}, DType::F32, 1);
  Tape tape;
  expect_error([&] { ops::batch_norm_spike(tape, in[0], in[1], in[2], in[3], in[4], {}, 4); },
               "batch_norm_spike: time_steps must be >= 1 and divide x.size(0) = T·B = 6, got 4");
  expect_error([&] { ops::batch_norm_spike(tape, in[0], in[1], in[2], in[3], in[4], {}, 0); },
               "batch_norm_spike: time_steps must be >= 1");
  ops::SpikeOptions bad;
  bad.threshold = -1;
  expect_error([&] { ops::batch_norm_spike(tape, in[0], in[1], in[2], in[3], in[4], {}, 3, bad); },
               "lif: threshold must be > 0");
  expect_error([&] { ops::batch_norm_spike(tape, Tensor::zeros({6, 2, 3}), in[1], in[2], in[3], in[4], {}, 3); },
               "batch_norm: x must be (N,C) or (N,C,H,W)");
}

// ---- conv2d input_levels ---------------------------------------------------------------------------------
TEST(Conv2dInputLevels, GradientsEqualTheFloatPathExactly) {
  for (DType d : {DType::F32, DType::F64})
    for (int levels : {1, 4}) {
      SCOPED_TRACE(std::to_string(levels) + (d == DType::F32 ? " f32" : " f64"));
      std::vector<Tensor> grads[2];
      for (int packed = 0; packed < 2; ++packed) {
        std::vector<Tensor> in = level_conv_inputs(d, 5, levels);
        for (Tensor& t : in) t.set_requires_grad(true);
        Tape tape;
        Tensor y = level_conv(packed ? levels : 0, 1)(tape, in);
        grads[packed] = tape.grad(ops::sum(tape, ops::mul(tape, y, randn(y.shape(), d, 3))), in);
      }
      for (size_t k = 0; k < 3; ++k) expect_identical(grads[1][k], grads[0][k], "gradient " + std::to_string(k));
    }
}

TEST(Conv2dInputLevels, RejectsValuesOffTheLevelsAndBadLevelCounts) {
  std::vector<Tensor> in = level_conv_inputs(DType::F32, 5, 1);
  in[1].set_requires_grad(true);
  in[0].data<float>()[7] = 0.5f;
  Tape tape;
  expect_error([&] { level_conv(1, 1)(tape, in); },
               "conv2d: input_levels = 1 promises x holds multiples of 1/1 in [0,255], but x[7] = 0.5");
  expect_error([&] { level_conv(3, 1)(tape, in); }, "conv2d: input_levels must be 0 (off) or a power of two in [1,128], got 3");
  expect_error([&] { level_conv(256, 1)(tape, in); }, "got 256");
  // Not recording (no gradient wanted): nothing is packed, so nothing is checked.
  in[1].set_requires_grad(false);
  EXPECT_NO_THROW(level_conv(1, 1)(tape, in));
}

TEST(Conv2dInputLevels, PackNamesTheFirstBadElementAcrossChunks) {
  // Large enough for pack_levels_cpu's parallel, chunked check (chunks of 16384): violations in two chunks, the
  // later one found first by another thread; the index returned is still the first, whatever its kind.
  const int64_t n = 200000;
  for (const float bad_value : {0.5f, -1.f, 256.f, std::nanf("")}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(i % 3) / 4.f;  // levels of 1/4: 0, 0.25, 0.5
    std::vector<uint8_t> q(static_cast<size_t>(n));
    EXPECT_EQ(pack_levels_cpu<float>(x.data(), q.data(), n, 4), -1);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(q[size_t(i)], uint8_t(i % 3)) << i;
    x[150001] = 3.f;  // 12: a level, still fine
    EXPECT_EQ(pack_levels_cpu<float>(x.data(), q.data(), n, 4), -1);
    x[180000] = bad_value / 4.f;
    x[70001] = bad_value / 4.f;
    EXPECT_EQ(pack_levels_cpu<float>(x.data(), q.data(), n, 4), 70001) << bad_value;
  }
}

// ---- conv backends through the op ------------------------------------------------------------------------
TEST(Conv2dBackends, Tf32NeedsTheHandWrittenBackend) {
  expect_error([] { ops::set_conv_settings({ops::ConvBackend::cudnn, true}); },
               "conv settings: tf32 needs the hand-written backend (--conv ours)");
  EXPECT_EQ(ops::conv_settings().backend, ops::ConvBackend::cudnn) << "a rejected setting changes nothing";
}

// ops::conv2d with --conv ours (fp32), float and byte-packed inputs, against the CPU op.
TEST(Conv2dBackends, OursThroughTheOpMatchesCpu) {
  SG_SKIP_WITHOUT_CUDA();
  ScopedConvSettings ours({ops::ConvBackend::ours, false});
  for (int levels : {0, 1, 4}) {
    SCOPED_TRACE("input_levels " + std::to_string(levels));
    std::vector<Tensor> outs[2];
    for (int cuda = 0; cuda < 2; ++cuda) {
      std::vector<Tensor> in = level_conv_inputs(DType::F32, 21, levels == 0 ? 1 : levels);
      for (Tensor& t : in) {
        if (cuda) t = t.to(Device::CUDA);
        t.set_requires_grad(true);
      }
      Tape tape;
      Tensor y = level_conv(levels, 2)(tape, in);
      std::vector<Tensor> g = tape.grad(ops::sum(tape, ops::mul(tape, y, randn(y.shape(), DType::F32, 3).to(y.device()))), in);
      outs[cuda] = {y.to(Device::CPU), g[0].to(Device::CPU), g[1].to(Device::CPU), g[2].to(Device::CPU)};
    }
    const char* names[] = {"y", "dx", "dw", "db"};
    for (size_t k = 0; k < 4; ++k) expect_close(outs[1][k], outs[0][k], 1e-5, 1e-5, names[k]);
  }
}

// ---- taps ------------------------------------------------------------------------------------------------
TEST(TapKeep, KeepsOnlyWhatIsAsked) {
  auto m = make_model("small_cnn", model_config(1, 28));
  const Tensor images = uniform({2, 1, 28, 28}, DType::F32, 3, 0, 1);
  NoGradGuard ng;
  Tape tape;
  ForwardResult all = m->forward(tape, images);
  ASSERT_GE(all.taps.entries().size(), 2u);
  const std::string x = all.taps.first_name(), z = all.taps.last_conv_name();

  ForwardResult none = m->forward(tape, images, TapKeep::none());
  EXPECT_TRUE(none.taps.entries().empty());
  EXPECT_EQ(none.taps.listed().size(), all.taps.entries().size()) << "names and shapes are still listed";
  EXPECT_EQ(none.taps.shape(z), all.taps.get(z).shape());
  expect_error([&] { none.taps.get(x); }, {"taps: tap '" + x + "' exists but this forward did not keep it"});

  ForwardResult mi = m->forward(tape, images, TapKeep::mi());
  ASSERT_EQ(mi.taps.entries().size(), 2u);
  EXPECT_EQ(mi.taps.entries()[0].name, x);
  EXPECT_EQ(mi.taps.entries()[1].name, z);
  expect_identical(mi.taps.get(z), all.taps.get(z), "Z tap");

  ForwardResult named = m->forward(tape, images, TapKeep::mi(z, x));
  EXPECT_EQ(named.taps.entries().size(), 2u);
  expect_error([&] { named.taps.get("features.99"); }, "taps: no tap named 'features.99'");
}

// ---- whole model -----------------------------------------------------------------------------------------
struct StepResult {
  Tensor logits;
  std::vector<Tensor> grads;
  size_t step_peak = 0, param_bytes = 0;
};

StepResult train_step(const std::string& model, bool savers, bool tmi) {
  ModelConfig c = model_config(3, 32);
  c.fuse_bn_spike = c.pack_spike_inputs = savers;
  auto m = make_model(model, c);
  LossConfig loss;
  loss.mi_lambda = tmi ? 0.05 : 0.0;
  const Tensor images = uniform({4, 3, 32, 32}, DType::F32, 11, 0, 1);
  const Tensor y = labels(4, c.num_classes, 12);
  const size_t before = allocator(Device::CPU).stats().current_bytes;
  allocator(Device::CPU).reset_peak();
  StepResult r;
  {
    Tape tape;
    ForwardResult out = m->forward(tape, images, savers ? taps_needed(loss) : TapKeep::everything());
    LossParts parts = compute_loss(tape, out.logits, y, out.taps, loss);
    if (savers) out.taps = Taps();  // as apps/train.cpp does once the loss has read them
    tape.backward(parts.total);
    r.logits = out.logits;
  }
  r.step_peak = allocator(Device::CPU).stats().peak_bytes - before;
  for (const NamedTensor& p : m->parameters()) {
    r.grads.push_back(p.tensor.grad());
    r.param_bytes += size_t(p.tensor.numel()) * sizeof(float);
  }
  return r;
}

TEST(MemorySavers, ModelWithSaversEqualsModelWithoutAndPeaksLower) {
  for (bool tmi : {false, true}) {
    SCOPED_TRACE(tmi ? "CE + MI" : "CE");
    StepResult plain = train_step("vggsnn", false, tmi);
    StepResult saver = train_step("vggsnn", true, tmi);
    expect_identical(saver.logits, plain.logits, "logits");
    ASSERT_EQ(saver.grads.size(), plain.grads.size());
    for (size_t k = 0; k < plain.grads.size(); ++k) {
      ASSERT_TRUE(plain.grads[k].defined() && saver.grads[k].defined());
      expect_identical(saver.grads[k], plain.grads[k], "parameter gradient " + std::to_string(k));
    }
    // The step peak includes the parameter gradients (37 MB of VGGSNN's 9.2M parameters, the same on both
    // paths); the rest is what the step holds for backward. Per neuron per step the plain path keeps the
    // conv output (4 B, BN's input), h (4 B) and the spikes (4 B, next conv's input and a tap); the savers
    // keep the conv output and 1 B of spikes: 12 -> 5 B on spike-fed layers, less elsewhere (the first
    // conv's input is the image). Measured at B = 4, T = 2: 0.63 (CE), 0.61 (CE + MI) (recorded as test
    // properties). The bound leaves room for the allocator's block rounding.
    const double plain_rest = double(plain.step_peak) - double(plain.param_bytes);
    const double saver_rest = double(saver.step_peak) - double(saver.param_bytes);
    ::testing::Test::RecordProperty(tmi ? "ratio_tmi" : "ratio_ce", std::to_string(saver_rest / plain_rest));
    EXPECT_LT(saver_rest, 0.75 * plain_rest) << "step peak minus parameter gradients: with savers " << saver_rest
                                             << " B, without " << plain_rest << " B";
  }
}

}  // namespace
}  // namespace spikegrad::testing
