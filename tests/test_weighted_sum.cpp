// weighted_sum: golden values, every subset of wanted gradients, bit-equal forward on both devices, the op
// table (CUDA vs CPU, finite differences in float64), error messages.
#include <gtest/gtest.h>

#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// count inputs of `shape` (seeds base+1..) and count weights (seed base), all differentiable. max_fd_elements:
// finite differences per input (each costs two forwards over the whole input).
OpCase weighted_sum_case(const std::string& variant, int count, const Shape& shape, uint64_t seed,
                         int max_fd_elements = 48) {
  OpCase c;
  c.max_fd_elements = max_fd_elements;
  c.name = "weighted_sum/" + variant;
  c.make_inputs = [count, shape, seed](DType d) {
    std::vector<Tensor> in;
    for (int i = 0; i < count; ++i) in.push_back(randn(shape, d, seed + 1 + uint64_t(i)));
    in.push_back(randn({count}, d, seed));
    return in;
  };
  for (int i = 0; i <= count; ++i) c.grad_inputs.push_back(i);
  c.forward = [count](Tape& t, const std::vector<Tensor>& in) {
    return ops::weighted_sum(t, std::vector<Tensor>(in.begin(), in.begin() + count), in[size_t(count)]);
  };
  return c;
}

[[maybe_unused]] const OpCaseRegistrar weighted_sum_cases[] = {
    OpCaseRegistrar(weighted_sum_case("one", 1, {7}, 100)),
    OpCaseRegistrar(weighted_sum_case("two_convex", 2, {2, 3, 5, 7}, 110)),
    OpCaseRegistrar(weighted_sum_case("three_odd", 3, {13}, 120)),
    // More inputs than one launch takes (kernels/weighted_sum.h: 8 per launch): two forward chunks.
    OpCaseRegistrar(weighted_sum_case("nine_inputs", 9, {3, 11}, 130)),
    // Many elements: 70 partial blocks of the weight reduction on CUDA, two CPU chunks.
    OpCaseRegistrar(weighted_sum_case("large", 2, {3, 5, 41, 29}, 140)),
    // Past the cap of 1024 partial blocks: each CUDA thread sums several elements (its grid-stride loop).
    OpCaseRegistrar(weighted_sum_case("capped_splits", 2, {300007}, 150, 4)),
};

TEST(WeightedSum, GoldenForwardAndGradients) {
  std::vector<Device> devices{Device::CPU};
  if (cuda_ok()) devices.push_back(Device::CUDA);
  for (Device device : devices) {
    Tape tape;
    Tensor a = Tensor::from_vector<float>({1, 2, 3}, {3}).to(device);
    Tensor b = Tensor::from_vector<float>({10, 20, 30}, {3}).to(device);
    Tensor w = Tensor::from_vector<float>({0.5f, -2.f}, {2}).to(device);
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    w.set_requires_grad(true);
    Tensor y = ops::weighted_sum(tape, {a, b}, w);
    EXPECT_EQ(y.to(Device::CPU).to_vector<float>(), (std::vector<float>{-19.5f, -39.f, -58.5f}));
    Tensor gy = Tensor::from_vector<float>({1, -1, 2}, {3}).to(device);
    std::vector<Tensor> g = tape.vjp(y, gy, {a, b, w});
    EXPECT_EQ(g[0].to(Device::CPU).to_vector<float>(), (std::vector<float>{0.5f, -0.5f, 1.f}));
    EXPECT_EQ(g[1].to(Device::CPU).to_vector<float>(), (std::vector<float>{-2.f, 2.f, -4.f}));
    // gw = (Σ gy·a, Σ gy·b) = (1 - 2 + 6, 10 - 20 + 60).
    EXPECT_EQ(g[2].to(Device::CPU).to_vector<float>(), (std::vector<float>{5.f, 50.f})) << device_name(device);
  }
}

// Only some inputs want a gradient: the others get none, and the ones that do are unchanged by the rest.
TEST(WeightedSum, GradientsOfAnySubset) {
  std::vector<Device> devices{Device::CPU};
  if (cuda_ok()) devices.push_back(Device::CUDA);
  for (Device device : devices) {
    Tensor x0 = randn({4, 5}, DType::F32, 1).to(device), x1 = randn({4, 5}, DType::F32, 2).to(device);
    Tensor w = Tensor::from_vector<float>({0.25f, 0.75f}, {2}).to(device);
    Tensor gy = randn({4, 5}, DType::F32, 3).to(device);
    x0.set_requires_grad(true);
    x1.set_requires_grad(true);
    w.set_requires_grad(true);
    Tape all_tape;
    std::vector<Tensor> all = all_tape.vjp(ops::weighted_sum(all_tape, {x0, x1}, w), gy, {x0, x1, w});
    Tape weights_tape;
    Tensor gw = weights_tape.vjp(ops::weighted_sum(weights_tape, {x0, x1}, w), gy, {w})[0];
    EXPECT_EQ(gw.to(Device::CPU).to_vector<float>(), all[2].to(Device::CPU).to_vector<float>()) << device_name(device);
    Tape x_tape;
    Tensor gx1 = x_tape.vjp(ops::weighted_sum(x_tape, {x0, x1}, w), gy, {x1})[0];
    EXPECT_EQ(gx1.to(Device::CPU).to_vector<float>(), all[1].to(Device::CPU).to_vector<float>()) << device_name(device);
    // Constant weights (nothing kept for their gradient): the inputs still get theirs.
    Tensor fixed = Tensor::from_vector<float>({0.25f, 0.75f}, {2}).to(device);
    Tape fixed_tape;
    Tensor gx0 = fixed_tape.vjp(ops::weighted_sum(fixed_tape, {x0, x1}, fixed), gy, {x0})[0];
    EXPECT_EQ(gx0.to(Device::CPU).to_vector<float>(), all[0].to(Device::CPU).to_vector<float>()) << device_name(device);
  }
}

// The forward rounds each product on its own on both devices, so a weighted sum feeding a neuron's threshold
// test gives the same spikes on CPU and CUDA.
TEST(WeightedSum, CudaForwardIsBitEqualToCpu) {
  SG_SKIP_WITHOUT_CUDA();
  std::vector<Tensor> xs;
  for (int i = 0; i < 10; ++i) xs.push_back(randn({3, 77}, DType::F32, 50 + uint64_t(i)));
  Tensor w = randn({10}, DType::F32, 49);
  Tape tape;
  std::vector<Tensor> xs_cuda;
  for (const Tensor& x : xs) xs_cuda.push_back(x.to(Device::CUDA));
  EXPECT_EQ(ops::weighted_sum(tape, xs_cuda, w.to(Device::CUDA)).to(Device::CPU).to_vector<float>(),
            ops::weighted_sum(tape, xs, w).to_vector<float>());
}

TEST(WeightedSum, ErrorsNameOpAndProblem) {
  Tape tape;
  const Tensor x = Tensor::zeros({2, 3});
  const Tensor w2 = Tensor::zeros({2});
  expect_error([&] { ops::weighted_sum(tape, {}, w2); }, "weighted_sum: xs must hold at least one tensor, got none");
  expect_error([&] { ops::weighted_sum(tape, {x, Tensor::zeros({3, 2})}, w2); },
               "weighted_sum: xs[1] must have the shape of xs[0] (2,3), got (3,2)");
  expect_error([&] { ops::weighted_sum(tape, {x, Tensor::zeros({2, 3}, DType::F64)}, w2); },
               "weighted_sum: xs[1] is float64 but xs[0] is float32");
  expect_error([&] { ops::weighted_sum(tape, {x, x}, Tensor::zeros({3})); },
               "weighted_sum: weights must be 1-D with 2 entries (one per x), got (3)");
  expect_error([&] { ops::weighted_sum(tape, {x, x}, Tensor::zeros({1, 2})); },
               "weighted_sum: weights must be 1-D with 2 entries (one per x), got (1,2)");
  expect_error([&] { ops::weighted_sum(tape, {x, x}, Tensor::zeros({2}, DType::F64)); },
               "weighted_sum: weights is float64 but xs[0] is float32");
  expect_error([&] { ops::weighted_sum(tape, {Tensor::zeros({2}, DType::I32)}, Tensor::zeros({1})); },
               "weighted_sum: xs[0] must be float32");
}

}  // namespace
}  // namespace spikegrad::testing
