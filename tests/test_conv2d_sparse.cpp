// The zero-skipping conv2d (kernels/conv2d_sparse.h) against the double plain-loop reference: forward and
// weight/bias gradient over geometries (stride 2, padding wider than half the kernel, 1x1, odd and non-square
// sizes, K off the 32-channel block), densities from 0 to 1, spike (0/1) and pooled-spike values; the packed
// input equal to the float one bit for bit; the same bits for any thread count; the op's dispatch.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/tape.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_sparse.h"
#include "support/conv_shapes.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// Stride 2, padding wider than half the kernel, 1x1, odd and non-square sizes, a stride that does not divide the
// padded extent, 5x5 at stride 3, a single image, and K on and off the 16-float rows and 64-channel blocks.
std::vector<ConvCase> sparse_cases() {
  return {
      {"3x3_s1_p1", make_conv2d_shape(2, 16, 8, 8, 32, 3, 3, 1, 1)},
      {"3x3_s2_p1", make_conv2d_shape(2, 16, 9, 9, 40, 3, 3, 2, 1)},
      {"1x1_s1_p0", make_conv2d_shape(3, 17, 5, 5, 6, 1, 1, 1, 0)},
      {"1x1_s2_p0", make_conv2d_shape(2, 16, 7, 7, 33, 1, 1, 2, 0)},
      {"odd_hw", make_conv2d_shape(2, 20, 7, 5, 31, 3, 3, 1, 1)},
      {"s2_p2_floor", make_conv2d_shape(3, 16, 4, 5, 2, 3, 3, 2, 2)},
      {"non_square_kernel", make_conv2d_shape(2, 16, 6, 9, 65, 3, 2, 2, 1)},
      {"pad_exceeds_half_kernel", make_conv2d_shape(1, 16, 4, 4, 2, 3, 3, 1, 2)},
      {"5x5_s3_p2", make_conv2d_shape(2, 16, 11, 10, 7, 5, 5, 3, 2)},
      {"one_image", make_conv2d_shape(1, 32, 6, 6, 64, 3, 3, 1, 1)},
  };
}

// x with the given fraction of non-zeros: 1 (spikes) or, when `pooled`, multiples of 1/4 in (0, 1] (2x2-pooled
// spikes, levels = 4). Also returns x·levels as bytes.
struct SparseInput {
  std::vector<float> x;
  std::vector<uint8_t> levels_bytes;
  int levels = 1;
};
SparseInput sparse_input(int64_t count, double density, bool pooled, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int> level(1, 4);
  SparseInput in;
  in.levels = pooled ? 4 : 1;
  in.x.resize(size_t(count));
  in.levels_bytes.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) {
    const int q = u(gen) < density ? (pooled ? level(gen) : 1) : 0;
    in.levels_bytes[size_t(i)] = uint8_t(q);
    in.x[size_t(i)] = float(q) / float(in.levels);
  }
  return in;
}

std::vector<float> normal(int64_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& e : v) e = d(gen);
  return v;
}
std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Both sides sum the same products in different orders; with unit-variance terms each order adds about one ulp
// of the running sum (~√n) per term, so they differ by ~ε·n (ε = 2⁻²⁴) however small the result (see
// test_conv2d_onednn.cpp). Against the double reference the float side alone carries that error: 1e-5
// relative + 8·ε·n absolute, n = the pass's reduction length. A wrong tap, a missed padding row or a lost
// non-zero is off by O(1).
void expect_near_reference(const std::vector<float>& actual, const std::vector<double>& expected,
                           int64_t reduction_length, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  const double atol = 8.0 * 0x1p-24 * double(reduction_length);
  int64_t bad = 0, worst = -1;
  double worst_excess = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double excess = std::abs(double(actual[i]) - expected[i]) - (atol + 1e-5 * std::abs(expected[i]));
    if (!(excess <= 0)) {
      ++bad;
      if (worst < 0 || !(excess <= worst_excess)) worst = int64_t(i), worst_excess = excess;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << actual.size() << " elements off; worst at " << worst
                    << ": " << (worst >= 0 ? actual[size_t(worst)] : 0.f) << " vs "
                    << (worst >= 0 ? expected[size_t(worst)] : 0.0);
}

void check_case(const ConvCase& cs, double density, bool pooled) {
  const Conv2dShape& s = cs.shape;
  const std::string name = std::string(cs.name) + " density " + std::to_string(density) + (pooled ? " pooled" : " spikes");
  const int64_t x_count = s.N * s.C * s.H * s.W, y_count = s.N * s.K * s.P * s.Q, w_count = s.K * s.C * s.R * s.S;
  const SparseInput in = sparse_input(x_count, density, pooled, 11);
  const std::vector<float> w = normal(w_count, 12), b = normal(s.K, 13), gy = normal(y_count, 14);
  const std::vector<double> xd = to_double(in.x), wd = to_double(w), bd = to_double(b), gyd = to_double(gy);

  std::vector<float> y(size_t(y_count), -7.f);  // forward overwrites
  std::vector<double> y_ref(static_cast<size_t>(y_count));
  conv2d_forward_sparse_cpu(in.x.data(), w.data(), b.data(), y.data(), s);
  conv2d_forward_naive_cpu<double>(xd.data(), wd.data(), bd.data(), y_ref.data(), s);
  expect_near_reference(y, y_ref, s.C * s.R * s.S, name + " forward");
  conv2d_forward_sparse_cpu(in.x.data(), w.data(), nullptr, y.data(), s);
  conv2d_forward_naive_cpu<double>(xd.data(), wd.data(), nullptr, y_ref.data(), s);
  expect_near_reference(y, y_ref, s.C * s.R * s.S, name + " forward without bias");

  // The gradients start non-zero: the contract is +=.
  const std::vector<float> gw_start = normal(w_count, 15), gb_start = normal(s.K, 16);
  std::vector<float> gw = gw_start, gb = gb_start;
  std::vector<double> gw_ref = to_double(gw_start), gb_ref = to_double(gb_start);
  conv2d_backward_weight_sparse_cpu(in.x.data(), gy.data(), gw.data(), gb.data(), s);
  conv2d_backward_naive_cpu<double>(xd.data(), wd.data(), gyd.data(), nullptr, gw_ref.data(), gb_ref.data(), s);
  expect_near_reference(gw, gw_ref, s.N * s.P * s.Q, name + " backward weight");
  expect_near_reference(gb, gb_ref, s.N * s.P * s.Q, name + " backward bias");

  // From the bytes: the same values, read without a float copy, summed in the same order: the same bits.
  std::vector<float> gw_packed = gw_start, gb_packed = gb_start;
  conv2d_backward_weight_sparse_packed_cpu(in.levels_bytes.data(), in.levels, gy.data(), gw_packed.data(),
                                           gb_packed.data(), s);
  EXPECT_EQ(gw_packed, gw) << name << " packed backward weight";
  EXPECT_EQ(gb_packed, gb) << name << " packed backward bias";
}

TEST(Conv2dSparse, MatchesReferenceOnEveryGeometryAndDensity) {
  for (const ConvCase& cs : sparse_cases())
    for (const double density : {0.0, 0.05, 0.2, 1.0}) check_case(cs, density, false);
}

TEST(Conv2dSparse, PooledSpikeValuesMultiply) {
  for (const ConvCase& cs : sparse_cases()) check_case(cs, 0.3, true);
}

TEST(Conv2dSparse, AnyFloatInputWithZeros) {
  // Not levels at all: a Gaussian with most entries zeroed (what a ReLU-like sparse input would look like).
  const Conv2dShape s = make_conv2d_shape(2, 16, 7, 7, 35, 3, 3, 1, 1);
  std::vector<float> x = normal(s.N * s.C * s.H * s.W, 21);
  for (size_t i = 0; i < x.size(); ++i)
    if (i % 5 != 0) x[i] = 0.f;
  const std::vector<float> w = normal(s.K * s.C * 9, 22), gy = normal(s.N * s.K * s.P * s.Q, 23);
  const std::vector<double> xd = to_double(x), wd = to_double(w), gyd = to_double(gy);
  std::vector<float> y(size_t(s.N * s.K * s.P * s.Q)), gw(w.size(), 0.f);
  std::vector<double> y_ref(y.size()), gw_ref(w.size(), 0.0);
  conv2d_forward_sparse_cpu(x.data(), w.data(), nullptr, y.data(), s);
  conv2d_forward_naive_cpu<double>(xd.data(), wd.data(), nullptr, y_ref.data(), s);
  expect_near_reference(y, y_ref, s.C * 9, "gaussian forward");
  conv2d_backward_weight_sparse_cpu(x.data(), gy.data(), gw.data(), nullptr, s);
  conv2d_backward_naive_cpu<double>(xd.data(), wd.data(), gyd.data(), nullptr, gw_ref.data(), nullptr, s);
  expect_near_reference(gw, gw_ref, s.N * s.P * s.Q, "gaussian backward weight");
}

TEST(Conv2dSparse, SameBitsForAnyThreadCount) {
  const Conv2dShape s = make_conv2d_shape(5, 24, 10, 10, 70, 3, 3, 1, 1);
  const SparseInput in = sparse_input(s.N * s.C * s.H * s.W, 0.2, false, 31);
  const std::vector<float> w = normal(s.K * s.C * 9, 32), gy = normal(s.N * s.K * s.P * s.Q, 33);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> ys, gws;
  for (const int threads : {1, 2, 3, 7}) {
    omp_set_num_threads(threads);
    std::vector<float> y(gy.size()), gw(w.size(), 0.f);
    conv2d_forward_sparse_cpu(in.x.data(), w.data(), nullptr, y.data(), s);
    conv2d_backward_weight_sparse_cpu(in.x.data(), gy.data(), gw.data(), nullptr, s);
    ys.push_back(y);
    gws.push_back(gw);
  }
  omp_set_num_threads(saved);
  for (size_t i = 1; i < ys.size(); ++i) {
    EXPECT_EQ(ys[i], ys[0]) << "forward, thread count #" << i;
    EXPECT_EQ(gws[i], gws[0]) << "backward weight, thread count #" << i;
  }
}

TEST(Conv2dSparse, NanInTheInputPropagates) {
  // A NaN is a non-zero: it is read, not skipped, so the outputs it reaches are NaN as in the dense formula.
  const Conv2dShape s = make_conv2d_shape(1, 16, 5, 5, 4, 3, 3, 1, 1);
  std::vector<float> x(size_t(s.C * 25), 0.f);
  x[12] = std::nanf("");  // channel 0, pixel (2,2): reaches every output pixel of the 5x5 map within 1
  const std::vector<float> w = normal(s.K * s.C * 9, 41);
  std::vector<float> y(size_t(s.K * 25));
  conv2d_forward_sparse_cpu(x.data(), w.data(), nullptr, y.data(), s);
  EXPECT_TRUE(std::isnan(y[1 * 5 + 1]));
  EXPECT_FALSE(std::isnan(y[0]));  // (0,0) is two pixels away
}

TEST(Conv2dSparse, CountAndChoice) {
  const std::vector<float> x = {0.f, 1.f, 0.f, -0.f, 0.25f, std::nanf("")};
  EXPECT_EQ(count_nonzero_cpu(x.data(), int64_t(x.size())), 3);  // -0 is zero, NaN is not
  const std::vector<uint8_t> q = {0, 3, 0, 1};
  EXPECT_EQ(count_nonzero_cpu(q.data(), int64_t(q.size())), 2);
  const Conv2dShape s = make_conv2d_shape(2, 32, 10, 10, 64, 3, 3, 1, 1);  // 6400 inputs
  EXPECT_TRUE(conv2d_sparse_pays(s, 0));
  EXPECT_TRUE(conv2d_sparse_pays(s, int64_t(kConv2dSparseMaxDensity * 6400)));
  EXPECT_FALSE(conv2d_sparse_pays(s, int64_t(kConv2dSparseMaxDensity * 6400) + 1));
  // The shapes (docs/perf.md): VGGSNN's stride-1 3x3 layers up to 16x16 for the forward, layers up to 8x8
  // outputs for the weight gradient; not images, stride 2, 1x1, 32x32 or K = 32 for the forward.
  auto shape = [](int64_t C, int64_t HW, int64_t K, int64_t RS, int64_t stride) {
    return make_conv2d_shape(64, C, HW, HW, K, RS, RS, stride, RS / 2);
  };
  EXPECT_TRUE(conv2d_sparse_forward_shape(shape(128, 16, 256, 3, 1)));
  EXPECT_TRUE(conv2d_sparse_forward_shape(shape(512, 4, 512, 3, 1)));
  EXPECT_FALSE(conv2d_sparse_forward_shape(shape(3, 32, 64, 3, 1)));
  EXPECT_FALSE(conv2d_sparse_forward_shape(shape(256, 16, 256, 3, 2)));
  EXPECT_FALSE(conv2d_sparse_forward_shape(shape(128, 16, 256, 1, 1)));
  EXPECT_FALSE(conv2d_sparse_forward_shape(shape(64, 32, 64, 3, 1)));
  EXPECT_FALSE(conv2d_sparse_forward_shape(shape(64, 14, 32, 3, 1)));
  EXPECT_TRUE(conv2d_sparse_backward_weight_shape(shape(256, 8, 512, 3, 1)));
  EXPECT_TRUE(conv2d_sparse_backward_weight_shape(shape(256, 16, 256, 3, 2)));  // 8x8 outputs
  EXPECT_FALSE(conv2d_sparse_backward_weight_shape(shape(128, 16, 256, 3, 1)));
  EXPECT_FALSE(conv2d_sparse_backward_weight_shape(shape(16, 8, 32, 3, 1)));
  EXPECT_FALSE(conv2d_sparse_backward_weight_shape(shape(128, 16, 256, 1, 2)));  // 1x1 at 8x8 outputs
}

Tensor tensor_of(const std::vector<float>& v, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}
std::vector<float> values_of(const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); }

TEST(Conv2dSparse, TheOpTakesItForSparseInputsOnItsShapesUnlessTold) {
  // ops::conv2d on the CPU in float: the sparse kernels' bits on a shape they are chosen for when x is sparse
  // enough, the input gradient still computed (densely) beside them, from float x or from spike bytes; with
  // ConvSettings::cpu_sparse off (--cpu-conv dense), the dense path's bits.
  const Conv2dShape s = make_conv2d_shape(8, 32, 8, 8, 64, 3, 3, 1, 1);
  ASSERT_TRUE(conv2d_sparse_forward_shape(s) && conv2d_sparse_backward_weight_shape(s));
  const SparseInput in = sparse_input(s.N * s.C * 64, 0.15, false, 51);
  ASSERT_TRUE(conv2d_sparse_pays(s, count_nonzero_cpu(in.x.data(), int64_t(in.x.size()))));
  const std::vector<float> w = normal(s.K * s.C * 9, 52), b = normal(s.K, 53), gy = normal(s.N * s.K * 64, 54);

  std::vector<float> y_sparse(gy.size()), y_dense(gy.size()), gw_sparse(w.size(), 0.f), gb_sparse(b.size(), 0.f);
  std::vector<float> gw_dense(w.size(), 0.f), gb_dense(b.size(), 0.f);
  conv2d_forward_sparse_cpu(in.x.data(), w.data(), b.data(), y_sparse.data(), s);
  conv2d_forward_cpu<float>(in.x.data(), w.data(), b.data(), y_dense.data(), s);
  conv2d_backward_weight_sparse_cpu(in.x.data(), gy.data(), gw_sparse.data(), gb_sparse.data(), s);
  conv2d_backward_cpu<float>(in.x.data(), w.data(), gy.data(), nullptr, gw_dense.data(), gb_dense.data(), s);
  ASSERT_NE(y_sparse, y_dense) << "the two paths round differently here, or this test could not tell them apart";
  // (The weight gradients may agree bit for bit: oneDNN happens to sum this shape's n·p·q terms in our order. The
  // loop below tells the paths apart by how they treat an Inf in gy where x is 0.)
  std::vector<double> gx_ref(in.x.size(), 0.0);
  const std::vector<double> wd = to_double(w), gyd = to_double(gy), xd = to_double(in.x);
  conv2d_backward_naive_cpu<double>(xd.data(), wd.data(), gyd.data(), gx_ref.data(), nullptr, nullptr, s);

  for (const bool sparse_on : {true, false})
    for (const int levels : {0, 1}) {  // 0: x kept as float; 1: as spike bytes
      ScopedConvSettings settings({ops::ConvBackend::cudnn, false, sparse_on});
      const std::string what = std::string(sparse_on ? "auto" : "dense") + (levels ? ", x as bytes" : ", x as float");
      Tensor x = tensor_of(in.x, {s.N, s.C, 8, 8}), wt = tensor_of(w, {s.K, s.C, 3, 3}), bt = tensor_of(b, {s.K});
      for (Tensor* t : {&x, &wt, &bt}) t->set_requires_grad(true);
      Tape tape;
      ops::Conv2dOptions opt;
      opt.stride = 1;
      opt.padding = 1;
      opt.input_levels = levels;
      Tensor y = ops::conv2d(tape, x, wt, bt, opt);
      EXPECT_EQ(values_of(y), sparse_on ? y_sparse : y_dense) << what;
      const std::vector<Tensor> g = tape.grad(ops::sum(tape, ops::mul(tape, y, tensor_of(gy, y.shape()))), {x, wt, bt});
      EXPECT_EQ(values_of(g[1]), sparse_on ? gw_sparse : gw_dense) << what;
      EXPECT_EQ(values_of(g[2]), sparse_on ? gb_sparse : gb_dense) << what;
      expect_near_reference(values_of(g[0]), gx_ref, s.K * 9, what + ": input gradient");

      // Input channel 0 all zeros and one Inf in gy: the dense weight gradient multiplies it by those zeros (NaN in
      // dW[:, 0]); the sparse one never reads it there (the header's note on zeros).
      std::vector<float> x0 = in.x, gy_inf = gy;
      for (int64_t n = 0; n < s.N; ++n) std::fill_n(x0.begin() + n * s.C * 64, 64, 0.f);
      gy_inf[3 * 8 + 3] = INFINITY;  // n = 0, k = 0, (p,q) = (3,3): tap (0,0) reads x[0, c, 2, 2]
      Tensor xz = tensor_of(x0, {s.N, s.C, 8, 8}), wz = tensor_of(w, {s.K, s.C, 3, 3});
      wz.set_requires_grad(true);
      Tape tape2;
      Tensor yz = ops::conv2d(tape2, xz, wz, Tensor(), opt);
      const std::vector<float> gwz =
          values_of(tape2.grad(ops::sum(tape2, ops::mul(tape2, yz, tensor_of(gy_inf, yz.shape()))), {wz})[0]);
      EXPECT_EQ(std::isnan(gwz[0]), !sparse_on) << what << ": dW[0,0,0,0] = " << gwz[0];
    }
}

}  // namespace
}  // namespace spikegrad::testing
