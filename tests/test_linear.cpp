// linear: golden values, Eigen path against plain loops, op-table registration, errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/linear.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// ---- op table: CUDA vs CPU and finite-difference gradients (tests/test_op_table.cpp) --------------

std::function<std::vector<Tensor>(DType)> linear_inputs(int64_t N, int64_t in, int64_t out, bool bias, uint64_t seed) {
  return [=](DType d) {
    std::vector<Tensor> v{randn({N, in}, d, seed), randn({out, in}, d, seed + 1, 0.5)};
    if (bias) v.push_back(randn({out}, d, seed + 2));
    return v;
  };
}
Tensor linear_with_bias(Tape& t, const std::vector<Tensor>& in) { return ops::linear(t, in[0], in[1], in[2]); }
Tensor linear_no_bias(Tape& t, const std::vector<Tensor>& in) { return ops::linear(t, in[0], in[1], Tensor()); }

SG_OP_CASE({.name = "linear/bias_odd",
            .make_inputs = linear_inputs(5, 7, 3, true, 101),
            .grad_inputs = {0, 1, 2},
            .forward = linear_with_bias});
SG_OP_CASE({.name = "linear/no_bias",
            .make_inputs = linear_inputs(4, 6, 9, false, 111),
            .grad_inputs = {0, 1},
            .forward = linear_no_bias});
SG_OP_CASE({.name = "linear/N1_bias",
            .make_inputs = linear_inputs(1, 5, 4, true, 121),
            .grad_inputs = {0, 1, 2},
            .forward = linear_with_bias});
// More than 32 outputs and 8 rows, so the CUDA column-sum uses several blocks and row lanes.
SG_OP_CASE({.name = "linear/wide_bias",
            .make_inputs = linear_inputs(19, 13, 37, true, 131),
            .grad_inputs = {0, 1, 2},
            .forward = linear_with_bias});
SG_OP_CASE({.name = "linear/weight_grad_only",
            .make_inputs = linear_inputs(3, 4, 2, true, 141),
            .grad_inputs = {1},
            .forward = linear_with_bias});

// ---- golden values -------------------------------------------------------------------------------

TEST(Linear, GoldenForwardAndBackward) {
  // x = [[1,2],[3,4]], w = [[1,0],[0,1],[1,1]], b = [0.5,-1,0]
  // y = x wᵀ + b = [[1.5, 1, 3], [3.5, 3, 7]]
  // gy = [[1,0,2],[0,1,-1]]: dx = gy w = [[3,2],[-1,0]]; dw = gyᵀ x = [[1,2],[3,4],[-1,0]]; db = [1,1,1]
  Tape tape;
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  Tensor w = Tensor::from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector<float>({0.5f, -1, 0}, {3}).set_requires_grad(true);
  Tensor y = ops::linear(tape, x, w, b);
  ASSERT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1.5f, 1, 3, 3.5f, 3, 7}));
  std::vector<Tensor> g = tape.vjp(y, Tensor::from_vector<float>({1, 0, 2, 0, 1, -1}, {2, 3}), {x, w, b});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{3, 2, -1, 0}));
  EXPECT_EQ(g[1].to_vector<float>(), (std::vector<float>{1, 2, 3, 4, -1, 0}));
  EXPECT_EQ(g[2].to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

TEST(Linear, NoBiasRecordsTwoInputs) {
  Tape tape;
  Tensor w = Tensor::from_vector<float>({2, -1}, {1, 2}).set_requires_grad(true);
  Tensor y = ops::linear(tape, Tensor::from_vector<float>({3, 4}, {1, 2}), w, Tensor());
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{2}));
  ASSERT_EQ(tape.size(), 1u);
  EXPECT_EQ(tape.nodes()[0].inputs.size(), 2u);
}

// ---- Eigen path against the plain loops ----------------------------------------------------------

template <class T>
void expect_eigen_matches_loops(const LinearShape& s, double tol) {
  const DType d = dtype_of<T>::value;
  Tensor x = randn({s.N, s.I}, d, 1), w = randn({s.O, s.I}, d, 2), b = randn({s.O}, d, 3);
  Tensor fast = Tensor::empty({s.N, s.O}, d), loops = Tensor::empty({s.N, s.O}, d);
  linear_forward_cpu<T>(x.data<T>(), w.data<T>(), b.data<T>(), fast.data<T>(), s);
  linear_forward_naive_cpu<T>(x.data<T>(), w.data<T>(), b.data<T>(), loops.data<T>(), s);
  expect_close(fast, loops, tol, tol, "linear forward");
}

TEST(Linear, EigenMatchesPlainLoops) {
  for (const LinearShape& s : {LinearShape{1, 1, 1}, LinearShape{7, 33, 5}, LinearShape{64, 130, 17}}) {
    expect_eigen_matches_loops<double>(s, 1e-12);
    expect_eigen_matches_loops<float>(s, 1e-5);
  }
}

// Backward must add to what the buffers already hold.
TEST(Linear, BackwardAccumulates) {
  const LinearShape s{3, 4, 2};
  Tensor x = randn({3, 4}, DType::F64, 1), w = randn({2, 4}, DType::F64, 2), gy = randn({3, 2}, DType::F64, 3);
  Tensor gx0 = Tensor::zeros({3, 4}, DType::F64), gw0 = Tensor::zeros({2, 4}, DType::F64), gb0 = Tensor::zeros({2}, DType::F64);
  linear_backward_cpu<double>(x.data<double>(), w.data<double>(), gy.data<double>(), gx0.data<double>(),
                              gw0.data<double>(), gb0.data<double>(), s);
  Tensor gx = gx0.clone(), gw = gw0.clone(), gb = gb0.clone();
  linear_backward_cpu<double>(x.data<double>(), w.data<double>(), gy.data<double>(), gx.data<double>(),
                              gw.data<double>(), gb.data<double>(), s);
  Tape tape;
  expect_close(gx, ops::scale(tape, gx0, 2), 1e-14, 0, "dx twice");
  expect_close(gw, ops::scale(tape, gw0, 2), 1e-14, 0, "dw twice");
  expect_close(gb, ops::scale(tape, gb0, 2), 1e-14, 0, "db twice");
}

// ---- errors --------------------------------------------------------------------------------------

std::string linear_error(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tape tape;
  try {
    ops::linear(tape, x, w, b);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Linear, ErrorsNameTheOpAndTheProblem) {
  const Tensor x = Tensor::zeros({4, 6}), w = Tensor::zeros({3, 6});
  EXPECT_NE(linear_error(x, Tensor::zeros({3, 5}), Tensor()).find("linear: w must have in=6 columns to match x (4,6), got w (3,5)"),
            std::string::npos);
  EXPECT_NE(linear_error(Tensor::zeros({4, 6, 1}), w, Tensor()).find("linear: x must be 2-D (N,in), got shape (4,6,1)"),
            std::string::npos);
  EXPECT_NE(linear_error(x, Tensor::zeros({18}), Tensor()).find("linear: w must be 2-D (out,in), got shape (18)"),
            std::string::npos);
  EXPECT_NE(linear_error(x, w, Tensor::zeros({6})).find("linear: b must have shape (3), got (6)"), std::string::npos);
  EXPECT_NE(linear_error(x, w, Tensor::zeros({3}, DType::F64)).find("linear: b is float64 but x is float32"),
            std::string::npos);
  EXPECT_NE(linear_error(Tensor::zeros({0, 6}), w, Tensor()).find("linear: x must not be empty, got shape (0,6)"),
            std::string::npos);
}

TEST(Linear, DeviceMismatchIsAnError) {
  SG_SKIP_WITHOUT_CUDA();
  const Tensor x = Tensor::zeros({4, 6}, DType::F32, Device::CUDA);
  EXPECT_NE(linear_error(x, Tensor::zeros({3, 6}), Tensor()).find("linear: w is on cpu but x is on cuda"),
            std::string::npos);
}

}  // namespace
}  // namespace spikegrad::testing
