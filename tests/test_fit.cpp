// End to end on the engine alone: a small non-spiking network fits a synthetic problem on the CPU.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/optim.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

TEST(Fit, MlpLearnsTwoRingsOnCpu) {
  // Class = whether a point lies inside radius 1 of the origin: not linearly separable, so the hidden
  // layer (ReLU as clamp at 0) must do the work.
  const int64_t n = 256;
  Tensor pts = uniform({n, 2}, DType::F32, 41, -1.6, 1.6);
  std::vector<int32_t> y(static_cast<size_t>(n));
  const float* p = pts.data<float>();
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = p[2 * i] * p[2 * i] + p[2 * i + 1] * p[2 * i + 1] < 1.f ? 1 : 0;
  Tensor labels = Tensor::from_vector(y, {n});

  Tensor w1 = randn({32, 2}, DType::F32, 42, 0.7), b1 = Tensor::zeros({32});
  Tensor w2 = randn({2, 32}, DType::F32, 43, 0.2), b2 = Tensor::zeros({2});
  NamedTensors params{{"fc1.weight", w1}, {"fc1.bias", b1}, {"fc2.weight", w2}, {"fc2.bias", b2}};
  for (auto& t : params) t.tensor.set_requires_grad(true);
  AdamOptions opt;
  opt.lr = 0.03;
  Adam adam(params, opt);

  auto forward = [&](Tape& tape) {
    Tensor h = ops::clamp(tape, ops::linear(tape, pts, w1, b1), 0.0, 1e30);
    return ops::linear(tape, h, w2, b2);
  };
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Tape tape;
    Tensor loss = ops::cross_entropy(tape, forward(tape), labels);
    if (step == 0) first = loss.item();
    last = loss.item();
    tape.backward(loss);
    adam.step();
    adam.zero_grad();
  }
  Tape tape;
  NoGradGuard ng;
  std::vector<int32_t> pred = ops::argmax(forward(tape)).to_vector<int32_t>();
  int correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += pred[size_t(i)] == y[size_t(i)];
  EXPECT_LT(last, 0.25 * first) << "loss " << first << " -> " << last;
  EXPECT_GE(correct, int(0.95 * n)) << correct << "/" << n << " correct";
}

}  // namespace
}  // namespace spikegrad::testing
