// conv2d: golden values, the im2col+GEMM path against the plain loops, op-table registration, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// ---- op table: CUDA vs CPU and finite-difference gradients (tests/test_op_table.cpp) --------------

struct ConvCaseSpec {
  Shape x, w;
  bool bias;
  int stride, padding;
};

std::function<std::vector<Tensor>(DType)> conv_inputs(ConvCaseSpec spec, uint64_t seed) {
  return [spec, seed](DType d) {
    std::vector<Tensor> in{randn(spec.x, d, seed), randn(spec.w, d, seed + 1, 0.5)};
    if (spec.bias) in.push_back(randn({spec.w[0]}, d, seed + 2));
    return in;
  };
}
std::function<Tensor(Tape&, const std::vector<Tensor>&)> conv_forward(ConvCaseSpec spec) {
  return [spec](Tape& t, const std::vector<Tensor>& in) {
    return ops::conv2d(t, in[0], in[1], spec.bias ? in[2] : Tensor(), {spec.stride, spec.padding});
  };
}

const ConvCaseSpec k3x3_s1_p1_bias{{2, 3, 6, 6}, {4, 3, 3, 3}, true, 1, 1};
const ConvCaseSpec k3x3_s2_p1_nobias{{2, 3, 7, 7}, {4, 3, 3, 3}, false, 2, 1};
const ConvCaseSpec k1x1_s1_p0_bias{{2, 5, 4, 3}, {3, 5, 1, 1}, true, 1, 0};
const ConvCaseSpec k1x1_s2_p0_bias{{2, 4, 5, 5}, {3, 4, 1, 1}, true, 2, 0};
const ConvCaseSpec odd_n1_bias{{1, 2, 5, 7}, {3, 2, 3, 2}, true, 1, 0};
const ConvCaseSpec c1_pad2_bias{{3, 1, 4, 5}, {2, 1, 3, 3}, true, 2, 2};

SG_OP_CASE({.name = "conv2d/3x3_s1_p1_bias",
            .make_inputs = conv_inputs(k3x3_s1_p1_bias, 11),
            .grad_inputs = {0, 1, 2},
            .forward = conv_forward(k3x3_s1_p1_bias)});
SG_OP_CASE({.name = "conv2d/3x3_s2_p1_nobias",
            .make_inputs = conv_inputs(k3x3_s2_p1_nobias, 21),
            .grad_inputs = {0, 1},
            .forward = conv_forward(k3x3_s2_p1_nobias)});
SG_OP_CASE({.name = "conv2d/1x1_s1_p0_bias",
            .make_inputs = conv_inputs(k1x1_s1_p0_bias, 31),
            .grad_inputs = {0, 1, 2},
            .forward = conv_forward(k1x1_s1_p0_bias)});
SG_OP_CASE({.name = "conv2d/1x1_s2_p0_bias",
            .make_inputs = conv_inputs(k1x1_s2_p0_bias, 41),
            .grad_inputs = {0, 1, 2},
            .forward = conv_forward(k1x1_s2_p0_bias)});
SG_OP_CASE({.name = "conv2d/odd_N1_nonsquare_kernel",
            .make_inputs = conv_inputs(odd_n1_bias, 51),
            .grad_inputs = {0, 1, 2},
            .forward = conv_forward(odd_n1_bias)});
SG_OP_CASE({.name = "conv2d/C1_s2_p2",
            .make_inputs = conv_inputs(c1_pad2_bias, 61),
            .grad_inputs = {0, 1, 2},
            .forward = conv_forward(c1_pad2_bias)});
// Only the input's gradient wanted (as in an attack): dw and db must not be needed.
SG_OP_CASE({.name = "conv2d/input_grad_only",
            .make_inputs = conv_inputs(k3x3_s1_p1_bias, 71),
            .grad_inputs = {0},
            .forward = conv_forward(k3x3_s1_p1_bias)});

// ---- golden values -------------------------------------------------------------------------------

Tensor arange_f32(int64_t n, const Shape& shape) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(i + 1);
  return Tensor::from_vector(v, shape);
}

TEST(Conv2d, GoldenForwardAndBackward) {
  // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], b = 0.5, stride 1, no padding.
  // y[p,q] = x[p,q] + 2x[p,q+1] + 3x[p+1,q] + 4x[p+1,q+1] + 0.5  ->  37.5 47.5 67.5 77.5
  // With gy = 1: db = 4; dw[r,s] = Σ_{p,q} x[p+r,q+s] = 12 16 24 28; dx[h,w] = Σ of the taps covering it.
  Tape tape;
  Tensor x = arange_f32(9, {1, 1, 3, 3}).set_requires_grad(true);
  Tensor w = Tensor::from_vector<float>({1, 2, 3, 4}, {1, 1, 2, 2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector<float>({0.5f}, {1}).set_requires_grad(true);
  Tensor y = ops::conv2d(tape, x, w, b);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{37.5f, 47.5f, 67.5f, 77.5f}));
  std::vector<Tensor> g = tape.vjp(y, Tensor::full({1, 1, 2, 2}, 1.0), {x, w, b});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{1, 3, 2, 4, 10, 6, 3, 7, 4}));
  EXPECT_EQ(g[1].to_vector<float>(), (std::vector<float>{12, 16, 24, 28}));
  EXPECT_EQ(g[2].to_vector<float>(), (std::vector<float>{4}));
}

TEST(Conv2d, GoldenStrideTwoWithPadding) {
  // 3x3 box filter, stride 2, padding 1 on x = 1..9: each output sums the 2x2 corner block it covers.
  Tape tape;
  Tensor y = ops::conv2d(tape, arange_f32(9, {1, 1, 3, 3}), Tensor::full({1, 1, 3, 3}, 1.0), Tensor(), {2, 1});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{12, 16, 24, 28}));
}

// ---- im2col + GEMM against the plain loops -----------------------------------------------------

struct ConvGeometry {
  const char* name;
  int64_t N, C, H, W, K, R, S, stride, pad;
};

const ConvGeometry kGeometries[] = {
    {"3x3_s1_p1", 2, 3, 8, 8, 4, 3, 3, 1, 1},      {"3x3_s2_p1", 2, 3, 9, 9, 5, 3, 3, 2, 1},
    {"1x1_s1_p0", 3, 4, 5, 5, 6, 1, 1, 1, 0},      {"1x1_s2_p0", 2, 4, 7, 7, 3, 1, 1, 2, 0},
    {"odd_hw", 2, 3, 7, 5, 4, 3, 3, 1, 1},         {"N1", 1, 2, 6, 6, 3, 3, 3, 1, 0},
    {"C1", 2, 1, 6, 6, 2, 3, 3, 1, 1},             {"non_square_kernel", 2, 2, 6, 9, 3, 3, 2, 2, 1},
    {"pad_exceeds_half_kernel", 1, 2, 4, 4, 2, 3, 3, 1, 2}, {"batch_above_threads", 7, 2, 5, 5, 3, 3, 3, 1, 1},
};

template <class T>
void expect_fast_matches_naive(const ConvGeometry& g, double tol) {
  const Conv2dShape s = make_conv2d_shape(g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.stride, g.pad);
  const DType d = dtype_of<T>::value;
  Tensor x = randn({s.N, s.C, s.H, s.W}, d, 1), w = randn({s.K, s.C, s.R, s.S}, d, 2), b = randn({s.K}, d, 3);
  Tensor gy = randn({s.N, s.K, s.P, s.Q}, d, 4);
  Tensor y_fast = Tensor::empty({s.N, s.K, s.P, s.Q}, d), y_naive = Tensor::empty({s.N, s.K, s.P, s.Q}, d);
  conv2d_forward_cpu<T>(x.data<T>(), w.data<T>(), b.data<T>(), y_fast.data<T>(), s);
  conv2d_forward_naive_cpu<T>(x.data<T>(), w.data<T>(), b.data<T>(), y_naive.data<T>(), s);
  expect_close(y_fast, y_naive, tol, tol, std::string(g.name) + " forward");

  // Gradient buffers start non-zero so that accumulation (+=) is checked, not just assignment.
  Tensor gx_start = randn(x.shape(), d, 5), gw_start = randn(w.shape(), d, 6), gb_start = randn(b.shape(), d, 7);
  Tensor gx_fast = gx_start.clone(), gw_fast = gw_start.clone(), gb_fast = gb_start.clone();
  Tensor gx_naive = gx_start.clone(), gw_naive = gw_start.clone(), gb_naive = gb_start.clone();
  conv2d_backward_cpu<T>(x.data<T>(), w.data<T>(), gy.data<T>(), gx_fast.data<T>(), gw_fast.data<T>(),
                         gb_fast.data<T>(), s);
  conv2d_backward_naive_cpu<T>(x.data<T>(), w.data<T>(), gy.data<T>(), gx_naive.data<T>(), gw_naive.data<T>(),
                               gb_naive.data<T>(), s);
  expect_close(gx_fast, gx_naive, tol, tol, std::string(g.name) + " dx");
  expect_close(gw_fast, gw_naive, tol, tol, std::string(g.name) + " dw");
  expect_close(gb_fast, gb_naive, tol, tol, std::string(g.name) + " db");

  // Each gradient alone: the others' pointers are null and must not be touched.
  Tensor gw_only = gw_start.clone();
  conv2d_backward_cpu<T>(x.data<T>(), w.data<T>(), gy.data<T>(), nullptr, gw_only.data<T>(), nullptr, s);
  expect_close(gw_only, gw_naive, tol, tol, std::string(g.name) + " dw alone");
  Tensor gx_only = gx_start.clone();
  conv2d_backward_cpu<T>(x.data<T>(), w.data<T>(), gy.data<T>(), gx_only.data<T>(), nullptr, nullptr, s);
  expect_close(gx_only, gx_naive, tol, tol, std::string(g.name) + " dx alone");
}

TEST(Conv2d, Im2colGemmMatchesNaiveDouble) {
  for (const ConvGeometry& g : kGeometries) expect_fast_matches_naive<double>(g, 1e-12);
}
TEST(Conv2d, Im2colGemmMatchesNaiveFloat) {
  for (const ConvGeometry& g : kGeometries) expect_fast_matches_naive<float>(g, 1e-5);
}

// col2im must be the exact adjoint of im2col: <im2col(x), c> == <x, col2im(c)> for any x, c.
TEST(Conv2d, Col2imIsTheAdjointOfIm2col) {
  for (const ConvGeometry& g : kGeometries) {
    const Conv2dShape s = make_conv2d_shape(1, g.C, g.H, g.W, g.K, g.R, g.S, g.stride, g.pad);
    const int64_t rows = s.C * s.R * s.S, cols = s.P * s.Q;
    Tensor image = randn({s.C, s.H, s.W}, DType::F64, 8), col = randn({rows, cols}, DType::F64, 9);
    Tensor unfolded = Tensor::empty({rows, cols}, DType::F64), folded = Tensor::zeros({s.C, s.H, s.W}, DType::F64);
    im2col_cpu<double>(image.data<double>(), unfolded.data<double>(), s);
    col2im_add_cpu<double>(col.data<double>(), folded.data<double>(), s);
    double lhs = 0, rhs = 0;
    for (int64_t i = 0; i < unfolded.numel(); ++i) lhs += unfolded.data<double>()[i] * col.data<double>()[i];
    for (int64_t i = 0; i < image.numel(); ++i) rhs += image.data<double>()[i] * folded.data<double>()[i];
    EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::abs(lhs))) << g.name;
  }
}

// Two uses of one weight: both tape nodes accumulate into the same gradient buffer.
TEST(Conv2d, SharedWeightGradientsAccumulate) {
  const Conv2dShape s = make_conv2d_shape(2, 3, 5, 5, 4, 3, 3, 1, 1);
  Tensor x1 = randn({2, 3, 5, 5}, DType::F64, 1), x2 = randn({2, 3, 5, 5}, DType::F64, 2);
  Tensor w = randn({4, 3, 3, 3}, DType::F64, 3).set_requires_grad(true);
  Tensor r = randn({2, 4, 5, 5}, DType::F64, 4);
  Tape tape;
  Tensor y = ops::add(tape, ops::conv2d(tape, x1, w, Tensor(), {1, 1}), ops::conv2d(tape, x2, w, Tensor(), {1, 1}));
  Tensor gw = tape.vjp(y, r, {w})[0];
  Tensor expected = Tensor::zeros(w.shape(), DType::F64);
  conv2d_backward_naive_cpu<double>(x1.data<double>(), w.data<double>(), r.data<double>(), nullptr,
                                    expected.data<double>(), nullptr, s);
  conv2d_backward_naive_cpu<double>(x2.data<double>(), w.data<double>(), r.data<double>(), nullptr,
                                    expected.data<double>(), nullptr, s);
  expect_close(gw, expected, 1e-12, 1e-12, "shared weight dw");
}

// ---- errors --------------------------------------------------------------------------------------

std::string conv_error(const Tensor& x, const Tensor& w, const Tensor& b, ops::Conv2dOptions opt = {}) {
  Tape tape;
  try {
    ops::conv2d(tape, x, w, b, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Conv2d, ErrorsNameTheOpAndTheProblem) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8}), w = Tensor::zeros({4, 3, 3, 3});
  EXPECT_NE(conv_error(x, Tensor::zeros({4, 2, 3, 3}), Tensor())
                .find("conv2d: w must have C=3 input channels to match x (2,3,8,8), got w (4,2,3,3)"),
            std::string::npos);
  EXPECT_NE(conv_error(Tensor::zeros({3, 8, 8}), w, Tensor()).find("conv2d: x must be 4-D (N,C,H,W), got shape (3,8,8)"),
            std::string::npos);
  EXPECT_NE(conv_error(x, Tensor::zeros({4, 27}), Tensor()).find("conv2d: w must be 4-D (K,C,R,S), got shape (4,27)"),
            std::string::npos);
  EXPECT_NE(conv_error(x, w, Tensor::zeros({3})).find("conv2d: b must have shape (4), got (3)"), std::string::npos);
  EXPECT_NE(conv_error(x, Tensor::zeros({4, 3, 3, 3}, DType::F64), Tensor()).find("conv2d: w is float64 but x is float32"),
            std::string::npos);
  EXPECT_NE(conv_error(Tensor::zeros({1, 3, 2, 2}), w, Tensor())
                .find("conv2d: a 3x3 kernel does not fit the 2x2 input with padding 0"),
            std::string::npos);
  EXPECT_NE(conv_error(x, w, Tensor(), {0, 1}).find("conv2d: stride must be >= 1, got 0"), std::string::npos);
  EXPECT_NE(conv_error(x, w, Tensor(), {1, -1}).find("conv2d: padding must be >= 0, got -1"), std::string::npos);
  EXPECT_NE(conv_error(Tensor::zeros({2, 3, 8, 8}, DType::I32), w, Tensor()).find("conv2d: x must be float32"),
            std::string::npos);
}

TEST(Conv2d, DeviceMismatchIsAnError) {
  SG_SKIP_WITHOUT_CUDA();
  const Tensor x = Tensor::zeros({2, 3, 8, 8}), w = Tensor::zeros({4, 3, 3, 3}, DType::F32, Device::CUDA);
  EXPECT_NE(conv_error(x, w, Tensor()).find("conv2d: w is on cuda but x is on cpu"), std::string::npos);
  EXPECT_NE(conv_error(x.to(Device::CUDA), w, Tensor::zeros({4})).find("conv2d: b is on cpu but x is on cuda"),
            std::string::npos);
}

}  // namespace
}  // namespace spikegrad::testing
