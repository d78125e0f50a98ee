// The loss option of FGSM/PGD/BIM (issue 12, item 3): the CW margin max_{i≠y} z_i − z_y. PGD-CW keeps the
// ε-ball and the pixel range and raises the margin it ascends; FGSM-CW takes another gradient than FGSM-CE,
// deterministically; the names parse.
#include "attack_test_util.h"
#include "attacks/logit_gradient.h"

namespace spikegrad {
namespace {
using namespace attack_test;

// The margin max_{i≠y} z_i − z_y of each example, in eval mode.
std::vector<double> margins(Model& model, const Batch& b, const Tensor& images) {
  ModelModeGuard eval(model, std::nullopt);
  const std::vector<float> z = mean_logits(model, images).to_vector<float>();
  const std::vector<int32_t> y = b.labels.to_vector<int32_t>();
  std::vector<double> m;
  for (size_t i = 0; i < y.size(); ++i) {
    const float* row = z.data() + int64_t(i) * kClasses;
    m.push_back(double(row[attack_detail::best_other(row, kClasses, y[i])]) - double(row[y[i]]));
  }
  return m;
}

TEST(AttackLoss, NamesParse) {
  EXPECT_EQ(parse_attack_loss("cw"), AttackLoss::cw);
  EXPECT_EQ(parse_attack_loss("ce"), AttackLoss::ce);
  EXPECT_STREQ(attack_loss_name(AttackLoss::cw), "cw");
  EXPECT_NE(testing::error_of([] { parse_attack_loss("dlr"); }).find("valid: ce, cw"), std::string::npos);
}

TEST(AttackLoss, PgdWithTheCwMarginStaysInTheBallAndRaisesTheMargin) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(16, 404);
  AttackConfig c = config(AttackKind::pgd, 8.0 / 255);
  c.loss = AttackLoss::cw;
  const Tensor adv = attack(model, b.images, b.labels, c);
  EXPECT_LE(max_abs_diff(adv, b.images), c.eps + 1e-6);
  for (float v : adv.to_vector<float>()) ASSERT_TRUE(v >= 0.f && v <= 1.f);
  const std::vector<double> before = margins(model, b, b.images), after = margins(model, b, adv);
  double sum_before = 0, sum_after = 0;
  for (size_t i = 0; i < before.size(); ++i) sum_before += before[i], sum_after += after[i];
  EXPECT_GT(sum_after, sum_before + 0.5) << "PGD-CW ascends the margin";
  // FGSM with the CW loss differs from FGSM with CE (another gradient), and both are deterministic.
  AttackConfig f = config(AttackKind::fgsm, 8.0 / 255);
  const Tensor ce = attack(model, b.images, b.labels, f);
  f.loss = AttackLoss::cw;
  EXPECT_FALSE(bitwise_equal(ce, attack(model, b.images, b.labels, f)));
  EXPECT_TRUE(bitwise_equal(attack(model, b.images, b.labels, f), attack(model, b.images, b.labels, f)));
}

}  // namespace
}  // namespace spikegrad
