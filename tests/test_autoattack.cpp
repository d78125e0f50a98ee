// attacks/autoattack.h (issue 12, item 2): the standard ensemble's bookkeeping on a trained model — stages in
// order, each on what the earlier ones left, counts that add up, every broken example misclassified within ε
// at the point returned and every robust one given back unchanged — plus the skip of APGD-T below 4 classes,
// the tie diagnostic and the sum over batches.
#include "attack_test_util.h"
#include "attacks/autoattack.h"

namespace spikegrad {
namespace {
using namespace attack_test;

AutoAttackConfig small_budget(double eps) {
  AutoAttackConfig c;
  c.eps = eps;
  c.apgd_iterations = 8;
  c.fab_iterations = 8;
  c.square_queries = 20;
  c.target_classes = 2;
  return c;
}

TEST(AutoAttack, StagesRunInOrderOnWhatIsLeftAndTheCountsAddUp) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(12, 321);
  const AutoAttackConfig c = small_budget(20.0 / 255);  // the minimum norms FAB finds here are ~15/255
  Generator gen(11);
  const AutoAttackResult r = autoattack(model, b.images, b.labels, c, gen);
  ASSERT_EQ(r.stages.size(), 4u);
  EXPECT_EQ(r.stages[0].name, "apgd-ce");
  EXPECT_EQ(r.stages[1].name, "apgd-t");
  EXPECT_EQ(r.stages[2].name, "fab-t");
  EXPECT_EQ(r.stages[3].name, "square");
  EXPECT_EQ(r.total, 12);
  const int64_t clean = correct(predict(model, b.images), b.labels);
  EXPECT_EQ(r.clean_correct, clean);
  int64_t left = clean;
  for (const AutoAttackStage& s : r.stages) {
    EXPECT_TRUE(s.ran) << s.name;
    left -= s.broken;
    EXPECT_EQ(s.robust_after, left) << s.name;
  }
  EXPECT_EQ(r.robust_correct(), left);
  EXPECT_LT(r.robust_correct(), clean) << "the ensemble breaks something at 20/255";

  EXPECT_LE(max_abs_diff(r.adversarial, b.images), c.eps + 1e-6);
  const std::vector<int32_t> pred = predict(model, r.adversarial).to_vector<int32_t>();
  const std::vector<int32_t> y = b.labels.to_vector<int32_t>();
  const std::vector<float> adv = r.adversarial.to_vector<float>(), x = b.images.to_vector<float>();
  const int64_t d = b.images.numel() / 12;
  int64_t robust = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const bool unchanged = std::equal(adv.begin() + int64_t(i) * d, adv.begin() + int64_t(i + 1) * d, x.begin() + int64_t(i) * d);
    if (r.robust[i]) {
      ++robust;
      EXPECT_TRUE(unchanged) << "a robust example comes back as its clean image";
      EXPECT_EQ(pred[i], y[i]);
    } else {
      EXPECT_NE(pred[i], y[i]) << "example " << i << " is reported broken (or wrong from the start)";
    }
  }
  EXPECT_EQ(robust, r.robust_correct());

  // Summed over two batches.
  AutoAttackResult sum;
  sum += r;
  sum += r;
  EXPECT_EQ(sum.total, 24);
  EXPECT_EQ(sum.robust_correct(), 2 * r.robust_correct());
  EXPECT_EQ(sum.stages[1].broken, 2 * r.stages[1].broken);
}

TEST(AutoAttack, ApgdTIsSkippedBelowFourClassesWithTheReasonAndTiesAreCounted) {
  ModelConfig mc = tiny_config();
  mc.num_classes = 3;
  auto model = make_model("small_cnn", mc);
  Batch b = synthetic_batch(4, 5);
  b.labels = Tensor::from_vector<int32_t>({0, 1, 2, 0}, {4});
  Generator gen(1);
  const AutoAttackResult r = autoattack(*model, b.images, b.labels, small_budget(8.0 / 255), gen);
  ASSERT_EQ(r.stages.size(), 4u);
  EXPECT_FALSE(r.stages[1].ran);
  EXPECT_EQ(r.stages[1].skipped_because, "the targeted DLR loss needs at least 4 classes, the model has 3");
  EXPECT_TRUE(r.stages[2].ran) << "FAB-T needs only 2";
  // A model whose logits are all equal (zero weights): every example is a tie.
  auto flat = make_model("small_cnn", tiny_config());
  for (NamedTensor p : flat->parameters()) p.tensor.copy_from(Tensor::zeros(p.tensor.shape()));
  const AutoAttackResult t = autoattack(*flat, b.images, b.labels, small_budget(8.0 / 255), gen);
  EXPECT_EQ(t.top_logit_ties, 4);
}

TEST(AutoAttack, BadSettingsAreNamed) {
  AutoAttackConfig c;
  c.eps = -1;
  EXPECT_NE(testing::error_of([&] { check_autoattack_config(c); }).find("eps must be in [0,1]"), std::string::npos);
  c = AutoAttackConfig();
  c.square_queries = 0;
  EXPECT_NE(testing::error_of([&] { check_autoattack_config(c); }).find("square_queries must be >= 1"), std::string::npos);
}

}  // namespace
}  // namespace spikegrad
