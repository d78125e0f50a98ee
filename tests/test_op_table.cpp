// Table-driven checks over every registered op case (see tests/support/op_cases.h).
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>

#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

std::string case_test_name(const ::testing::TestParamInfo<OpCase>& info) {
  std::string s = info.param.name;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

// Upstream gradient R for the scalar sum(y * R): fixed, shaped like the op's output.
Tensor upstream_for(const OpCase& c, DType dtype) {
  Tape probe;
  NoGradGuard ng;
  Tensor y = c.forward(probe, c.make_inputs(dtype));
  return randn(y.shape(), dtype, 777);
}

// Forward + vjp with upstream R on `device`; returns {y, grads of the grad_inputs}.
std::vector<Tensor> run_case(const OpCase& c, DType dtype, Device device, const Tensor& r) {
  std::vector<Tensor> inputs;
  for (const Tensor& t : c.make_inputs(dtype)) inputs.push_back(t.to(device));
  for (int i : c.grad_inputs) inputs[size_t(i)].set_requires_grad(true);
  Tape tape;
  Tensor y = c.forward(tape, inputs);
  std::vector<Tensor> out{y};
  std::vector<Tensor> wrt;
  for (int i : c.grad_inputs) wrt.push_back(inputs[size_t(i)]);
  if (!wrt.empty()) {
    std::vector<Tensor> g = tape.vjp(y, r.to(device), wrt);
    out.insert(out.end(), g.begin(), g.end());
  }
  return out;
}

class OpTable : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpTable, CudaMatchesCpu) {
  SG_SKIP_WITHOUT_CUDA();
  const OpCase& c = GetParam();
  Tensor r = upstream_for(c, DType::F32);
  std::vector<Tensor> cpu = run_case(c, DType::F32, Device::CPU, r);
  std::vector<Tensor> gpu = run_case(c, DType::F32, Device::CUDA, r);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t k = 0; k < cpu.size(); ++k) {
    EXPECT_EQ(gpu[k].device(), Device::CUDA) << c.name << ": result " << k << " left the device";
    expect_close(gpu[k], cpu[k], c.cuda_rtol, c.cuda_atol,
                 c.name + (k == 0 ? ": output" : ": grad of input " + std::to_string(c.grad_inputs[k - 1])));
  }
}

TEST_P(OpTable, GradientMatchesFiniteDifferences) {
  const OpCase& c = GetParam();
  if (c.grad_inputs.empty()) GTEST_SKIP() << c.name << " has no differentiable input";
  Tensor r = upstream_for(c, DType::F64);
  std::vector<Tensor> analytic = run_case(c, DType::F64, Device::CPU, r);

  std::vector<Tensor> base = c.make_inputs(DType::F64);
  auto objective = [&](const std::vector<Tensor>& in) {
    Tape tape;
    NoGradGuard ng;
    Tensor y = c.forward(tape, in);
    const double* py = y.data<double>();
    const double* pr = r.data<double>();
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += py[i] * pr[i];
    return s;
  };
  for (size_t k = 0; k < c.grad_inputs.size(); ++k) {
    const int idx = c.grad_inputs[k];
    Tensor x = base[size_t(idx)];
    ASSERT_EQ(x.dtype(), DType::F64) << c.name << ": input " << idx << " is not floating";
    const Tensor& g = analytic[k + 1];
    const int64_t n = x.numel();
    const int64_t count = std::min<int64_t>(n, c.max_fd_elements);
    int failures = 0;
    for (int64_t j = 0; j < count; ++j) {
      const int64_t e = count == n ? j : j * n / count;  // spread evenly over the tensor
      std::vector<Tensor> plus = base, minus = base;
      plus[size_t(idx)] = x.clone();
      minus[size_t(idx)] = x.clone();
      plus[size_t(idx)].data<double>()[e] += c.fd_step;
      minus[size_t(idx)].data<double>()[e] -= c.fd_step;
      const double numeric = (objective(plus) - objective(minus)) / (2 * c.fd_step);
      const double an = g.data<double>()[e];
      if (!(std::abs(an - numeric) <= c.grad_atol + c.grad_rtol * std::abs(numeric)) && failures++ < 5)
        ADD_FAILURE() << c.name << ": d/d input" << idx << "[" << e << "] analytic " << an << " vs numeric " << numeric;
    }
    EXPECT_EQ(failures, 0) << c.name << ": input " << idx << " has " << failures << " mismatching elements";
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTable, ::testing::ValuesIn(op_cases()), case_test_name);

}  // namespace
}  // namespace spikegrad::testing
