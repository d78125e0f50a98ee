// Shared helpers of tests/test_attacks.cpp and tests/test_attack_evaluate.cpp: a tiny small_cnn (28x28,
// 1 channel, 4 classes, T = 2) and a synthetic task it learns in seconds.
//
// A "trained" model is needed where the claim is about a working classifier (attacks raise its loss, PGD
// beats FGSM, gradients are non-zero): small_cnn is trained for 40 Adam steps on a synthetic 4-class task
// (a faint patch in one quadrant of a noisy image), once per test binary (about a second on one core).
// The task is deliberately faint (patch +0.15 over noise in [0,0.5]) so that eps = 16/255 attacks bite.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "attacks/attack.h"
#include "attacks/evaluate.h"
#include "engine/optim.h"
#include "support/op_cases.h"

namespace spikegrad::attack_test {

constexpr int64_t kClasses = 4, kSize = 28;

inline ModelConfig tiny_config() {
  ModelConfig c;
  c.in_channels = 1;
  c.image_size = kSize;
  c.num_classes = kClasses;
  c.time_steps = 2;
  c.init_seed = 7;
  return c;
}

struct Batch {
  Tensor images, labels;
};

// Class k: uniform noise in [0, 0.5] plus 0.15 on a 12x12 patch in quadrant k. Some pixels are set to
// exactly 0 and 1 so that the clamps to [0,1] are exercised.
inline Batch synthetic_batch(int64_t n, uint64_t seed) {
  Tensor images = testing::uniform({n, 1, kSize, kSize}, DType::F32, seed, 0.0, 0.5);
  Tensor labels = testing::labels(n, kClasses, seed + 1);
  float* px = images.data<float>();
  const int32_t* y = labels.data<int32_t>();
  for (int64_t b = 0; b < n; ++b) {
    const int64_t r0 = 2 + (y[b] / 2) * 14, c0 = 2 + (y[b] % 2) * 14;
    float* img = px + b * kSize * kSize;
    for (int64_t r = r0; r < r0 + 12; ++r)
      for (int64_t c = c0; c < c0 + 12; ++c) img[r * kSize + c] += 0.15f;
    img[0] = 0.f;
    img[kSize * kSize - 1] = 1.f;
  }
  return {images, labels};
}

inline Tensor mean_logits(Model& model, const Tensor& images) {  // (B,K), model in whatever mode it is in
  NoGradGuard no_grad;
  Tape tape;
  return ops::mean_time(tape, model.forward(tape, images).logits);
}

inline double eval_loss(Model& model, const Batch& batch, const Tensor& images) {
  ModelModeGuard eval(model, std::nullopt);
  NoGradGuard no_grad;
  Tape tape;
  return ops::cross_entropy(tape, mean_logits(model, images), batch.labels).item();
}

inline int64_t correct(const Tensor& pred, const Tensor& labels) {
  const auto p = pred.to_vector<int32_t>(), y = labels.to_vector<int32_t>();
  int64_t n = 0;
  for (size_t i = 0; i < p.size(); ++i) n += p[i] == y[i];
  return n;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(double(x[i]) - double(y[i])));
  return m;
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<float>() == b.to_vector<float>();
}

inline double max_abs(const Tensor& a) { return max_abs_diff(a, Tensor::zeros(a.shape())); }

inline std::unique_ptr<Model> fresh_model() { return make_model("small_cnn", tiny_config()); }

inline Model& trained_model() {
  static std::unique_ptr<Model> model = [] {
    auto m = fresh_model();
    Adam opt(m->parameters(), AdamOptions{3e-3});
    m->train(true);
    for (int step = 0; step < 40; ++step) {
      Batch b = synthetic_batch(16, 1000 + 2 * uint64_t(step));
      Tape tape;
      Tensor loss = ops::cross_entropy(tape, ops::mean_time(tape, m->forward(tape, b.images).logits), b.labels);
      tape.backward(loss);
      opt.step();
      opt.zero_grad();
    }
    m->train(false);
    return m;
  }();
  return *model;
}

inline AttackConfig config(AttackKind kind, double eps) {
  AttackConfig c = rat_preset(kind);
  c.eps = eps;
  return c;
}

// The CUDA contract shared by the attacks that report per-example success: with the trained model on CUDA,
// `run(model, images, labels)` returns {the adversarial batch (on CUDA), per-example fooled flags}; each
// fooled example must be misclassified there. Skips without a usable device; the model goes back to the CPU.
template <class Run>
void expect_fooled_misclassified_on_cuda(int64_t n, uint64_t seed, Run&& run) {
  if (!testing::cuda_ok()) GTEST_SKIP() << "no usable CUDA device";
  Model& model = trained_model();
  model.to(Device::CUDA);
  const Batch b = synthetic_batch(n, seed);
  const auto [adversarial, fooled] = run(model, b.images.to(Device::CUDA), b.labels.to(Device::CUDA));
  const std::vector<int32_t> pred = predict(model, adversarial).template to_vector<int32_t>();
  model.to(Device::CPU);
  EXPECT_EQ(adversarial.device(), Device::CUDA);
  const std::vector<int32_t> y = b.labels.to_vector<int32_t>();
  for (size_t i = 0; i < y.size(); ++i)
    if (fooled[i]) EXPECT_NE(pred[i], y[i]) << "example " << i;
}

inline const AttackKind kAllKinds[] = {AttackKind::fgsm, AttackKind::pgd, AttackKind::bim, AttackKind::gn};

}  // namespace spikegrad::attack_test
