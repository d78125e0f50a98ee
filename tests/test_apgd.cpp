// attacks/apgd.h (issue 12, item 2, first part): APGD's checkpoints and DLR losses against hand-worked
// values, the loss gradients against finite differences, the attack's invariants (ε-ball, [0,1], modes
// restored, no parameter gradient, same seed → same batch), and that on a trained model it is at least as
// strong as PGD with the same number of gradient steps.
#include <cmath>

#include "attack_test_util.h"
#include "attacks/apgd.h"

namespace spikegrad {
namespace {
using namespace attack_test;

// The paper's checkpoints for 100 iterations (Croce & Hein 2020, §3.2: p_1 = 0.22, then growth by
// max(p_j − p_{j−1} − 0.03, 0.06)): 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99.
TEST(Apgd, CheckpointsFollowThePaper) {
  EXPECT_EQ(apgd_checkpoints(100), (std::vector<int>{0, 22, 41, 57, 70, 80, 87, 93, 99}));
  EXPECT_EQ(apgd_checkpoints(10), (std::vector<int>{0, 3, 5, 6, 7, 8, 9}));  // ceil(2.2), ceil(4.1), …
  EXPECT_EQ(apgd_checkpoints(1), (std::vector<int>{0}));
  EXPECT_THROW(apgd_checkpoints(0), Error);
}

// z = (3, 1, 2, 0, −1), label 0: sorted classes 0, 2, 1, 3, 4.
//   DLR        −(z_0 − z_2)/(z_π1 − z_π3) = −(3 − 2)/(3 − 1) = −0.5
//   targeted   t = 3: −(z_0 − z_3)/(z_π1 − (z_π3 + z_π4)/2) = −3/(3 − 0.5) = −1.2
//   CE         log Σ exp(z) − z_0
TEST(Apgd, LossesMatchHandWorkedValuesAndTheirGradientsFiniteDifferences) {
  const std::vector<float> z = {3.f, 1.f, 2.f, 0.f, -1.f};
  std::vector<double> g(5);
  EXPECT_NEAR(apgd_row_loss(ApgdLoss::dlr, z.data(), 5, 0, 0, g.data()), -0.5, 1e-12);
  EXPECT_NEAR(apgd_row_loss(ApgdLoss::dlr_targeted, z.data(), 5, 0, 3, g.data()), -1.2, 1e-12);
  double lse = 0;
  for (float v : z) lse += std::exp(double(v));
  EXPECT_NEAR(apgd_row_loss(ApgdLoss::ce, z.data(), 5, 0, 0, g.data()), std::log(lse) - 3.0, 1e-12);
  // A label that is not the top class: DLR's "max over i ≠ y" is then the top class.
  EXPECT_NEAR(apgd_row_loss(ApgdLoss::dlr, z.data(), 5, 2, 0, g.data()), -(2.0 - 3.0) / (3.0 - 1.0), 1e-12);

  for (ApgdLoss loss : {ApgdLoss::ce, ApgdLoss::dlr, ApgdLoss::dlr_targeted}) {
    const std::vector<float> w = {0.3f, -1.1f, 2.05f, 0.7f, 1.4f, -0.2f};  // distinct gaps: the ranking is stable
    std::vector<double> grad(6), unused(6);
    apgd_row_loss(loss, w.data(), 6, 1, 4, grad.data());
    for (int j = 0; j < 6; ++j) {
      // Central differences in float inputs of 1e-3: the loss is smooth there (no rank change).
      std::vector<float> up = w, down = w;
      up[size_t(j)] += 1e-3f;
      down[size_t(j)] -= 1e-3f;
      const double fd = (apgd_row_loss(loss, up.data(), 6, 1, 4, unused.data()) -
                         apgd_row_loss(loss, down.data(), 6, 1, 4, unused.data())) /
                        (double(up[size_t(j)]) - double(down[size_t(j)]));
      EXPECT_NEAR(grad[size_t(j)], fd, 1e-4) << apgd_loss_name(loss) << " logit " << j;
    }
  }
}

TEST(Apgd, TooFewClassesAndBadSettingsAreNamed) {
  const std::vector<float> two = {1.f, 0.f}, three = {1.f, 0.f, 2.f};
  std::vector<double> g(3);
  EXPECT_NE(testing::error_of([&] { apgd_row_loss(ApgdLoss::dlr, two.data(), 2, 0, 0, g.data()); })
                .find("the DLR loss needs at least 3 classes"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { apgd_row_loss(ApgdLoss::dlr_targeted, three.data(), 3, 0, 1, g.data()); })
                .find("the targeted DLR loss needs at least 4 classes"),
            std::string::npos);
  ApgdConfig c;
  c.loss = ApgdLoss::dlr_targeted;
  c.target_rank = 1;
  EXPECT_NE(testing::error_of([&] { check_apgd_config(c, 10); }).find("target_rank must be in [2, 10]"), std::string::npos);
  c = ApgdConfig();
  c.eps = 8;
  EXPECT_NE(testing::error_of([&] { check_apgd_config(c, 10); }).find("eps must be in [0,1]"), std::string::npos);
  c = ApgdConfig();
  c.iterations = 0;
  EXPECT_NE(testing::error_of([&] { check_apgd_config(c, 10); }).find("iterations must be >= 1"), std::string::npos);
}

TEST(Apgd, StaysInTheBallIsDeterministicRestoresModesAndTouchesNoParameter) {
  Model& model = trained_model();
  model.train(true);  // the attack must run with BN in eval mode and put this back
  const Batch b = synthetic_batch(8, 77);
  for (ApgdLoss loss : {ApgdLoss::ce, ApgdLoss::dlr_targeted}) {
    ApgdConfig c;
    c.eps = 8.0 / 255;
    c.iterations = 12;
    c.loss = loss;
    c.target_rank = 2;
    Generator g1(5), g2(5);
    const ApgdResult r = apgd(model, b.images, b.labels, c, g1);
    const ApgdResult again = apgd(model, b.images, b.labels, c, g2);
    EXPECT_TRUE(bitwise_equal(r.adversarial, again.adversarial)) << apgd_loss_name(loss);
    EXPECT_EQ(r.fooled, again.fooled);
    EXPECT_LE(max_abs_diff(r.adversarial, b.images), c.eps + 1e-6) << apgd_loss_name(loss);
    for (float v : r.adversarial.to_vector<float>()) ASSERT_TRUE(v >= 0.f && v <= 1.f);
    EXPECT_TRUE(model.training()) << "mode restored";
    for (const NamedTensor& p : model.parameters()) EXPECT_FALSE(p.tensor.grad().defined()) << p.name;
    // An example reported fooled is misclassified at the returned point.
    const std::vector<int32_t> pred = predict(model, r.adversarial).to_vector<int32_t>();
    const std::vector<int32_t> y = b.labels.to_vector<int32_t>();
    for (size_t i = 0; i < y.size(); ++i)
      if (r.fooled[i]) EXPECT_NE(pred[i], y[i]) << apgd_loss_name(loss) << " example " << i;
  }
  model.train(false);
}

// On the trained model at ε = 16/255: APGD-CE with 20 iterations breaks at least as many examples as PGD
// with 20 steps of ε/4 and a random start (same gradient budget), and far more than none.
TEST(Apgd, IsAtLeastAsStrongAsPgdWithTheSameBudget) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(32, 91);
  const int64_t clean = correct(predict(model, b.images), b.labels);
  AttackConfig pgd = config(AttackKind::pgd, 16.0 / 255);
  pgd.steps = 20;
  pgd.alpha = pgd.eps / 4;
  const int64_t pgd_correct = correct(predict(model, attack(model, b.images, b.labels, pgd)), b.labels);
  ApgdConfig c;
  c.eps = 16.0 / 255;
  c.iterations = 20;
  Generator gen(3);
  const ApgdResult r = apgd(model, b.images, b.labels, c, gen);
  int64_t apgd_correct = 0;
  for (uint8_t f : r.fooled) apgd_correct += !f;
  EXPECT_EQ(apgd_correct, correct(predict(model, r.adversarial), b.labels));
  EXPECT_LE(apgd_correct, pgd_correct) << "clean " << clean << ", PGD " << pgd_correct << ", APGD " << apgd_correct;
  EXPECT_LT(apgd_correct, clean) << "the attack must break something at 16/255";
}

TEST(Apgd, RunsOnCudaWithTheSameInvariants) {
  expect_fooled_misclassified_on_cuda(8, 77, [](Model& model, const Tensor& images, const Tensor& labels) {
    ApgdConfig c;
    c.iterations = 8;
    Generator gen(5);
    ApgdResult r = apgd(model, images, labels, c, gen);
    EXPECT_LE(max_abs_diff(r.adversarial.to(Device::CPU), images.to(Device::CPU)), c.eps + 1e-6);
    return std::make_pair(r.adversarial, r.fooled);
  });
}

}  // namespace
}  // namespace spikegrad
