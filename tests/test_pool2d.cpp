// avg_pool2d / max_pool2d: golden values, gradient routing (overlaps, ties, first maximum), the op
// table, error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// Distinct values 2·(π(i) − n/2)/n in [-1,1) for a seeded random permutation π: no ties, and
// neighbours 2/n apart (>= 1e-4 for the sizes here), far beyond the finite-difference step, so max
// pooling is differentiable there. Values of order 1 keep the round-off of the differences small.
Tensor distinct_values(const Shape& shape, DType d, uint64_t seed) {
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  Generator gen(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[gen.next_u32() % uint32_t(i + 1)]);
  std::vector<double> v(perm.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.0 * double(perm[i] - n / 2) / double(n);
  return Tensor::from_vector(v, shape).to(d);
}

OpCase pool_case(const std::string& variant, bool max, const Shape& shape, int kernel, int stride, uint64_t seed) {
  OpCase c;
  c.name = std::string(max ? "max_pool2d/" : "avg_pool2d/") + variant;
  c.make_inputs = [shape, seed](DType d) { return std::vector<Tensor>{distinct_values(shape, d, seed)}; };
  c.grad_inputs = {0};
  c.forward = [max, kernel, stride](Tape& t, const std::vector<Tensor>& x) {
    return max ? ops::max_pool2d(t, x[0], kernel, stride) : ops::avg_pool2d(t, x[0], kernel, stride);
  };
  return c;
}

[[maybe_unused]] const OpCaseRegistrar pool_cases[] = {
    OpCaseRegistrar(pool_case("k2s2", false, {2, 3, 4, 6}, 2, 2, 1)),
    OpCaseRegistrar(pool_case("k3s2_odd", false, {1, 2, 7, 9}, 3, 2, 2)),
    OpCaseRegistrar(pool_case("k3s1_overlap", false, {2, 1, 5, 6}, 3, 1, 3)),
    OpCaseRegistrar(pool_case("k1s2_subsample", false, {1, 2, 5, 5}, 1, 2, 4)),
    OpCaseRegistrar(pool_case("k2s2_large", false, {3, 5, 33, 31}, 2, 2, 5)),
    OpCaseRegistrar(pool_case("k2s2", true, {2, 3, 4, 6}, 2, 2, 6)),
    OpCaseRegistrar(pool_case("k3s2_odd", true, {1, 2, 7, 9}, 3, 2, 7)),
    OpCaseRegistrar(pool_case("k3s1_overlap", true, {2, 1, 5, 6}, 3, 1, 8)),
    OpCaseRegistrar(pool_case("k2s3_gaps", true, {1, 3, 8, 7}, 2, 3, 9)),
    OpCaseRegistrar(pool_case("k2s2_large", true, {3, 5, 33, 31}, 2, 2, 10)),
};

Tensor iota_plane(int64_t H, int64_t W) {
  std::vector<float> v(size_t(H * W));
  std::iota(v.begin(), v.end(), 0.f);
  return Tensor::from_vector(v, {1, 1, H, W});
}

TEST(Pool2d, GoldenForward) {
  Tape tape;
  Tensor x = iota_plane(4, 4);  // rows 0..3, 4..7, 8..11, 12..15
  EXPECT_EQ(ops::avg_pool2d(tape, x, 2, 2).to_vector<float>(), (std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f}));
  EXPECT_EQ(ops::max_pool2d(tape, x, 2, 2).to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  EXPECT_EQ(ops::avg_pool2d(tape, x, 3, 1).to_vector<float>(), (std::vector<float>{5, 6, 9, 10}));
  EXPECT_EQ(ops::max_pool2d(tape, x, 3, 1).to_vector<float>(), (std::vector<float>{10, 11, 14, 15}));
  Tensor y = ops::max_pool2d(tape, iota_plane(5, 7), 2, 2);  // floor: the last row and column are dropped
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{8, 10, 12, 22, 24, 26}));
}

TEST(Pool2d, AvgGradientCountsCoveringWindows) {
  Tape tape;
  Tensor x = iota_plane(4, 4);
  x.set_requires_grad(true);
  Tensor y = ops::avg_pool2d(tape, x, 3, 1);
  Tensor gx = tape.vjp(y, Tensor::full(y.shape(), 9.0), {x})[0];
  // Along each axis indices 0..3 lie in 1, 2, 2, 1 of the two windows; dy/k² = 1 per window.
  const std::vector<float> per_axis{1, 2, 2, 1};
  std::vector<float> expected;
  for (float r : per_axis)
    for (float c : per_axis) expected.push_back(r * c);
  EXPECT_EQ(gx.to_vector<float>(), expected);
}

TEST(Pool2d, MaxGradientGoesToFirstMaximumAndSumsOverlaps) {
  Tape tape;
  // Every 2x2 window (stride 1) of this 3x3 plane has its maximum at the centre.
  Tensor centre = Tensor::from_vector<float>({0, 1, 0, 2, 9, 3, 0, 4, 0}, {1, 1, 3, 3});
  centre.set_requires_grad(true);
  Tensor y = ops::max_pool2d(tape, centre, 2, 1);
  Tensor gx = tape.vjp(y, Tensor::from_vector<float>({1, 2, 3, 4}, {1, 1, 2, 2}), {centre})[0];
  EXPECT_EQ(gx.to_vector<float>(), (std::vector<float>{0, 0, 0, 0, 10, 0, 0, 0, 0}));

  // Ties: the first maximum in row-major order takes the whole gradient.
  Tensor ties = Tensor::from_vector<float>({1, 3, 3, 0, 5, 5, 5, 5}, {1, 2, 2, 2});
  ties.set_requires_grad(true);
  Tensor yt = ops::max_pool2d(tape, ties, 2, 2);
  Tensor gt = tape.vjp(yt, Tensor::full(yt.shape(), 1.0), {ties})[0];
  EXPECT_EQ(gt.to_vector<float>(), (std::vector<float>{0, 1, 0, 0, 1, 0, 0, 0}));
}

TEST(Pool2d, MaxPropagatesNaN) {
  Tape tape;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector<float>({1, nan, 7, 2}, {1, 1, 2, 2});
  EXPECT_TRUE(std::isnan(ops::max_pool2d(tape, x, 2, 2).item()));
}

TEST(Pool2d, NoRecordWithoutGrad) {
  Tape tape;
  ops::max_pool2d(tape, iota_plane(4, 4), 2, 2);
  ops::avg_pool2d(tape, iota_plane(4, 4), 2, 2);
  EXPECT_EQ(tape.size(), 0u);
}


TEST(Pool2d, ErrorsNameOpAndProblem) {
  Tape tape;
  expect_error([&] { ops::max_pool2d(tape, Tensor::zeros({4, 4}), 2, 2); }, "max_pool2d: x must be (N,C,H,W), got (4,4)");
  expect_error([&] { ops::avg_pool2d(tape, Tensor::zeros({1, 1, 4, 3}), 4, 1); },
               "avg_pool2d: kernel 4 does not fit the input plane 4x3 (no padding)");
  expect_error([&] { ops::avg_pool2d(tape, Tensor::zeros({1, 1, 4, 4}), 0, 1); }, "avg_pool2d: kernel must be >= 1, got 0");
  expect_error([&] { ops::max_pool2d(tape, Tensor::zeros({1, 1, 4, 4}), 2, 0); }, "max_pool2d: stride must be >= 1, got 0");
  expect_error([&] { ops::max_pool2d(tape, Tensor::zeros({1, 1, 4, 4}, DType::I32), 2, 2); }, "max_pool2d: x must be float32");
}

}  // namespace
}  // namespace spikegrad::testing
