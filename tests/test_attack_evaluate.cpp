// attacks/evaluate.h: predictions independent of batch size and mode, eps = 0 gives the clean accuracy,
// re-classifying the adversarial images reproduces the report, named metrics and the zero-gradient
// diagnostic (pitfalls 7, 8, 9).
#include "attack_test_util.h"

namespace spikegrad {
namespace {
using namespace attack_test;

TEST(AttackEval, EpsZeroGivesExactlyTheCleanImagesAndAccuracy) {
  Model& model = trained_model();
  Batch b = synthetic_batch(8, 13);
  for (AttackKind kind : kAllKinds) {
    Generator gen(1);
    Tensor adv;
    RobustResult r = evaluate_attack(model, b.images, b.labels, config(kind, 0.0), gen, &adv);
    EXPECT_TRUE(bitwise_equal(adv, b.images)) << attack_kind_name(kind);
    EXPECT_EQ(r.adv_correct, r.clean_correct) << attack_kind_name(kind);
    EXPECT_EQ(r.fooled, 0);
    EXPECT_EQ(r.robust_accuracy(), r.clean_accuracy());
  }
}

TEST(AttackEval, ReclassifyingAdversarialImagesReproducesTheReport) {
  Model& model = trained_model();
  Batch b = synthetic_batch(16, 16);
  Generator gen(2);
  Tensor adv;
  RobustResult r = evaluate_attack(model, b.images, b.labels, config(AttackKind::pgd, 16.0 / 255), gen, &adv);
  ASSERT_TRUE(adv.defined());
  // Re-classify in two batches of 8 (also checks batch independence of the adversarial predictions).
  const auto y = b.labels.to_vector<int32_t>();
  const auto p1 = predict(model, adv.slice0(0, 8)).to_vector<int32_t>();
  const auto p2 = predict(model, adv.slice0(8, 16)).to_vector<int32_t>();
  const auto clean = predict(model, b.images).to_vector<int32_t>();
  int64_t adv_ok = 0, fooled = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const int32_t p = i < 8 ? p1[i] : p2[i - 8];
    adv_ok += p == y[i];
    fooled += clean[i] == y[i] && p != y[i];
  }
  EXPECT_EQ(r.total, 16);
  EXPECT_EQ(r.adv_correct, adv_ok);
  EXPECT_EQ(r.fooled, fooled);
  EXPECT_EQ(r.clean_correct, correct(predict(model, b.images), b.labels));
  EXPECT_EQ(r.robust_accuracy(), double(adv_ok) / 16);
  EXPECT_EQ(r.attack_success_rate(), double(fooled) / double(r.clean_correct));
  EXPECT_GT(r.fooled, 0) << "eps 16/255 PGD should flip some predictions of the tiny model";
  EXPECT_EQ(r.zero_grad, 0);  // a trained, firing model has live surrogate gradients
}

TEST(AttackEval, PredictionsDoNotDependOnBatchSize) {
  Model& model = trained_model();
  Batch b = synthetic_batch(8, 19);
  std::vector<Tensor> buffers;
  for (const auto& nt : model.buffers()) buffers.push_back(nt.tensor.clone());
  model.train(true);  // predict must switch BN to running statistics by itself
  const auto whole = predict(model, b.images).to_vector<int32_t>();
  auto first = predict(model, b.images.slice0(0, 4)).to_vector<int32_t>();
  const auto second = predict(model, b.images.slice0(4, 8)).to_vector<int32_t>();
  std::vector<int32_t> singles;
  for (int64_t i = 0; i < 8; ++i) singles.push_back(predict(model, b.images.slice0(i, i + 1)).to_vector<int32_t>()[0]);
  EXPECT_TRUE(model.training());
  model.train(false);
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(whole, first);
  EXPECT_EQ(whole, singles);
  // Batch statistics would also have moved the running statistics.
  for (size_t i = 0; i < buffers.size(); ++i)
    EXPECT_TRUE(bitwise_equal(model.buffers()[i].tensor, buffers[i])) << model.buffers()[i].name;
  // The predictions are the argmax of the eval-mode mean logits.
  const auto logits = mean_logits(model, b.images).to_vector<float>();
  for (size_t i = 0; i < 8; ++i) {
    const float* row = logits.data() + i * kClasses;
    EXPECT_EQ(whole[i], int32_t(std::max_element(row, row + kClasses) - row)) << i;
  }
  // Reordering the batch permutes the predictions.
  Tensor reversed = Tensor::empty(b.images.shape());
  for (int64_t i = 0; i < 8; ++i) reversed.slice0(i, i + 1).copy_from(b.images.slice0(7 - i, 8 - i));
  const auto rev = predict(model, reversed).to_vector<int32_t>();
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(rev[i], whole[7 - i]);
}

TEST(AttackEval, ZeroGradientDiagnostic) {
  // Hand-made gradients: examples 0 and 2 are zero everywhere (-0.0 counts as zero), 1 and 3 are not.
  Tensor g = Tensor::zeros({4, 1, 2, 2});
  g.data<float>()[1] = -0.f;
  g.data<float>()[4 + 3] = 1e-30f;
  g.data<float>()[12] = -2.f;
  EXPECT_EQ(count_zero_gradient_examples(g), 2);

  // A dead network (threshold far above any input current: the triangle surrogate is zero everywhere)
  // has exactly zero input gradients; the diagnostic reports all of them and FGSM cannot move.
  auto model = fresh_model();
  model->spike_options().threshold = 1e6;
  Batch b = synthetic_batch(8, 22);
  Generator gen(1);
  Tensor adv;
  RobustResult dead = evaluate_attack(*model, b.images, b.labels, config(AttackKind::fgsm, 8.0 / 255), gen, &adv);
  EXPECT_EQ(dead.zero_grad, 8);
  EXPECT_EQ(dead.zero_grad_fraction(), 1.0);
  EXPECT_TRUE(bitwise_equal(adv, b.images));
}

TEST(AttackEval, RobustResultAccumulatesAndNamesItsRatios) {
  RobustResult a{10, 8, 5, 4, 1}, b{6, 2, 2, 1, 0};
  a += b;
  EXPECT_EQ(a.total, 16);
  EXPECT_EQ(a.clean_correct, 10);
  EXPECT_EQ(a.adv_correct, 7);
  EXPECT_EQ(a.fooled, 5);
  EXPECT_EQ(a.zero_grad, 1);
  EXPECT_DOUBLE_EQ(a.clean_accuracy(), 10.0 / 16);
  EXPECT_DOUBLE_EQ(a.robust_accuracy(), 7.0 / 16);
  EXPECT_DOUBLE_EQ(a.attack_success_rate(), 5.0 / 10);  // fooled / clean_correct, not 1 - robust accuracy (9/16)
  EXPECT_DOUBLE_EQ(a.zero_grad_fraction(), 1.0 / 16);
  RobustResult none;
  EXPECT_TRUE(std::isnan(none.clean_accuracy()));
  EXPECT_TRUE(std::isnan(RobustResult{4, 0, 0, 0, 0}.attack_success_rate()));
}

}  // namespace
}  // namespace spikegrad
