// dropout: the mask against the Philox stream, kept fraction, gradient through the recomputed mask,
// identity cases, CPU/CUDA mask equality, error messages.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/philox.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// Each call draws from a fresh generator with a fixed seed, so the finite-difference evaluations all
// see the same mask.
SG_OP_CASE({.name = "dropout/p0.4",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({7, 13}, d, 11)}; },
            .grad_inputs = {0},
            .forward =
                [](Tape& t, const std::vector<Tensor>& x) {
                  Generator gen(1234);
                  return ops::dropout(t, x[0], 0.4, true, gen);
                }});
SG_OP_CASE({.name = "dropout/large_after_offset",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({3, 5001}, d, 12)}; },
            .grad_inputs = {0},
            .forward =
                [](Tape& t, const std::vector<Tensor>& x) {
                  Generator gen(99);
                  gen.reserve(1000);  // a draw that does not start at counter 0
                  return ops::dropout(t, x[0], 0.5, true, gen);
                }});

TEST(Dropout, MaskFollowsPhiloxStreamAndAdvancesGenerator) {
  const int64_t n = 1000;
  const double p = 0.25;
  Tensor x = randn({n}, DType::F64, 3);
  Generator gen(42);
  gen.reserve(17);
  Tape tape;
  Tensor y = ops::dropout(tape, x, p, true, gen);
  EXPECT_EQ(gen.offset(), uint64_t(17 + n)) << "forward reserves one counter per element";
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = double(philox_uniform(17 + uint64_t(i), 42)) >= p;
    ASSERT_EQ(yv[size_t(i)], keep ? xv[size_t(i)] * (1.0 / (1.0 - p)) : 0.0) << "element " << i;
  }
  // The next draw continues the stream: a different mask.
  Tensor y2 = ops::dropout(tape, x, p, true, gen);
  EXPECT_NE(y2.to_vector<double>(), yv);
}

TEST(Dropout, KeptFractionIsOneMinusP) {
  const int64_t n = 200000;
  const double p = 0.3;
  Generator gen(5);
  Tape tape;
  Tensor y = ops::dropout(tape, Tensor::full({n}, 1.0), p, true, gen);
  int64_t kept = 0;
  for (float v : y.to_vector<float>()) {
    if (v == 0.f) continue;
    ++kept;
    ASSERT_FLOAT_EQ(v, float(1.0 / (1.0 - p))) << "kept elements are scaled by 1/(1-p)";
  }
  // kept ~ Binomial(n, 1-p): sd = sqrt(n p (1-p)) ≈ 205; a wrong p or a biased mask moves it by far more
  // than the 6 sd allowed here.
  const double sd = std::sqrt(double(n) * p * (1 - p));
  EXPECT_NEAR(double(kept), double(n) * (1 - p), 6 * sd);
}

TEST(Dropout, BackwardRecomputesTheSameMask) {
  Tensor x = Tensor::full({3, 333}, 1.0);
  x.set_requires_grad(true);
  Generator gen(8);
  Tape tape;
  Tensor y = ops::dropout(tape, x, 0.6, true, gen);
  ASSERT_EQ(tape.size(), 1u);
  Tensor gx = tape.vjp(y, Tensor::full(y.shape(), 1.0), {x})[0];
  // With x = 1 and dy = 1 both are mask / (1-p).
  EXPECT_EQ(gx.to_vector<float>(), y.to_vector<float>());
}

TEST(Dropout, IdentityInEvalOrWithZeroP) {
  Tensor x = randn({4, 5}, DType::F32, 2);
  x.set_requires_grad(true);
  Generator gen(1);
  Tape tape;
  EXPECT_TRUE(ops::dropout(tape, x, 0.5, false, gen).same(x));
  EXPECT_TRUE(ops::dropout(tape, x, 0.0, true, gen).same(x));
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_EQ(gen.offset(), 0u) << "no counters consumed";
}

TEST(Dropout, CudaMaskEqualsCpuMask) {
  SG_SKIP_WITHOUT_CUDA();
  const int64_t n = 100003;
  Tensor x_cpu = Tensor::full({n}, 1.0);
  Tensor x_gpu = x_cpu.to(Device::CUDA);
  x_cpu.set_requires_grad(true);
  x_gpu.set_requires_grad(true);
  Generator gen_cpu(77), gen_gpu(77);
  gen_cpu.reserve(5);
  gen_gpu.reserve(5);
  Tape tape;
  Tensor y_cpu = ops::dropout(tape, x_cpu, 0.35, true, gen_cpu);
  Tensor y_gpu = ops::dropout(tape, x_gpu, 0.35, true, gen_gpu);
  EXPECT_EQ(y_gpu.to(Device::CPU).to_vector<float>(), y_cpu.to_vector<float>());
  Tensor g_cpu = tape.vjp(y_cpu, Tensor::full({n}, 1.0), {x_cpu})[0];
  Tensor g_gpu = tape.vjp(y_gpu, Tensor::full({n}, 1.0, DType::F32, Device::CUDA), {x_gpu})[0];
  EXPECT_EQ(g_gpu.to(Device::CPU).to_vector<float>(), g_cpu.to_vector<float>());
}

TEST(Dropout, ErrorsNameOpAndProblem) {
  Tape tape;
  Generator gen(0);
  for (double bad : {1.0, -0.1, 1.5}) {
    try {
      ops::dropout(tape, Tensor::zeros({3}), bad, true, gen);
      ADD_FAILURE() << "p=" << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("dropout: p must be in [0,1), got"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ops::dropout(tape, Tensor::zeros({3}, DType::I32), 0.5, true, gen), Error);
}

}  // namespace
}  // namespace spikegrad::testing
