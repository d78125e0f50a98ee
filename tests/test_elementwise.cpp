// Elementwise family: golden values, op-table registration, error messages.
#include <gtest/gtest.h>

#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

SG_OP_CASE({.name = "add/odd",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({3, 7}, d, 1), randn({3, 7}, d, 2)}; },
            .grad_inputs = {0, 1},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::add(t, x[0], x[1]); }});
SG_OP_CASE({.name = "mul/odd",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({5, 3}, d, 3), randn({5, 3}, d, 4)}; },
            .grad_inputs = {0, 1},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::mul(t, x[0], x[1]); }});
SG_OP_CASE({.name = "mul/one_input_grad",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({1}, d, 5), randn({1}, d, 6)}; },
            .grad_inputs = {1},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::mul(t, x[0], x[1]); }});
SG_OP_CASE({.name = "scale/big",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({1000, 3}, d, 7)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::scale(t, x[0], -2.5); }});
SG_OP_CASE({.name = "add_scalar/odd",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({9}, d, 8)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::add_scalar(t, x[0], 0.75); }});
// Inputs kept away from the clamp corners (|x - bound| > fd step) so differences are well defined.
SG_OP_CASE({.name = "clamp/inside_and_outside",
            .make_inputs =
                [](DType d) {
                  return std::vector<Tensor>{Tensor::from_vector<double>({-2.0, -0.5, 0.1, 0.3, 0.99, 1.7, 5.0}, {7}).to(d)};
                },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::clamp(t, x[0], 0.0, 1.0); }});
SG_OP_CASE({.name = "sign/values",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({4, 5}, d, 9)}; },
            .grad_inputs = {},
            .forward = [](Tape&, const std::vector<Tensor>& x) { return ops::sign(x[0]); }});

TEST(Elementwise, GoldenValues) {
  Tape tape;
  Tensor a = Tensor::from_vector<float>({1, -2, 3}, {3});
  Tensor b = Tensor::from_vector<float>({4, 5, -6}, {3});
  EXPECT_EQ(ops::add(tape, a, b).to_vector<float>(), (std::vector<float>{5, 3, -3}));
  EXPECT_EQ(ops::mul(tape, a, b).to_vector<float>(), (std::vector<float>{4, -10, -18}));
  EXPECT_EQ(ops::scale(tape, a, 2).to_vector<float>(), (std::vector<float>{2, -4, 6}));
  EXPECT_EQ(ops::add_scalar(tape, a, 1).to_vector<float>(), (std::vector<float>{2, -1, 4}));
  EXPECT_EQ(ops::clamp(tape, a, -1, 2).to_vector<float>(), (std::vector<float>{1, -1, 2}));
  Tensor z = Tensor::from_vector<float>({-0.5f, 0.f, 7.f}, {3});
  EXPECT_EQ(ops::sign(z).to_vector<float>(), (std::vector<float>{-1, 0, 1}));
  EXPECT_EQ(tape.size(), 0u) << "nothing requires grad, so nothing is recorded";
}

TEST(Elementwise, ClampGradientAtBoundsPassesThrough) {
  Tape tape;
  Tensor a = Tensor::from_vector<float>({0.f, 1.f, 1.5f, -0.1f}, {4});
  a.set_requires_grad(true);
  Tensor y = ops::clamp(tape, a, 0.0, 1.0);
  auto g = tape.vjp(y, Tensor::full({4}, 1.0), {a});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{1, 1, 0, 0}));
}

TEST(Elementwise, ShapeMismatchNamesOpAndShapes) {
  Tape tape;
  try {
    ops::add(tape, Tensor::zeros({2, 3}), Tensor::zeros({3, 2}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add: a and b must have the same shape, got (2,3) and (3,2)"), std::string::npos)
        << e.what();
  }
}

TEST(Elementwise, DtypeMismatchIsAnError) {
  Tape tape;
  EXPECT_THROW(ops::mul(tape, Tensor::zeros({2}), Tensor::zeros({2}, DType::F64)), Error);
  EXPECT_THROW(ops::add(tape, Tensor::zeros({2}, DType::I32), Tensor::zeros({2}, DType::I32)), Error);
}

}  // namespace
}  // namespace spikegrad::testing
