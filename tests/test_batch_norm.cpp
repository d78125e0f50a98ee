// batch_norm: hand-worked golden values (PyTorch's running-statistics rule), train vs eval, the
// op table (gradients in training and eval mode), CUDA statistics, error messages.
#include <gtest/gtest.h>

#include <cmath>

#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// Inputs: x, weight (C), bias (C), running_mean (C), running_var (C). The running buffers are created
// here, so every call of make_inputs starts from the same statistics (eval cases depend on them).
std::vector<Tensor> bn_inputs(const Shape& x_shape, DType d, uint64_t seed) {
  const int64_t C = x_shape[1];
  return {randn(x_shape, d, seed, 1.5), uniform({C}, d, seed + 1, 0.5, 1.5), randn({C}, d, seed + 2),
          randn({C}, d, seed + 3, 0.5), uniform({C}, d, seed + 4, 0.5, 2.0)};
}

Tensor bn_forward(Tape& t, const std::vector<Tensor>& x, bool training) {
  ops::BatchNormOptions opt;
  opt.training = training;
  return ops::batch_norm(t, x[0], x[1], x[2], x[3], x[4], opt);
}
Tensor bn_train(Tape& t, const std::vector<Tensor>& x) { return bn_forward(t, x, true); }
Tensor bn_eval(Tape& t, const std::vector<Tensor>& x) { return bn_forward(t, x, false); }

// Training mode: each forward call updates the running buffers, which must not change the output.
SG_OP_CASE({.name = "batch_norm/train_2d",
            .make_inputs = [](DType d) { return bn_inputs({5, 3}, d, 10); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_train});
SG_OP_CASE({.name = "batch_norm/train_4d_odd",
            .make_inputs = [](DType d) { return bn_inputs({3, 2, 3, 5}, d, 20); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_train});
SG_OP_CASE({.name = "batch_norm/train_one_channel",
            .make_inputs = [](DType d) { return bn_inputs({2, 1, 3, 3}, d, 30); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_train});
// More elements per channel (2668) than threads in a CUDA reduction block (512).
SG_OP_CASE({.name = "batch_norm/train_large",
            .make_inputs = [](DType d) { return bn_inputs({4, 3, 23, 29}, d, 40); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_train});
// S = 256, a multiple of 4 with aligned channel runs: the CUDA reductions' float4 path, split over blocks.
SG_OP_CASE({.name = "batch_norm/train_float4_split",
            .make_inputs = [](DType d) { return bn_inputs({40, 3, 16, 16}, d, 45); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_train,
            // The checked sum has 30,720 terms of size ~1: its float64 rounding (~1e-11) over a 2e-6 central
            // difference would be ~5e-6 of noise; a 1e-4 step keeps both rounding and the O(h²) term < 1e-7.
            .fd_step = 1e-4,
            .max_fd_elements = 24});
// Only the parameter gradients wanted: the dx path is skipped.
SG_OP_CASE({.name = "batch_norm/train_params_only",
            .make_inputs = [](DType d) { return bn_inputs({7, 2}, d, 50); },
            .grad_inputs = {1, 2},
            .forward = bn_train});
SG_OP_CASE({.name = "batch_norm/eval_2d",
            .make_inputs = [](DType d) { return bn_inputs({6, 4}, d, 60); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_eval});
SG_OP_CASE({.name = "batch_norm/eval_4d",
            .make_inputs = [](DType d) { return bn_inputs({2, 3, 4, 5}, d, 70); },
            .grad_inputs = {0, 1, 2},
            .forward = bn_eval});
// Only dx wanted in eval mode: no channel reductions run at all.
SG_OP_CASE({.name = "batch_norm/eval_input_only",
            .make_inputs = [](DType d) { return bn_inputs({3, 2, 5, 3}, d, 80); },
            .grad_inputs = {0},
            .forward = bn_eval});

// x (4,2): channel 0 = {1,2,3,4} (mean 2.5, biased var 1.25, unbiased 5/3),
//          channel 1 = {2,2,2,6} (mean 3,   biased var 3,    unbiased 4).
struct Golden {
  std::vector<double> x{1, 2, 2, 2, 3, 2, 4, 6};
  std::vector<double> weight{2.0, 0.5}, bias{0.5, -1.0};
  std::vector<double> mean{2.5, 3.0}, biased_var{1.25, 3.0}, unbiased_var{5.0 / 3.0, 4.0};
  std::vector<double> running_mean0{1.0, -1.0}, running_var0{2.0, 0.5};
};

template <class T>
void check_golden_training_step(double tol) {
  const Golden g;
  const DType d = dtype_of<T>::value;
  Tensor x = Tensor::from_vector(g.x, {4, 2}).to(d);
  Tensor w = Tensor::from_vector(g.weight, {2}).to(d), b = Tensor::from_vector(g.bias, {2}).to(d);
  Tensor rm = Tensor::from_vector(g.running_mean0, {2}).to(d), rv = Tensor::from_vector(g.running_var0, {2}).to(d);
  Tape tape;
  ops::BatchNormOptions opt;  // training, momentum 0.1, eps 1e-5
  Tensor y = ops::batch_norm(tape, x, w, b, rm, rv, opt);
  std::vector<double> expected_y(8);
  for (int n = 0; n < 4; ++n)
    for (int c = 0; c < 2; ++c)
      expected_y[n * 2 + c] = (g.x[n * 2 + c] - g.mean[c]) / std::sqrt(g.biased_var[c] + 1e-5) * g.weight[c] + g.bias[c];
  expect_close(y, Tensor::from_vector(expected_y, {4, 2}), tol, tol, "batch_norm golden y");
  // PyTorch: running = 0.9 * running + 0.1 * batch statistic, with the unbiased variance.
  const std::vector<double> expected_rm{0.9 * 1.0 + 0.1 * 2.5, 0.9 * -1.0 + 0.1 * 3.0};
  const std::vector<double> expected_rv{0.9 * 2.0 + 0.1 * (5.0 / 3.0), 0.9 * 0.5 + 0.1 * 4.0};
  expect_close(rm, Tensor::from_vector(expected_rm, {2}), tol, tol, "batch_norm golden running_mean");
  expect_close(rv, Tensor::from_vector(expected_rv, {2}), tol, tol, "batch_norm golden running_var");
}

TEST(BatchNorm, GoldenTrainingStepFloat64) { check_golden_training_step<double>(1e-12); }
TEST(BatchNorm, GoldenTrainingStepFloat32) { check_golden_training_step<float>(1e-6); }

TEST(BatchNorm, EvalUsesRunningStatisticsAndLeavesThemAlone) {
  const Golden g;
  Tensor x = Tensor::from_vector(g.x, {2, 2, 2, 1});  // 4-D: N=2, C=2, S=2
  Tensor w = Tensor::from_vector(g.weight, {2}), b = Tensor::from_vector(g.bias, {2});
  Tensor rm = Tensor::from_vector(g.running_mean0, {2}), rv = Tensor::from_vector(g.running_var0, {2});
  Tape tape;
  ops::BatchNormOptions opt;
  opt.training = false;
  Tensor y = ops::batch_norm(tape, x, w, b, rm, rv, opt);
  std::vector<double> expected(8);
  for (int i = 0; i < 8; ++i) {
    const int c = (i / 2) % 2;
    expected[i] = (g.x[i] - g.running_mean0[c]) / std::sqrt(g.running_var0[c] + 1e-5) * g.weight[c] + g.bias[c];
  }
  expect_close(y, Tensor::from_vector(expected, {2, 2, 2, 1}), 1e-12, 1e-12, "batch_norm eval y");
  EXPECT_EQ(rm.to_vector<double>(), g.running_mean0);
  EXPECT_EQ(rv.to_vector<double>(), g.running_var0);
}

TEST(BatchNorm, TrainingOutputIgnoresRunningStatistics) {
  std::vector<Tensor> a = bn_inputs({5, 3, 2, 2}, DType::F64, 90);
  std::vector<Tensor> b = bn_inputs({5, 3, 2, 2}, DType::F64, 90);
  b[3] = Tensor::full({3}, 100.0, DType::F64);  // wildly different running buffers
  b[4] = Tensor::full({3}, 0.01, DType::F64);
  Tape tape;
  expect_close(bn_train(tape, a), bn_train(tape, b), 0, 0, "training output with other running stats");
  // Eval mode does use them: the outputs differ.
  EXPECT_NE(bn_train(tape, a).to_vector<double>(), bn_eval(tape, a).to_vector<double>());
}

TEST(BatchNorm, CudaStatisticsMatchCpuWithLargeMean) {
  SG_SKIP_WITHOUT_CUDA();
  // mean 1000, std ~0.8: E[x²] − E[x]² in float32 would lose most digits of the variance.
  const int64_t N = 3000, C = 2;
  std::vector<float> v(size_t(N * C));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 1000.f + float(int(i % 5) - 2) * 0.5f;
  Tensor x = Tensor::from_vector(v, {N, C});
  std::vector<Tensor> cpu{x, Tensor::full({C}, 1.0), Tensor::zeros({C}), Tensor::zeros({C}), Tensor::full({C}, 1.0)};
  std::vector<Tensor> gpu;
  for (const Tensor& t : cpu) gpu.push_back(t.clone().to(Device::CUDA));
  Tape tape;
  Tensor y_cpu = bn_train(tape, cpu), y_gpu = bn_train(tape, gpu);
  // x − mean is formed in float32 at magnitude 1000 (ulp 6e-5), so y carries ~1e-4 absolute rounding.
  expect_close(y_gpu, y_cpu, 1e-4, 1e-4, "cuda y");
  expect_close(gpu[3], cpu[3], 1e-6, 1e-6, "cuda running_mean");
  expect_close(gpu[4], cpu[4], 1e-5, 1e-6, "cuda running_var");
}


TEST(BatchNorm, ErrorsNameOpAndProblem) {
  Tape tape;
  auto in = bn_inputs({4, 3}, DType::F32, 1);
  expect_error([&] { ops::batch_norm(tape, Tensor::zeros({2, 3, 4}), in[1], in[2], in[3], in[4]); },
               "batch_norm: x must be (N,C) or (N,C,H,W), got (2,3,4)");
  expect_error([&] { ops::batch_norm(tape, in[0], Tensor(), in[2], in[3], in[4]); }, "batch_norm: weight is undefined");
  expect_error([&] { ops::batch_norm(tape, in[0], in[1], Tensor(), in[3], in[4]); }, "batch_norm: bias is undefined");
  expect_error([&] { ops::batch_norm(tape, in[0], Tensor::zeros({4}), in[2], in[3], in[4]); },
               "batch_norm: weight must have shape (3), got (4)");
  expect_error([&] { ops::batch_norm(tape, in[0], in[1], in[2], in[3], Tensor::zeros({3}, DType::F64)); },
               "batch_norm: running_var is float64 but x is float32");
  Tensor tracked = Tensor::zeros({3});
  tracked.set_requires_grad(true);
  expect_error([&] { ops::batch_norm(tape, in[0], in[1], in[2], tracked, in[4]); }, "must not require grad");
  expect_error([&] { ops::batch_norm(tape, Tensor::zeros({1, 3}), in[1], in[2], in[3], in[4]); },
               "batch_norm: training needs more than 1 value per channel, got x of shape (1,3)");
  ops::BatchNormOptions eval;
  eval.training = false;
  EXPECT_NO_THROW(ops::batch_norm(tape, Tensor::zeros({1, 3}), in[1], in[2], in[3], in[4], eval));
}

}  // namespace
}  // namespace spikegrad::testing
