// The residual models (models/resnets.cpp on models/graph.h): SpikingJelly's names and sizes, finite-difference
// gradients of every family through the whole graph in float64, the graph's fusion and spike packing against
// the plain path, the layer trace, the convex merge and its simplex projection, and CUDA against the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/rng.h"
#include "models/resnets.h"
#include "models/retraction.h"
#include "support/op_cases.h"

using namespace spikegrad;

namespace {

ModelConfig config(int64_t channels, int64_t size, int64_t classes = 10, int64_t steps = 2) {
  ModelConfig c;
  c.in_channels = channels;
  c.image_size = size;
  c.num_classes = classes;
  c.time_steps = steps;
  c.init_seed = 7;
  return c;
}

std::set<std::string> state_names(const Model& m) {
  std::set<std::string> names;
  for (const auto& t : m.state()) names.insert(t.name);
  return names;
}

Tensor random_images(int64_t b, int64_t c, int64_t size, uint64_t seed) {
  Generator gen(seed);
  return rand_uniform({b, c, size, size}, gen);
}

}  // namespace

// Counts from SpikingJelly 2.0 (torchvision layout, 3 input channels, 10 classes): sum of parameter numels, and
// state_dict entries without BN's num_batches_tracked counters (which spikegrad does not keep).
TEST(ResidualModels, NamesAndSizesMatchSpikingJelly) {
  struct Expect {
    const char* model;
    int64_t params;
    size_t tensors;
  };
  for (const Expect& e : {Expect{"sew_resnet18", 11181642, 102}, Expect{"spiking_resnet18", 11181642, 102},
                          Expect{"sew_resnet34", 21289802, 182}, Expect{"sew_resnet50", 23528522, 267},
                          Expect{"spiking_resnet50", 23528522, 267}}) {
    auto m = make_model(e.model, config(3, 32));
    EXPECT_EQ(m->num_parameters(), e.params) << e.model;
    EXPECT_EQ(m->state().size(), e.tensors) << e.model;
  }
  const auto sew = state_names(*make_model("sew_resnet18", config(3, 32)));
  for (const char* n : {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                        "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean", "layer4.1.conv2.weight",
                        "fc.weight", "fc.bias"})
    EXPECT_TRUE(sew.count(n)) << n;
  EXPECT_FALSE(sew.count("conv1.bias"));  // SpikingJelly's convs have no bias
  const auto b50 = state_names(*make_model("sew_resnet50", config(3, 32)));
  EXPECT_TRUE(b50.count("layer1.0.conv3.weight"));
  EXPECT_TRUE(b50.count("layer1.0.downsample.0.weight"));  // 64 -> 256 channels: a downsample at stride 1
  const auto wrn = state_names(*make_model("wrn16_4", config(3, 32)));
  for (const char* n : {"conv1.weight", "block1.0.bn1.weight", "block1.0.convShortcut.weight", "block1.0.convex.comb",
                        "block1.1.conv2.weight", "block3.1.convex.comb", "bn1.running_mean", "fc.bias"})
    EXPECT_TRUE(wrn.count(n)) << n;
  EXPECT_FALSE(wrn.count("block1.1.convShortcut.weight"));  // equal widths: identity shortcut
  const auto r19 = state_names(*make_model("resnet19", config(3, 32)));
  for (const char* n : {"conv1.weight", "layer1.2.conv2.weight", "layer2.0.downsample.0.weight", "layer3.1.bn2.bias",
                        "fc1.weight", "fc2.bias"})
    EXPECT_TRUE(r19.count(n)) << n;
}

TEST(ResidualModels, EveryModelRunsOnCifarAndFashionMnistShapes) {
  // Alternately 3×32×32 and 1×28×28 (each model builds in ~1 s: one shape each keeps the test short).
  bool cifar = true;
  for (const std::string& name : residual_model_names()) {
    cifar = !cifar;
    {
      const int64_t channels = cifar ? 3 : 1, size = cifar ? 32 : 28;
      auto m = make_model(name, config(channels, size, 10, 2));
      Tape tape;
      const ForwardResult out = m->forward(tape, random_images(2, channels, size, 1));
      EXPECT_EQ(out.logits.shape(), (Shape{2, 2, 10})) << name;
      for (float v : out.logits.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << name;
      // TMI's defaults: the first and the last spiking layer with a feature map.
      EXPECT_EQ(out.taps.first_name(), name == "wrn16_4" ? "block1.0.act1" : "sn1") << name;
      EXPECT_FALSE(out.taps.last_conv_name().empty()) << name;
    }
  }
}

TEST(ResidualModels, SwitchesAreCheckedPerModel) {
  ModelConfig c = config(3, 32);
  c.stem_pool = "avg";
  EXPECT_NO_THROW(make_model("sew_resnet18", c));
  try {
    make_model("spiking_resnet18", c);
    FAIL() << "avg stem pool accepted for Spiking-ResNet";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max only"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_model("vggsnn", c), Error);
  c.stem_pool = "median";
  EXPECT_THROW(make_model("sew_resnet18", c), Error);
  c = config(3, 32);
  c.sew_connect = "or";
  try {
    make_model("sew_resnet18", c);
    FAIL() << "unknown connect function accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--sew-connect must be add, and or iand"), std::string::npos) << e.what();
  }
  c.sew_connect = "iand";
  EXPECT_NO_THROW(make_model("sew_resnet34", c));
  EXPECT_THROW(make_model("wrn16_4", c), Error);
}

// ---- finite differences through the whole graph, float64, smooth neurons ----------------------------------

namespace {

// The graph of `name` built with float64 parameters, run directly (the model's input encoding is not part of
// it: x is the (T·B,C,H,W) input of the first layer).
struct Graph64 {
  ModelConfig c;
  NamedTensors params, buffers;
  LayerPtr root;
  Graph64(const std::string& name, ModelConfig config) : c(config) {
    GraphBuilder b(
        name, c,
        [this](const std::string& n, Tensor t) {
          Tensor d = t.to(DType::F64);
          d.set_requires_grad(true);
          params.push_back({n, d});
          return d;
        },
        [this](const std::string& n, Tensor t) {
          Tensor d = t.to(DType::F64);
          buffers.push_back({n, d});
          return d;
        });
    root = residual_model_build(name, c)(b);
  }
  Tensor param(const std::string& n) const {
    for (const auto& p : params)
      if (p.name == n) return p.tensor;
    ADD_FAILURE() << "no parameter " << n;
    return {};
  }
  // sum(logits · weights): a scalar whose gradient reaches every logit differently.
  Tensor loss(Tape& tape, const Tensor& x, int64_t batch, const Tensor& weights) const {
    Taps taps;
    LayerRun run;
    run.steps = c.time_steps;
    // BN with running statistics: an affine map. Batch statistics over the few values of a tiny test network's
    // 1×1 maps make the loss so curved that no finite-difference step resolves it; BN's batch-statistics
    // gradient has its own finite-difference checks (tests/test_batch_norm.cpp). Here the graph's wiring is
    // under test: branches, merges, the fused op, pools, the classifier.
    run.training = false;
    run.neuron = c.neuron;
    GraphRun g{tape, run, batch, taps};
    g.fuse = true;  // the training path: BN + neuron fused where they are adjacent
    const Tensor logits = root->forward(g, Flow{x, 0}).x;
    return ops::sum(tape, ops::mul(tape, logits, weights));
  }
};

void expect_gradients_match_finite_differences(const std::string& name, ModelConfig c,
                                               const std::vector<std::string>& checked, bool check_input = true) {
  c.neuron.smooth = true;  // continuous forward: finite differences are meaningful
  c.neuron.surrogate = ops::Surrogate::atan(2.0);
  Graph64 net(name, c);
  // Running variances of 0.1 (a BN gain of about 3) keep a fresh deep network's smooth spikes away from 0, so
  // the gradient does not vanish into rounding over 20 layers: with the initial variance of 1 it reaches the
  // input at ~1e-9 and finite differences resolve it to only 1e-4.
  for (auto& b : net.buffers)
    if (b.name.size() > 11 && b.name.compare(b.name.size() - 11, 11, "running_var") == 0) {
      double* v = b.tensor.data<double>();
      for (int64_t i = 0; i < b.tensor.numel(); ++i) v[i] = 0.1;
    }
  const int64_t batch = 2, n = c.time_steps * batch;
  Generator gen(11);
  Tensor x = rand_uniform({n, c.in_channels, c.image_size, c.image_size}, gen).to(DType::F64);
  x.set_requires_grad(true);
  const Tensor weights = rand_normal({n, c.num_classes}, gen).to(DType::F64);
  std::vector<Tensor> wrt{x};
  for (const auto& p : checked) wrt.push_back(net.param(p));
  const size_t first = check_input ? 0 : 1;
  Tape tape;
  const std::vector<Tensor> grads = tape.grad(net.loss(tape, x, batch, weights), wrt);
  auto value = [&] {
    NoGradGuard no_grad;
    Tape t;
    return net.loss(t, x, batch, weights).item();
  };
  for (size_t k = first; k < wrt.size(); ++k) {
    double* p = wrt[k].data<double>();
    const std::vector<double> g = grads[k].to_vector<double>();
    double scale = 0;
    for (double v : g) scale = std::max(scale, std::fabs(v));
    ASSERT_GT(scale, 0) << name << " " << (k ? checked[k - 1] : "input") << ": no gradient at all";
    for (int64_t i : {int64_t(0), wrt[k].numel() / 2, wrt[k].numel() - 1}) {
      const double saved = p[i], h = 1e-5;
      p[i] = saved + h;
      const double up = value();
      p[i] = saved - h;
      const double down = value();
      p[i] = saved;
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(g[size_t(i)], fd, 1e-6 * scale + 1e-6 * std::fabs(fd))
          << name << " (" << c.sew_connect << ") " << (k ? checked[k - 1] : "input") << "[" << i << "]";
    }
  }
}

}  // namespace

TEST(ResidualModels, SpikingResNetGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences(
      "spiking_resnet18", config(2, 8),
      {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
       "layer2.0.downsample.1.bias", "layer4.1.bn2.weight", "fc.weight"});
}

TEST(ResidualModels, SewResNetGradientsMatchFiniteDifferencesForEveryConnectFunction) {
  for (const char* connect : {"add", "iand"}) {
    ModelConfig c = config(2, 8);
    c.sew_connect = connect;
    c.stem_pool = std::string(connect) == "add" ? "avg" : "max";
    expect_gradients_match_finite_differences(
        "sew_resnet18", c, {"conv1.weight", "layer1.1.conv2.weight", "layer3.0.downsample.0.weight", "fc.bias"});
  }
  // AND multiplies smooth spikes below 1 at every one of the 8 merges: the gradient reaching the stem shrinks
  // below what finite differences resolve (~1e-11), so AND is checked on the last stages.
  ModelConfig c = config(2, 8);
  c.sew_connect = "and";
  expect_gradients_match_finite_differences(
      "sew_resnet18", c, {"layer4.0.conv1.weight", "layer4.0.downsample.0.weight", "layer4.1.conv2.weight", "fc.weight"},
      /*check_input=*/false);
}

TEST(ResidualModels, BottleneckResNet19AndWrnGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences("sew_resnet50", config(1, 8),
                                            {"layer1.0.conv3.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.weight"});
  expect_gradients_match_finite_differences("resnet19", config(3, 8),
                                            {"conv1.weight", "layer2.0.conv1.weight", "fc1.weight", "fc2.bias"});
  expect_gradients_match_finite_differences(
      "wrn16_4", config(3, 8),
      {"conv1.weight", "block1.0.convShortcut.weight", "block1.0.convex.comb", "block2.1.convex.comb", "bn1.weight", "fc.weight"});
}

// ---- the graph's own machinery -------------------------------------------------------------------------

namespace {
struct StepResult {
  std::vector<float> logits;
  std::vector<std::vector<float>> grads;
};
StepResult train_step(const std::string& name, ModelConfig c, const Tensor& images) {
  auto m = make_model(name, c);
  Tape tape;
  const ForwardResult out = m->forward(tape, images, TapKeep::none());
  Generator gen(5);
  const Tensor w = rand_normal(out.logits.shape(), gen);
  tape.backward(ops::sum(tape, ops::mul(tape, out.logits, w)));
  StepResult r{out.logits.to_vector<float>(), {}};
  for (const auto& p : m->parameters()) r.grads.push_back(p.tensor.grad().to_vector<float>());
  return r;
}
}  // namespace

// Fused BN + neuron and byte-packed spike inputs (SEW sums of spikes included) are memory savers: the same
// numbers as the plain ops, with real 0/1 spikes.
TEST(ResidualModels, FusionAndSpikePackingGiveThePlainPathsResults) {
  for (const char* name : {"sew_resnet18", "spiking_resnet18", "wrn16_4"}) {
    ModelConfig plain = config(3, 16);
    plain.fuse_bn_spike = false;
    plain.pack_spike_inputs = false;
    ModelConfig saving = config(3, 16);
    const Tensor images = random_images(3, 3, 16, 2);
    const StepResult a = train_step(name, plain, images), b = train_step(name, saving, images);
    EXPECT_EQ(a.logits, b.logits) << name;
    ASSERT_EQ(a.grads.size(), b.grads.size());
    for (size_t k = 0; k < a.grads.size(); ++k)
      for (size_t i = 0; i < a.grads[k].size(); ++i)
        ASSERT_NEAR(a.grads[k][i], b.grads[k][i], 1e-5f * (1.f + std::fabs(a.grads[k][i]))) << name << " tensor " << k;
  }
}

TEST(ResidualModels, TheTraceRecordsEveryModuleInOrderWithoutChangingTheResult) {
  auto m = make_model("sew_resnet18", config(3, 16));
  const Tensor images = random_images(2, 3, 16, 3);
  std::vector<float> plain;
  {
    Tape tape;
    plain = m->forward(tape, images).logits.to_vector<float>();
  }
  LayerTrace trace;
  m->set_trace(&trace);
  Tape tape;
  const std::vector<float> traced = m->forward(tape, images).logits.to_vector<float>();
  m->set_trace(nullptr);
  EXPECT_EQ(plain, traced);
  const auto& r = trace.records();
  ASSERT_GT(r.size(), 10u);
  std::vector<std::string> head;
  for (size_t i = 0; i < 6; ++i) head.push_back(r[i].name);
  EXPECT_EQ(head, (std::vector<std::string>{"input", "conv1", "bn1", "sn1", "maxpool", "layer1.0.conv1"}));
  EXPECT_EQ(r[1].weight, "conv1.weight");
  EXPECT_EQ(r[1].kernel, 7);
  EXPECT_EQ(r[1].stride, 2);
  bool merge_seen = false;
  for (const auto& rec : r)
    if (rec.kind == LayerRecord::merge && rec.name == "layer2.0") {
      merge_seen = true;
      EXPECT_EQ(rec.detail, "add");
      ASSERT_EQ(rec.inputs.size(), 2u);
      EXPECT_EQ(rec.inputs[0].shape(), rec.output.shape());
    }
  EXPECT_TRUE(merge_seen);
  EXPECT_EQ(r.back().name, "fc");
  EXPECT_EQ(r.back().kind, LayerRecord::linear);
}

TEST(ResidualModels, ConvexWeightsAreProjectedOntoTheSimplex) {
  auto m = make_model("wrn16_4", config(3, 16));
  Tensor comb;
  for (const auto& p : m->parameters())
    if (p.name == "block2.0.convex.comb") comb = p.tensor;
  ASSERT_TRUE(comb.defined());
  EXPECT_EQ(comb.to_vector<float>(), (std::vector<float>{0.5f, 0.5f}));
  // Euclidean projection: (0.9, 0.5) -> (0.7, 0.3); (2, -1) -> (1, 0); (0.2, 0.3) -> (0.45, 0.55).
  for (auto [in, out] : {std::pair<std::vector<float>, std::vector<float>>{{0.9f, 0.5f}, {0.7f, 0.3f}},
                         {{2.f, -1.f}, {1.f, 0.f}},
                         {{0.2f, 0.3f}, {0.45f, 0.55f}}}) {
    comb.copy_from(Tensor::from_vector(in, {2}));
    project_convex_weights(*m);
    const std::vector<float> got = comb.to_vector<float>();
    EXPECT_NEAR(got[0], out[0], 1e-6f);
    EXPECT_NEAR(got[1], out[1], 1e-6f);
  }
}

TEST(ResidualModels, CudaMatchesCpuForwardAndBackward) {
  SG_SKIP_WITHOUT_CUDA();
  for (const char* name : {"sew_resnet18", "wrn16_4"}) {
    ModelConfig c = config(3, 16);
    c.neuron.smooth = true;  // no spike flips from rounding differences
    auto cpu = make_model(name, c);
    auto gpu = make_model(name, c);
    gpu->to(Device::CUDA);
    const Tensor images = random_images(2, 3, 16, 4);
    Tape t1, t2;
    const ForwardResult a = cpu->forward(t1, images, TapKeep::none());
    const ForwardResult b = gpu->forward(t2, images.to(Device::CUDA), TapKeep::none());
    const auto la = a.logits.to_vector<float>(), lb = b.logits.to(Device::CPU).to_vector<float>();
    for (size_t i = 0; i < la.size(); ++i) ASSERT_NEAR(la[i], lb[i], 1e-3f * (1.f + std::fabs(la[i]))) << name;
    t1.backward(ops::mean(t1, a.logits));
    t2.backward(ops::mean(t2, b.logits));
    for (size_t k = 0; k < cpu->parameters().size(); ++k) {
      const auto ga = cpu->parameters()[k].tensor.grad().to_vector<float>();
      const auto gb = gpu->parameters()[k].tensor.grad().to(Device::CPU).to_vector<float>();
      double scale = 0;
      for (float v : ga) scale = std::max(scale, double(std::fabs(v)));
      for (size_t i = 0; i < ga.size(); ++i)
        ASSERT_NEAR(ga[i], gb[i], 1e-3 * scale + 1e-6) << name << " " << cpu->parameters()[k].name << "[" << i << "]";
    }
  }
}
