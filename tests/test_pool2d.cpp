// avg_pool2d / max_pool2d (with and without padding) and adaptive_avg_pool2d: golden values (checked against
// PyTorch's F.avg_pool2d / F.max_pool2d / F.adaptive_avg_pool2d), gradient routing (overlaps, ties, first
// maximum, padding), the op table (CUDA vs CPU, finite differences), error messages.
#include <gtest/gtest.h>

#include <algorithm>
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

// padding < 0: the 3-argument call (the default), so the table keeps covering the existing signature.
OpCase pool_case(const std::string& variant, bool max, const Shape& shape, int kernel, int stride, uint64_t seed,
                 int padding = -1) {
  OpCase c;
  c.name = std::string(max ? "max_pool2d/" : "avg_pool2d/") + variant;
  c.make_inputs = [shape, seed](DType d) { return std::vector<Tensor>{distinct_values(shape, d, seed)}; };
  c.grad_inputs = {0};
  c.forward = [max, kernel, stride, padding](Tape& t, const std::vector<Tensor>& x) {
    if (padding < 0) return max ? ops::max_pool2d(t, x[0], kernel, stride) : ops::avg_pool2d(t, x[0], kernel, stride);
    return max ? ops::max_pool2d(t, x[0], kernel, stride, padding) : ops::avg_pool2d(t, x[0], kernel, stride, padding);
  };
  return c;
}

OpCase adaptive_case(const std::string& variant, const Shape& shape, int out_h, int out_w, uint64_t seed) {
  OpCase c;
  c.name = "adaptive_avg_pool2d/" + variant;
  c.make_inputs = [shape, seed](DType d) { return std::vector<Tensor>{distinct_values(shape, d, seed)}; };
  c.grad_inputs = {0};
  c.forward = [out_h, out_w](Tape& t, const std::vector<Tensor>& x) {
    return ops::adaptive_avg_pool2d(t, x[0], out_h, out_w);
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
    // Padding: the ResNet stem's 3x3/s2/p1, windows reaching past both edges, overlaps, an odd plane.
    OpCaseRegistrar(pool_case("k3s2p1", false, {2, 3, 16, 16}, 3, 2, 11, 1)),
    OpCaseRegistrar(pool_case("k3s2p1_odd", false, {1, 2, 7, 9}, 3, 2, 12, 1)),
    OpCaseRegistrar(pool_case("k2s1p1", false, {2, 1, 5, 6}, 2, 1, 13, 1)),
    OpCaseRegistrar(pool_case("k5s3p2", false, {1, 2, 11, 8}, 5, 3, 14, 2)),
    OpCaseRegistrar(pool_case("k3s2p0_explicit", false, {1, 2, 7, 9}, 3, 2, 2, 0)),
    OpCaseRegistrar(pool_case("k3s2p1", true, {2, 3, 16, 16}, 3, 2, 15, 1)),
    OpCaseRegistrar(pool_case("k3s2p1_odd", true, {1, 2, 7, 9}, 3, 2, 16, 1)),
    OpCaseRegistrar(pool_case("k2s1p1", true, {2, 1, 5, 6}, 2, 1, 17, 1)),
    OpCaseRegistrar(pool_case("k5s3p2", true, {1, 2, 11, 8}, 5, 3, 18, 2)),
    OpCaseRegistrar(pool_case("k3s2p0_explicit", true, {1, 2, 7, 9}, 3, 2, 7, 0)),
    // Adaptive: non-divisible sizes (bins overlap), divisible, global (H->1), and more outputs than inputs.
    OpCaseRegistrar(adaptive_case("5x7_to_3x2", {2, 3, 5, 7}, 3, 2, 19)),
    OpCaseRegistrar(adaptive_case("8x8_to_4x4", {2, 2, 8, 8}, 4, 4, 20)),
    OpCaseRegistrar(adaptive_case("global", {3, 4, 7, 6}, 1, 1, 21)),
    OpCaseRegistrar(adaptive_case("3x4_to_5x6_upsample", {1, 2, 3, 4}, 5, 6, 22)),
    OpCaseRegistrar(adaptive_case("large_17x19_to_4x5", {2, 3, 17, 19}, 4, 5, 23)),
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

TEST(Pool2d, PaddedOutputSizes) {
  Tape tape;
  const auto pooled = [&](int64_t H, int64_t W, int k, int s, int p) {
    const Shape a = ops::avg_pool2d(tape, Tensor::zeros({1, 2, H, W}), k, s, p).shape();
    EXPECT_EQ(ops::max_pool2d(tape, Tensor::zeros({1, 2, H, W}), k, s, p).shape(), a);
    return a;
  };
  EXPECT_EQ(pooled(16, 16, 3, 2, 1), (Shape{1, 2, 8, 8}));  // the ResNet stem: floor((16+2-3)/2)+1
  EXPECT_EQ(pooled(32, 32, 3, 2, 1), (Shape{1, 2, 16, 16}));
  EXPECT_EQ(pooled(7, 9, 3, 2, 1), (Shape{1, 2, 4, 5}));
  EXPECT_EQ(pooled(4, 4, 2, 2, 1), (Shape{1, 2, 3, 3}));
  EXPECT_EQ(pooled(1, 1, 3, 1, 1), (Shape{1, 2, 1, 1}));  // a 1x1 plane inside a 3x3 window
}

TEST(Pool2d, ExplicitZeroPaddingIsTheThreeArgumentCall) {
  Tape tape;
  const Tensor x = distinct_values({2, 3, 9, 7}, DType::F32, 5);
  EXPECT_EQ(ops::avg_pool2d(tape, x, 3, 2, 0).to_vector<float>(), ops::avg_pool2d(tape, x, 3, 2).to_vector<float>());
  EXPECT_EQ(ops::max_pool2d(tape, x, 3, 2, 0).to_vector<float>(), ops::max_pool2d(tape, x, 3, 2).to_vector<float>());
}

TEST(Pool2d, PaddedGoldenForward) {
  Tape tape;
  Tensor x = iota_plane(4, 4);
  // Every window divides by 9, padded zeros included (count_include_pad=True): (0+1+4+5)/9, (1+2+3+5+6+7)/9, ...
  EXPECT_EQ(ops::avg_pool2d(tape, x, 3, 2, 1).to_vector<float>(),
            (std::vector<float>{10.f / 9.f, 24.f / 9.f, 51.f / 9.f, 90.f / 9.f}));
  EXPECT_EQ(ops::max_pool2d(tape, x, 3, 2, 1).to_vector<float>(), (std::vector<float>{5, 7, 13, 15}));
  // All negative: a zero padding would win every window; -inf padding never does.
  Tensor negative = ops::scale(tape, ops::add_scalar(tape, x, 1.0), -1.0);
  EXPECT_EQ(ops::max_pool2d(tape, negative, 3, 2, 1).to_vector<float>(), (std::vector<float>{-1, -2, -5, -6}));
}

TEST(Pool2d, PaddedAvgGradientCountsCoveringWindows) {
  Tape tape;
  Tensor x = iota_plane(4, 4);
  x.set_requires_grad(true);
  Tensor y = ops::avg_pool2d(tape, x, 3, 2, 1);
  Tensor gx = tape.vjp(y, Tensor::full(y.shape(), 9.0), {x})[0];
  // Windows span padded rows -1..1 and 1..3: indices 0..3 lie in 1, 2, 1, 1 of them; dy/k² = 1 per window.
  const std::vector<float> per_axis{1, 2, 1, 1};
  std::vector<float> expected;
  for (float r : per_axis)
    for (float c : per_axis) expected.push_back(r * c);
  EXPECT_EQ(gx.to_vector<float>(), expected);
}

// The gradient of max_pool2d(k, s, p) of a binary (N=1, C=1) plane under dy = 1 as PyTorch routes it: each window
// gives its whole 1 to the first maximum of its in-bounds positions in row-major order. Written out here
// independently of the kernels' helpers.
std::vector<float> first_maximum_routing(const std::vector<float>& plane, int64_t H, int64_t W, int k, int s, int p) {
  std::vector<float> g(plane.size(), 0.f);
  for (int64_t oh = 0; oh <= (H + 2 * p - k) / s; ++oh)
    for (int64_t ow = 0; ow <= (W + 2 * p - k) / s; ++ow) {
      int64_t best = -1;
      for (int64_t h = oh * s - p; h < oh * s - p + k; ++h)
        for (int64_t w = ow * s - p; w < ow * s - p + k; ++w) {
          if (h < 0 || h >= H || w < 0 || w >= W) continue;
          if (best < 0 || plane[size_t(h * W + w)] > plane[size_t(best)]) best = h * W + w;
        }
      g[size_t(best)] += 1.f;
    }
  return g;
}

// Binary spike maps tie in nearly every window, so the tie rule decides which positions get gradient
// (spec/gradient_sparsity.md §6.1): 3x3/s2/p1 on 16x16, a constant plane and a random binary one, on every device.
TEST(Pool2d, MaxTiesOnBinaryMapsGoToTheFirstInBoundsMaximum) {
  std::vector<std::vector<float>> planes{std::vector<float>(256, 1.f), std::vector<float>(256, 0.f)};
  Generator gen(42);
  std::vector<float> random_binary(256);
  for (float& v : random_binary) v = float(gen.next_u32() % 3 == 0);  // about 1/3 spikes
  planes.push_back(random_binary);
  std::vector<Device> devices{Device::CPU};
  if (cuda_ok()) devices.push_back(Device::CUDA);
  for (const std::vector<float>& plane : planes) {
    const std::vector<float> expected = first_maximum_routing(plane, 16, 16, 3, 2, 1);
    for (Device device : devices) {
      Tape tape;
      Tensor x = Tensor::from_vector(plane, {1, 1, 16, 16}).to(device);
      x.set_requires_grad(true);
      Tensor y = ops::max_pool2d(tape, x, 3, 2, 1);
      ASSERT_EQ(y.shape(), (Shape{1, 1, 8, 8}));
      Tensor gx = tape.vjp(y, Tensor::full(y.shape(), 1.0).to(device), {x})[0];
      EXPECT_EQ(gx.to(Device::CPU).to_vector<float>(), expected) << "on " << device_name(device);
    }
  }
  // The constant plane by formula: window (p,q) starts at padded row 2p-1, so its first in-bounds position is
  // (max(0, 2p-1), max(0, 2q-1)) — PyTorch's return_indices gives 0, 1, 3, ..., 16, 17, 19, ... there.
  const std::vector<float> ones = first_maximum_routing(planes[0], 16, 16, 3, 2, 1);
  for (int64_t p = 0; p < 8; ++p)
    for (int64_t q = 0; q < 8; ++q)
      EXPECT_EQ(ones[size_t(std::max<int64_t>(0, 2 * p - 1) * 16 + std::max<int64_t>(0, 2 * q - 1))], 1.f);
}

TEST(AdaptiveAvgPool2d, BinsForNonDivisibleSizes) {
  Tape tape;
  const auto row = [](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), 0.f);
    return Tensor::from_vector(v, {1, 1, 1, n});
  };
  // 5 -> 3: bins [0,2) [1,4) [3,5); 7 -> 2: [0,4) [3,7); H -> 1: the mean; 2 -> 3: [0,1) [0,2) [1,2).
  EXPECT_EQ(ops::adaptive_avg_pool2d(tape, row(5), 1, 3).to_vector<float>(), (std::vector<float>{0.5f, 2.f, 3.5f}));
  EXPECT_EQ(ops::adaptive_avg_pool2d(tape, row(7), 1, 2).to_vector<float>(), (std::vector<float>{1.5f, 4.5f}));
  EXPECT_EQ(ops::adaptive_avg_pool2d(tape, row(6), 1, 1).to_vector<float>(), (std::vector<float>{2.5f}));
  EXPECT_EQ(ops::adaptive_avg_pool2d(tape, row(2), 1, 3).to_vector<float>(), (std::vector<float>{0.f, 0.5f, 1.f}));
  // Both axes: 5x7 -> 3x2 of iota (value 7h + w), bin means 7·mean(h) + mean(w).
  Tensor y = ops::adaptive_avg_pool2d(tape, iota_plane(5, 7), 3, 2);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 2}));
  const std::vector<float> row_means{0.5f, 2.f, 3.5f}, col_means{1.5f, 4.5f};
  std::vector<float> got = y.to_vector<float>();
  for (size_t p = 0; p < 3; ++p)
    for (size_t q = 0; q < 2; ++q) EXPECT_NEAR(got[p * 2 + q], 7 * row_means[p] + col_means[q], 1e-5) << p << "," << q;
}

TEST(AdaptiveAvgPool2d, GradientSharesEachBinOverItsArea) {
  Tape tape;
  Tensor x = Tensor::zeros({1, 1, 1, 5});
  x.set_requires_grad(true);
  Tensor y = ops::adaptive_avg_pool2d(tape, x, 1, 3);
  Tensor gx = tape.vjp(y, Tensor::full(y.shape(), 1.0), {x})[0];
  // Bins [0,2) [1,4) [3,5): 1/2, 1/2+1/3, 1/3, 1/3+1/2, 1/2 (PyTorch's values).
  const std::vector<float> expected{0.5f, 0.5f + 1.f / 3.f, 1.f / 3.f, 1.f / 3.f + 0.5f, 0.5f};
  std::vector<float> got = gx.to_vector<float>();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-6) << i;
}


TEST(Pool2d, ErrorsNameOpAndProblem) {
  Tape tape;
  expect_error([&] { ops::max_pool2d(tape, Tensor::zeros({4, 4}), 2, 2); }, "max_pool2d: x must be (N,C,H,W), got (4,4)");
  expect_error([&] { ops::avg_pool2d(tape, Tensor::zeros({1, 1, 4, 3}), 4, 1); },
               "avg_pool2d: kernel 4 does not fit the input plane 4x3 (no padding)");
  expect_error([&] { ops::avg_pool2d(tape, Tensor::zeros({1, 1, 4, 4}), 0, 1); }, "avg_pool2d: kernel must be >= 1, got 0");
  expect_error([&] { ops::max_pool2d(tape, Tensor::zeros({1, 1, 4, 4}), 2, 0); }, "max_pool2d: stride must be >= 1, got 0");
  expect_error([&] { ops::max_pool2d(tape, Tensor::zeros({1, 1, 4, 4}, DType::I32), 2, 2); }, "max_pool2d: x must be float32");
  expect_error([&] { ops::max_pool2d(tape, Tensor::zeros({1, 1, 8, 8}), 3, 2, 2); },
               "max_pool2d: padding must be at most half the kernel, got padding 2 with kernel 3");
  expect_error([&] { ops::avg_pool2d(tape, Tensor::zeros({1, 1, 8, 8}), 3, 2, -1); },
               "avg_pool2d: padding must be >= 0, got -1");
  expect_error([&] { ops::avg_pool2d(tape, Tensor::zeros({1, 1, 1, 5}), 4, 1, 1); },
               "avg_pool2d: kernel 4 does not fit the input plane 1x5 with padding 1");
  expect_error([&] { ops::adaptive_avg_pool2d(tape, Tensor::zeros({1, 4, 4}), 2, 2); },
               "adaptive_avg_pool2d: x must be (N,C,H,W), got (1,4,4)");
  expect_error([&] { ops::adaptive_avg_pool2d(tape, Tensor::zeros({1, 1, 4, 4}), 0, 2); },
               "adaptive_avg_pool2d: output size must be >= 1 in both dimensions, got 0x2");
  expect_error([&] { ops::adaptive_avg_pool2d(tape, Tensor::zeros({1, 1, 0, 4}), 1, 1); },
               "adaptive_avg_pool2d: the input plane must be at least 1x1, got 0x4");
  expect_error([&] { ops::adaptive_avg_pool2d(tape, Tensor::zeros({1, 1, 4, 4}, DType::I32), 1, 1); },
               "adaptive_avg_pool2d: x must be float32");
}

}  // namespace
}  // namespace spikegrad::testing
