// ANN-mode activations (relu, qcfs): golden values, the straight-through gradient, errors. The op table
// checks relu by finite differences and both forwards on CUDA against the CPU.
#include <gtest/gtest.h>

#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// Inputs kept away from 0 (|x| > fd step), where ReLU has no derivative.
SG_OP_CASE({.name = "relu/both_signs",
            .make_inputs =
                [](DType d) {
                  return std::vector<Tensor>{Tensor::from_vector<double>({-2.0, -0.3, 0.01, 0.4, 3.0, -1e-3}, {6}).to(d)};
                },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::relu(t, x[0]); }});
SG_OP_CASE({.name = "relu/big",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({300, 7}, d, 11)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::relu(t, x[0]); }});
// QCFS is piecewise constant: finite differences see 0 where the straight-through gradient is 1, so only the
// forward is in the table (CUDA vs CPU); the gradient is checked below against clamp's.
SG_OP_CASE({.name = "qcfs/forward",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({40, 9}, d, 12, -0.5, 2.5)}; },
            .grad_inputs = {},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::qcfs(t, x[0], 1.5, 8); }});

TEST(AnnActivation, GoldenValues) {
  Tape tape;
  const Tensor a = Tensor::from_vector<float>({-1.f, 0.f, 0.06f, 0.07f, 0.5f, 0.99f, 1.f, 4.f}, {8});
  EXPECT_EQ(ops::relu(tape, a).to_vector<float>(), (std::vector<float>{0, 0, 0.06f, 0.07f, 0.5f, 0.99f, 1, 4}));
  // L = 8 levels of threshold 1: round(8·clamp(a,0,1))/8; 0.06·8 = 0.48 rounds down, 0.07·8 = 0.56 up.
  EXPECT_EQ(ops::qcfs(tape, a, 1.0, 8).to_vector<float>(), (std::vector<float>{0, 0, 0, 0.125f, 0.5f, 1, 1, 1}));
  // Threshold 2, L = 4: steps of 0.5 over [0,2].
  const Tensor b = Tensor::from_vector<float>({0.2f, 0.3f, 1.1f, 1.9f, 7.f}, {5});
  EXPECT_EQ(ops::qcfs(tape, b, 2.0, 4).to_vector<float>(), (std::vector<float>{0, 0.5f, 1, 2, 2}));
}

TEST(AnnActivation, ReluGradientIsZeroAtZero) {  // as PyTorch's ReLU
  Tape tape;
  Tensor a = Tensor::from_vector<float>({-1.f, 0.f, 2.f}, {3});
  a.set_requires_grad(true);
  const auto g = tape.vjp(ops::relu(tape, a), Tensor::full({3}, 1.0), {a});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{0, 0, 1}));
}

// The straight-through QCFS gradient is clamp(x, 0, threshold)'s (inclusive bounds), which the op table
// checks by finite differences; on every device.
void expect_qcfs_gradient_is_clamps(Device device, DType dtype) {
  Tensor x = uniform({37, 5}, dtype, 13, -1.0, 3.0).to(device);
  // Points exactly on both bounds, where the inclusive rule matters.
  Tensor edges = Tensor::from_vector<double>({0.0, 1.5, -0.0}, {3}).to(dtype).to(device);
  for (const Tensor& in : {x, edges}) {
    Tensor a = in.clone();
    a.set_requires_grad(true);
    const Tensor r = randn(a.shape(), dtype, 14).to(device);
    Tape t1, t2;
    const Tensor gq = t1.vjp(ops::qcfs(t1, a, 1.5, 8), r, {a})[0];
    const Tensor gc = t2.vjp(ops::clamp(t2, a, 0.0, 1.5), r, {a})[0];
    EXPECT_EQ(gq.device(), device);
    expect_close(gq, gc, 0, 0, "qcfs gradient on " + std::string(device_name(device)));
  }
}

TEST(AnnActivation, QcfsGradientIsTheClampsCpu) {
  expect_qcfs_gradient_is_clamps(Device::CPU, DType::F64);
  expect_qcfs_gradient_is_clamps(Device::CPU, DType::F32);
}

TEST(AnnActivation, QcfsGradientIsTheClampsCuda) {
  SG_SKIP_WITHOUT_CUDA();
  expect_qcfs_gradient_is_clamps(Device::CUDA, DType::F32);
}

TEST(AnnActivation, BadSettingsNameTheOp) {
  Tape tape;
  expect_error([&] { ops::qcfs(tape, Tensor::zeros({2}), 0.0, 8); }, "qcfs: threshold must be finite and > 0");
  expect_error([&] { ops::qcfs(tape, Tensor::zeros({2}), 1.0, 0); }, "qcfs: levels must be >= 1");
  expect_error([&] { ops::relu(tape, Tensor::zeros({2}, DType::I32)); }, "relu");
}

}  // namespace
}  // namespace spikegrad::testing
