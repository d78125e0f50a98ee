// Models that read event frames (ModelConfig::frame_input, CIFAR10-DVS): the (B,T,C,H,W) input is the
// time-major network's input without repetition, and every attack runs on it.
#include <gtest/gtest.h>

#include <cmath>

#include "attacks/apgd.h"
#include "attacks/attack.h"
#include "attacks/fab.h"
#include "attacks/square.h"
#include "models/model.h"
#include "support/model_config.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

constexpr int64_t kSteps = 3, kChannels = 2, kSize = 16;

ModelConfig frame_config(bool frames) {
  ModelConfig c = model_config(kChannels, kSize, kSteps);
  c.num_classes = 4;
  c.mean = {0.25f, 0.5f, 0.f};
  c.std = {0.5f, 2.f, 1.f};
  c.frame_input = frames;
  return c;
}

// (B,T,C,H,W) with frame t of example b equal to image b: what direct encoding feeds the network.
Tensor repeat_as_frames(const Tensor& images) {
  const int64_t b = images.size(0), per = images.numel() / b;
  const std::vector<float> v = images.to_vector<float>();
  std::vector<float> out;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t t = 0; t < kSteps; ++t) out.insert(out.end(), v.begin() + i * per, v.begin() + (i + 1) * per);
  return Tensor::from_vector<float>(out, {b, kSteps, kChannels, kSize, kSize});
}

TEST(FrameInput, RepeatedFramesEqualDirectEncoding) {
  // Same architecture and init seed: the weights are equal, and a frame sequence that repeats the image
  // must give the direct-encoding network's logits exactly (the same normalisation of the same values).
  auto direct = make_model("small_cnn", frame_config(false));
  auto frames = make_model("small_cnn", frame_config(true));
  const Tensor images = uniform({3, kChannels, kSize, kSize}, DType::F32, 41, 0, 1);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 3, 1}, {3});
  Tensor x_direct = images.clone(), x_frames = repeat_as_frames(images);
  x_direct.set_requires_grad(true);
  x_frames.set_requires_grad(true);
  Tape td, tf;
  const ForwardResult rd = direct->forward(td, x_direct), rf = frames->forward(tf, x_frames);
  ASSERT_EQ(rf.logits.shape(), (Shape{kSteps, 3, 4}));
  EXPECT_EQ(rd.logits.to_vector<float>(), rf.logits.to_vector<float>());
  EXPECT_EQ(rd.taps.get("features.0").to_vector<float>(), rf.taps.get("features.0").to_vector<float>());

  // The image's gradient is the sum over T of the frames' gradients (repeat_time's backward).
  td.backward(ops::cross_entropy(td, ops::mean_time(td, rd.logits), labels));
  tf.backward(ops::cross_entropy(tf, ops::mean_time(tf, rf.logits), labels));
  const std::vector<float> gd = x_direct.grad().to_vector<float>(), gf = x_frames.grad().to_vector<float>();
  const int64_t per = kChannels * kSize * kSize;
  double max_err = 0, max_g = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t i = 0; i < per; ++i) {
      double s = 0;
      for (int64_t t = 0; t < kSteps; ++t) s += gf[size_t((b * kSteps + t) * per + i)];
      max_err = std::max(max_err, std::fabs(s - gd[size_t(b * per + i)]));
      max_g = std::max(max_g, std::fabs(double(gd[size_t(b * per + i)])));
    }
  ASSERT_GT(max_g, 0.0);
  EXPECT_LT(max_err, 1e-6 * std::max(1.0, max_g));  // only the order of the T-sum differs
}

TEST(FrameInput, EachFrameReachesItsTimeStep) {
  auto model = make_model("small_cnn", frame_config(true));
  model->train(false);  // BN on running statistics: examples and steps do not mix through batch statistics
  Tensor x = uniform({2, kSteps, kChannels, kSize, kSize}, DType::F32, 42, 0, 1);
  NoGradGuard ng;
  Tape tape;
  const std::vector<float> before = model->forward(tape, x).taps.get("features.0").to_vector<float>();
  // Zero frame 2 of example 1 only: the first layer's spikes change at (t=2, b=1) and nowhere before it.
  float* px = x.data<float>();
  const int64_t per = kChannels * kSize * kSize;
  for (int64_t i = 0; i < per; ++i) px[(1 * kSteps + 2) * per + i] = 0.f;
  const Tensor after_t = model->forward(tape, x).taps.get("features.0");
  const std::vector<float> after = after_t.to_vector<float>();
  const int64_t step = after_t.numel() / kSteps, example = step / 2;
  for (int64_t t = 0; t < kSteps; ++t)
    for (int64_t b = 0; b < 2; ++b) {
      bool differs = false;
      for (int64_t i = 0; i < example; ++i) differs |= before[size_t(t * step + b * example + i)] != after[size_t(t * step + b * example + i)];
      EXPECT_EQ(differs, t == 2 && b == 1) << "t=" << t << " b=" << b;
    }
}

TEST(FrameInput, RejectsImagesWrongStepsAndAnnMode) {
  auto model = make_model("small_cnn", frame_config(true));
  Tape tape;
  NoGradGuard ng;
  auto expect_error = [&](const Tensor& x, const std::string& part) {
    try {
      model->forward(tape, x);
      FAIL() << "accepted " << shape_str(x.shape());
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error(Tensor::zeros({2, kChannels, kSize, kSize}), "expected (B,3,2,16,16) frames");
  expect_error(Tensor::zeros({2, kSteps + 1, kChannels, kSize, kSize}), "expected (B,3,2,16,16) frames");
  try {
    model->set_ann_mode(AnnMode{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ANN mode needs one static image"), std::string::npos) << e.what();
  }
}

// Every attack keeps frames in the ε-ball and [0,1], and the gradient attacks change them.
TEST(FrameInput, AttacksRunOnFrames) {
  auto model = make_model("small_cnn", frame_config(true));
  model->train(false);
  const Tensor x = uniform({4, kSteps, kChannels, kSize, kSize}, DType::F32, 43, 0, 1);
  const Tensor y = Tensor::from_vector<int32_t>({0, 1, 2, 3}, {4});
  const double eps = 8.0 / 255;
  auto check = [&](const Tensor& adv, const char* name, bool must_move) {
    ASSERT_EQ(adv.shape(), x.shape()) << name;
    const std::vector<float> a = adv.to_vector<float>(), c = x.to_vector<float>();
    double moved = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_LE(std::fabs(a[i] - c[i]), eps + 1e-6) << name << " at " << i;
      ASSERT_TRUE(a[i] >= 0.f && a[i] <= 1.f) << name << " at " << i;
      moved = std::max(moved, double(std::fabs(a[i] - c[i])));
    }
    if (must_move) EXPECT_GT(moved, eps / 2) << name;
  };
  Generator gen(5);
  for (AttackKind kind : {AttackKind::fgsm, AttackKind::pgd, AttackKind::bim}) {
    AttackConfig cfg;
    cfg.kind = kind;
    cfg.eps = eps;
    cfg.alpha = 2.0 / 255;
    check(attack(*model, x, y, cfg, gen), attack_kind_name(kind), true);
  }
  ApgdConfig ac;
  ac.eps = eps;
  ac.iterations = 5;
  check(apgd(*model, x, y, ac, gen).adversarial, "apgd", true);
  SquareConfig sc;
  sc.eps = eps;
  sc.queries = 20;
  check(square_attack(*model, x, y, sc, gen).adversarial, "square", true);
  FabConfig fc;
  fc.iterations = 3;
  ASSERT_EQ(fab_targeted(*model, x, y, fc).adversarial.shape(), x.shape());
}

}  // namespace
}  // namespace spikegrad::testing
