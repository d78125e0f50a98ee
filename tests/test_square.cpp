// attacks/square.h (issue 12, item 2): the Square Attack's schedule against the paper's numbers, its query
// accounting, invariants (ε-ball, [0,1], modes restored, no gradient at all, same seed → same batch), and
// that it breaks a trained model at a large ε without any gradient.
#include "attack_test_util.h"
#include "attacks/square.h"

namespace spikegrad {
namespace {
using namespace attack_test;

// p_init halved after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 of 10,000 queries, rescaled.
TEST(Square, ScheduleFollowsThePaper) {
  EXPECT_DOUBLE_EQ(square_p_at(0.8, 0, 10000), 0.8);
  EXPECT_DOUBLE_EQ(square_p_at(0.8, 10, 10000), 0.8);
  EXPECT_DOUBLE_EQ(square_p_at(0.8, 11, 10000), 0.4);
  EXPECT_DOUBLE_EQ(square_p_at(0.8, 51, 10000), 0.2);
  EXPECT_DOUBLE_EQ(square_p_at(0.8, 8001, 10000), 0.8 / 512);
  EXPECT_DOUBLE_EQ(square_p_at(0.8, 6, 5000), 0.4);  // 6 of 5000 = 12 of 10000
  SquareConfig c;
  c.queries = 0;
  EXPECT_NE(testing::error_of([&] { check_square_config(c); }).find("queries must be >= 1"), std::string::npos);
  c = SquareConfig();
  c.eps = 2;
  EXPECT_NE(testing::error_of([&] { check_square_config(c); }).find("eps must be in [0,1]"), std::string::npos);
}

TEST(Square, StaysInTheBallCountsQueriesAndNeedsNoGradient) {
  Model& model = trained_model();
  model.train(true);
  const Batch b = synthetic_batch(8, 123);
  SquareConfig c;
  c.eps = 48.0 / 255;  // the task's signal is a +0.15 patch: breakable with few queries at this radius
  c.queries = 30;
  Generator g1(9), g2(9);
  SquareResult r;
  {
    NoGradGuard no_grad;  // a score-based attack must not need gradients
    r = square_attack(model, b.images, b.labels, c, g1);
  }
  const SquareResult again = square_attack(model, b.images, b.labels, c, g2);
  EXPECT_TRUE(bitwise_equal(r.adversarial, again.adversarial));
  EXPECT_EQ(r.queries_used, again.queries_used);
  EXPECT_TRUE(model.training()) << "mode restored";
  model.train(false);
  EXPECT_LE(max_abs_diff(r.adversarial, b.images), c.eps + 1e-6);
  for (float v : r.adversarial.to_vector<float>()) ASSERT_TRUE(v >= 0.f && v <= 1.f);
  for (const NamedTensor& p : model.parameters()) EXPECT_FALSE(p.tensor.grad().defined()) << p.name;
  const std::vector<int32_t> pred = predict(model, r.adversarial).to_vector<int32_t>();
  const std::vector<int32_t> y = b.labels.to_vector<int32_t>();
  int64_t fooled = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_GE(r.queries_used[i], 1);
    EXPECT_LE(r.queries_used[i], c.queries);
    if (r.fooled[i]) {
      ++fooled;
      EXPECT_LE(r.margin[i], 0.0);
      EXPECT_NE(pred[i], y[i]) << "example " << i;
    } else {
      EXPECT_EQ(r.queries_used[i], c.queries) << "an unbroken example uses the whole budget";
      EXPECT_GT(r.margin[i], 0.0);
    }
  }
  EXPECT_GT(fooled, 0) << "Square must break some examples of the trained model at 48/255";
}

TEST(Square, RunsOnCudaWithTheSameInvariants) {
  expect_fooled_misclassified_on_cuda(8, 123, [](Model& model, const Tensor& images, const Tensor& labels) {
    SquareConfig c;
    c.queries = 40;
    Generator gen(9);
    SquareResult r = square_attack(model, images, labels, c, gen);
    EXPECT_LE(max_abs_diff(r.adversarial.to(Device::CPU), images.to(Device::CPU)), c.eps + 1e-6);
    return std::make_pair(r.adversarial, r.fooled);
  });
}

}  // namespace
}  // namespace spikegrad
