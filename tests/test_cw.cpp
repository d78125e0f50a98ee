// attacks/cw.h (issue 12, item 3): Carlini–Wagner L2 on a trained model — every point it reports is
// misclassified at the L2 norm it reports, inside [0,1], the others come back clean; deterministic; a larger
// c breaks at least as many examples; modes restored and no parameter gradient; the early stop fires when
// the objective rises between two checks (tested where the rise is orders of magnitude above rounding, so
// that the float summation order of the model, e.g. the OpenMP thread count, cannot change the outcome).
#include <cmath>

#include "attack_test_util.h"
#include "attacks/cw.h"

namespace spikegrad {
namespace {
using namespace attack_test;

TEST(Cw, ReportedPointsAreMisclassifiedAtTheirNorms) {
  Model& model = trained_model();
  model.train(true);
  const Batch b = synthetic_batch(8, 71);
  CwConfig c;
  c.c = 5;
  c.steps = 40;
  c.lr = 0.02;
  const CwResult r = cw_l2(model, b.images, b.labels, c);
  const CwResult again = cw_l2(model, b.images, b.labels, c);
  EXPECT_TRUE(model.training()) << "mode restored";
  model.train(false);
  EXPECT_TRUE(bitwise_equal(r.adversarial, again.adversarial));
  for (const NamedTensor& p : model.parameters()) EXPECT_FALSE(p.tensor.grad().defined()) << p.name;
  const std::vector<int32_t> pred = predict(model, r.adversarial).to_vector<int32_t>();
  const std::vector<int32_t> y = b.labels.to_vector<int32_t>();
  const std::vector<float> adv = r.adversarial.to_vector<float>(), x = b.images.to_vector<float>();
  const int64_t d = b.images.numel() / 8;
  int fooled = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    double l2 = 0;
    for (int64_t e = int64_t(i) * d; e < int64_t(i + 1) * d; ++e) {
      ASSERT_TRUE(adv[size_t(e)] >= 0.f && adv[size_t(e)] <= 1.f);
      l2 += (double(adv[size_t(e)]) - x[size_t(e)]) * (double(adv[size_t(e)]) - x[size_t(e)]);
    }
    if (r.fooled[i]) {
      ++fooled;
      EXPECT_NE(pred[i], y[i]) << "example " << i;
      EXPECT_NEAR(std::sqrt(l2), r.l2[i], 1e-4) << "example " << i;
    } else {
      EXPECT_EQ(l2, 0.0) << "an example never fooled comes back clean";
    }
  }
  EXPECT_GT(fooled, 0) << "CW with c = 5 breaks some examples of the small model";
  // A smaller c weighs the distance more: it breaks no more examples.
  c.c = 0.05;
  const CwResult weak = cw_l2(model, b.images, b.labels, c);
  int weak_fooled = 0;
  for (uint8_t f : weak.fooled) weak_fooled += f;
  EXPECT_LE(weak_fooled, fooled);
}

// With c = 1e-6 the objective is ~ the squared L2 distance. Step 1 evaluates the clean image (objective
// ~1e-6); Adam's first update moves every pixel by about lr·(1 − tanh²)/2 whatever the gradient's size, so
// step 2's objective is ~784·(2.5e-3)² ≈ 5e-3 per example: with a check every step (steps = 5) it stops at 2.
TEST(Cw, EarlyStopFiresWhenTheObjectiveRises) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(4, 61);
  CwConfig c;
  c.c = 1e-6;
  c.steps = 5;
  EXPECT_EQ(cw_l2(model, b.images, b.labels, c).steps_run, 2);
}

TEST(Cw, BadSettingsAreNamed) {
  CwConfig c;
  c.c = 0;
  EXPECT_NE(testing::error_of([&] { check_cw_config(c); }).find("c must be finite and > 0"), std::string::npos);
  c = CwConfig();
  c.steps = 0;
  EXPECT_NE(testing::error_of([&] { check_cw_config(c); }).find("steps must be >= 1"), std::string::npos);
}

TEST(Cw, RunsOnCudaWithTheSameContract) {
  expect_fooled_misclassified_on_cuda(4, 71, [](Model& model, const Tensor& images, const Tensor& labels) {
    CwConfig c;
    c.c = 5;
    c.steps = 10;
    CwResult r = cw_l2(model, images, labels, c);
    return std::make_pair(r.adversarial, r.fooled);
  });
}

}  // namespace
}  // namespace spikegrad
