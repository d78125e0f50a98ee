// attacks/fab.h (issue 12, item 2): the L∞ projection onto a hyperplane inside the box against hand-worked
// solutions and a brute-force check of its optimality, and FAB-T's contract on a trained model: every point
// it reports is misclassified at exactly the norm it reports, inside [0,1], deterministically, with modes
// restored and no parameter gradient; the norms it finds are well inside the pixel range.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attack_test_util.h"
#include "attacks/fab.h"

namespace spikegrad {
namespace {
using namespace attack_test;

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}
double linf(const std::vector<float>& a) {
  double m = 0;
  for (float v : a) m = std::max(m, std::abs(double(v)));
  return m;
}

TEST(Fab, ProjectionIsTheSmallestLinfStepOntoTheHyperplaneInsideTheBox) {
  // Free of the box: w = (1, 1), c = 0.2 -> δ = (0.1, 0.1).
  const std::vector<float> p = {0.5f, 0.5f}, w = {1.f, 1.f};
  bool feasible = false;
  std::vector<float> d = fab_project_linf(p.data(), w.data(), 0.2, 2, &feasible);
  EXPECT_TRUE(feasible);
  EXPECT_NEAR(d[0], 0.1, 1e-7);
  EXPECT_NEAR(d[1], 0.1, 1e-7);
  // The box stops coordinate 0 at 0.05 (p = 0.95): the other takes the rest, δ = (0.05, 0.15).
  const std::vector<float> q = {0.95f, 0.5f};
  d = fab_project_linf(q.data(), w.data(), 0.2, 2);
  EXPECT_NEAR(d[0], 0.05, 1e-6);
  EXPECT_NEAR(d[1], 0.15, 1e-6);
  // Negative c and mixed signs: w = (2, −1, 0), c = −0.3 -> δ_0 ≤ 0, δ_1 ≥ 0, δ_2 = 0, 2·ρ + ρ = 0.3.
  const std::vector<float> r = {0.5f, 0.5f, 0.5f}, w2 = {2.f, -1.f, 0.f};
  d = fab_project_linf(r.data(), w2.data(), -0.3, 3);
  EXPECT_NEAR(d[0], -0.1, 1e-7);
  EXPECT_NEAR(d[1], 0.1, 1e-7);
  EXPECT_EQ(d[2], 0.f);
  // Out of reach of the box: the corner that comes closest.
  d = fab_project_linf(p.data(), w.data(), 5.0, 2, &feasible);
  EXPECT_FALSE(feasible);
  EXPECT_FLOAT_EQ(d[0], 0.5f);
  EXPECT_FLOAT_EQ(d[1], 0.5f);

  // Random problems: on the hyperplane, in the box, and no random feasible point of the hyperplane has a
  // smaller L∞ norm (each candidate: a random direction scaled onto the hyperplane, kept if in the box).
  Generator gen(4);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 6;
    const std::vector<float> u = rand_uniform({3 * n + 1}, gen).to_vector<float>();
    std::vector<float> pt(n), wt(n);
    for (int64_t i = 0; i < n; ++i) pt[size_t(i)] = u[size_t(i)], wt[size_t(i)] = 2.f * u[size_t(n + i)] - 1.f;
    const double c = (u[size_t(3 * n)] - 0.5) * 0.8;
    const std::vector<float> dt = fab_project_linf(pt.data(), wt.data(), c, n, &feasible);
    if (!feasible) continue;
    EXPECT_NEAR(dot(wt, dt), c, 1e-5) << "trial " << trial;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_GE(pt[size_t(i)] + dt[size_t(i)], -1e-6f);
      EXPECT_LE(pt[size_t(i)] + dt[size_t(i)], 1.f + 1e-6f);
    }
    for (int k = 0; k < 200; ++k) {
      const std::vector<float> v = rand_uniform({n}, gen).to_vector<float>();
      std::vector<float> dir(n);
      for (int64_t i = 0; i < n; ++i) dir[size_t(i)] = 2.f * v[size_t(i)] - 1.f;
      const double along = dot(wt, dir);
      if (std::abs(along) < 1e-3) continue;
      bool inside = true;
      for (int64_t i = 0; i < n; ++i) {
        dir[size_t(i)] = float(dir[size_t(i)] * c / along);
        inside = inside && pt[size_t(i)] + dir[size_t(i)] >= 0 && pt[size_t(i)] + dir[size_t(i)] <= 1;
      }
      if (inside) EXPECT_GE(linf(dir), linf(dt) - 1e-6) << "trial " << trial;
    }
  }
}

TEST(Fab, FindsMisclassifiedPointsAtTheNormsItReports) {
  Model& model = trained_model();
  model.train(true);
  const Batch b = synthetic_batch(8, 55);
  FabConfig c;
  c.iterations = 15;
  const FabResult r = fab_targeted(model, b.images, b.labels, c);
  const FabResult again = fab_targeted(model, b.images, b.labels, c);
  EXPECT_TRUE(model.training()) << "mode restored";
  model.train(false);
  EXPECT_TRUE(bitwise_equal(r.adversarial, again.adversarial));
  EXPECT_EQ(r.norm, again.norm);
  for (const NamedTensor& p : model.parameters()) EXPECT_FALSE(p.tensor.grad().defined()) << p.name;
  for (float v : r.adversarial.to_vector<float>()) ASSERT_TRUE(v >= 0.f && v <= 1.f);
  const std::vector<int32_t> pred = predict(model, r.adversarial).to_vector<int32_t>();
  const std::vector<int32_t> clean = predict(model, b.images).to_vector<int32_t>();
  const std::vector<int32_t> y = b.labels.to_vector<int32_t>();
  const std::vector<float> adv = r.adversarial.to_vector<float>(), x = b.images.to_vector<float>();
  const int64_t d = b.images.numel() / 8;
  int found = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    double n = 0;
    for (int64_t e = int64_t(i) * d; e < int64_t(i + 1) * d; ++e) n = std::max(n, std::abs(double(adv[size_t(e)]) - x[size_t(e)]));
    if (r.found[i]) {
      ++found;
      EXPECT_NE(pred[i], y[i]) << "example " << i;
      EXPECT_NEAR(n, r.norm[i], 1e-7) << "example " << i;
    } else {
      EXPECT_EQ(n, 0.0) << "no point found: the clean image comes back";
      EXPECT_TRUE(std::isinf(r.norm[i]));
    }
    if (clean[i] != y[i]) EXPECT_EQ(r.norm[i], 0.0);
  }
  EXPECT_GE(found, 6) << "a minimum-norm attack with no ε bound flips most examples of the small model";
  // The task's signal is a +0.15 patch: a minimum-norm flip needs about that, far from the trivial 0.5.
  std::vector<double> norms;
  for (size_t i = 0; i < y.size(); ++i)
    if (r.found[i]) norms.push_back(r.norm[i]);
  std::sort(norms.begin(), norms.end());
  if (!norms.empty()) EXPECT_LT(norms[norms.size() / 2], 0.2) << "median norm";
}

TEST(Fab, BadSettingsAreNamed) {
  FabConfig c;
  c.target_rank = 1;
  EXPECT_NE(testing::error_of([&] { check_fab_config(c, 10); }).find("target_rank must be in [2, 10]"), std::string::npos);
  c = FabConfig();
  c.iterations = 0;
  EXPECT_NE(testing::error_of([&] { check_fab_config(c, 10); }).find("iterations must be >= 1"), std::string::npos);
  c = FabConfig();
  c.eta = 0.5;
  EXPECT_NE(testing::error_of([&] { check_fab_config(c, 10); }).find("eta must be >= 1"), std::string::npos);
}

TEST(Fab, RunsOnCudaWithTheSameContract) {
  expect_fooled_misclassified_on_cuda(4, 55, [](Model& model, const Tensor& images, const Tensor& labels) {
    FabConfig c;
    c.iterations = 6;
    FabResult r = fab_targeted(model, images, labels, c);
    return std::make_pair(r.adversarial, r.found);
  });
}

}  // namespace
}  // namespace spikegrad
