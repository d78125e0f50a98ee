// The extension API, proven: an adaptive-threshold LIF written against the full neuron contract
// (examples/neurons/adaptive_lif.h) runs through ops::spike_with (the same template as the built-in neurons)
// on the CPU and on CUDA (the emulated backend where there is no GPU). Its CUDA kernels come from its
// registration line in engine/registered_neurons.cu, as every registered neuron's do.
#include <gtest/gtest.h>

#include "engine/ops_neuron_ext.h"
#include "examples/neurons/adaptive_lif.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

using examples::AdaptiveLif;
using ops::SpikeOptions;

// A direct transcription of the neuron's equations, independent of the template, in the tensor's precision.
template <class T>
std::vector<T> adaptive_lif_by_hand(const AdaptiveLif& n, const std::vector<T>& x, int64_t steps, int64_t count) {
  std::vector<T> s(x.size());
  for (int64_t i = 0; i < count; ++i) {
    T v = 0, a = 0;
    for (int64_t t = 0; t < steps; ++t) {
      const T h = T(n.decay) * v + x[size_t(t * count + i)];
      const T theta = T(n.theta0) + T(n.beta) * a;
      const T spike = h > theta ? T(1) : T(0);
      v = (1 - spike) * h;
      a = T(n.rho) * a + spike;
      s[size_t(t * count + i)] = spike;
    }
  }
  return s;
}

// theta0 1, beta 0.5, rho 0.5, decay 0.5, x = 1.5 at every step:
//   t0: h 1.5 > theta 1      -> spike, v 0, a 1
//   t1: h 1.5 vs theta 1.5   -> no spike (strict, exactly equal), v 1.5, a 0.5
//   t2: h 0.75 + 1.5 = 2.25 > theta 1.25 -> spike, v 0, a 1.25
//   t3: h 1.5 vs theta 1.625 -> no spike.   A plain LIF would spike at every step.
TEST(CustomNeuron, AdaptiveThresholdGolden) {
  Tape tape;
  Tensor x = Tensor::full({4, 1}, 1.5, DType::F64);
  EXPECT_EQ(ops::spike_with(tape, x, AdaptiveLif{}, SpikeOptions{}).to_vector<double>(),
            (std::vector<double>{1, 0, 1, 0}));
  EXPECT_EQ(ops::spike(tape, x).to_vector<double>(), (std::vector<double>{1, 1, 1, 1}));
}

TEST(CustomNeuron, MatchesAHandWrittenLoop) {
  const int64_t steps = 6, count = 3 * 97;
  AdaptiveLif n;
  n.rho = 0.75;
  Tape tape;
  Tensor x64 = uniform({steps, 3, 97}, DType::F64, 41, -0.5, 2.5), x32 = x64.to(DType::F32);
  EXPECT_EQ(ops::spike_with(tape, x64, n, SpikeOptions{}).to_vector<double>(),
            adaptive_lif_by_hand(n, x64.to_vector<double>(), steps, count));
  EXPECT_EQ(ops::spike_with(tape, x32, n, SpikeOptions{}).to_vector<float>(),
            adaptive_lif_by_hand(n, x32.to_vector<float>(), steps, count));
}

// With beta = 0 the threshold never moves: spikes and gradients must equal the built-in LIF's.
TEST(CustomNeuron, WithoutAdaptationItIsTheBuiltInLif) {
  Tensor x = uniform({5, 4, 9}, DType::F64, 43, -0.5, 2.5);
  x.set_requires_grad(true);
  AdaptiveLif n;
  n.beta = 0;
  Tape tape;
  Tensor a = ops::spike_with(tape, x, n, SpikeOptions{}), b = ops::spike(tape, x);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
  Tensor r = randn(x.shape(), DType::F64, 44);
  expect_close(tape.vjp(a, r, {x})[0], tape.vjp(b, r, {x})[0], 1e-14, 1e-14, "adaptive(beta=0) vs lif gradient");
  EXPECT_EQ(tape.size(), 2u);
}

TEST(CustomNeuron, RgaNeedsAnExplicitTau) {
  Tape tape;
  SpikeOptions opt;
  opt.backward = ops::SpikeBackward::rga;
  try {
    ops::spike_with(tape, Tensor::zeros({2, 3}), AdaptiveLif{}, opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("spike_with: the RGA backward needs rga_tau"), std::string::npos) << e.what();
  }
}

// Finite differences in smooth mode (and CUDA vs CPU through the op table when a GPU is present).
SpikeOptions smooth(ops::Surrogate s, bool detach = false) {
  SpikeOptions o;
  o.surrogate = s;
  o.smooth = true;
  o.detach_reset = detach;
  return o;
}
SG_OP_CASE({.name = "adaptive_lif/smooth_triangle",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({5, 3, 7}, d, 45, -0.5, 2.5)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) {
              return ops::spike_with(t, x[0], AdaptiveLif{}, smooth(ops::Surrogate::triangle()));
            }});
SG_OP_CASE({.name = "adaptive_lif/smooth_sigmoid_T1",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({1, 11}, d, 46, -0.5, 2.5)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) {
              return ops::spike_with(t, x[0], AdaptiveLif{}, smooth(ops::Surrogate::sigmoid()));
            }});

// Normal mode on CUDA, through the instantiation its registration line makes.
TEST(CustomNeuron, CudaMatchesCpu) {
  SG_SKIP_WITHOUT_CUDA();
  for (bool detach : {false, true}) {
    Tensor x = uniform({8, 5, 77}, DType::F32, 47, -0.5, 2.5);
    Tensor r = randn(x.shape(), DType::F32, 48);
    SpikeOptions opt;
    opt.detach_reset = detach;
    auto run = [&](Device dev) {
      Tensor xd = x.to(dev);
      xd.set_requires_grad(true);
      Tape tape;
      Tensor y = ops::spike_with(tape, xd, AdaptiveLif{}, opt);
      return std::make_pair(y.to(Device::CPU), tape.vjp(y, r.to(dev), {xd})[0].to(Device::CPU));
    };
    auto [y_cpu, g_cpu] = run(Device::CPU);
    auto [y_gpu, g_gpu] = run(Device::CUDA);
    EXPECT_EQ(y_gpu.to_vector<float>(), y_cpu.to_vector<float>()) << "detach " << detach;
    expect_close(g_gpu, g_cpu, 1e-5, 1e-5, "adaptive lif grad x");
  }
}

}  // namespace
}  // namespace spikegrad::testing
