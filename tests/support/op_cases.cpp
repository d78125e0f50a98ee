#include "support/op_cases.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/cuda_context.h"

namespace spikegrad::testing {

std::vector<OpCase>& op_cases() {
  static std::vector<OpCase> cases;
  return cases;
}

Tensor randn(const Shape& shape, DType dtype, uint64_t seed, double scale) {
  Generator gen(seed);
  Tensor t = rand_normal(shape, gen, Device::CPU, DType::F64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] *= scale;
  return t.to(dtype);
}

Tensor uniform(const Shape& shape, DType dtype, uint64_t seed, double lo, double hi) {
  Generator gen(seed);
  Tensor t = rand_uniform(shape, gen, Device::CPU, DType::F64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + (hi - lo) * p[i];
  return t.to(dtype);
}

Tensor labels(int64_t n, int64_t classes, uint64_t seed) {
  Generator gen(seed);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = int32_t(gen.next_u32() % uint32_t(classes));
  return Tensor::from_vector(v, {n});
}

bool cuda_ok() { return cuda_available(); }

CudaGate cuda_gate(const std::string& unavailable_reason, bool required) {
  if (unavailable_reason.empty()) return {};
  if (required) return {CudaGate::fail, "SPIKEGRAD_REQUIRE_CUDA is set, but CUDA is not usable: " + unavailable_reason};
  return {CudaGate::skip, "no usable CUDA: " + unavailable_reason + " (SPIKEGRAD_REQUIRE_CUDA=1 makes this a failure)"};
}

CudaGate cuda_gate() { return cuda_gate(cuda_unavailable_reason(), env_flag("SPIKEGRAD_REQUIRE_CUDA")); }

void expect_close(const Tensor& actual, const Tensor& expected, double rtol, double atol, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what << ": actual is undefined";
  ASSERT_TRUE(expected.defined()) << what << ": expected is undefined";
  ASSERT_EQ(actual.shape(), expected.shape()) << what << ": shapes differ";
  Tensor a = actual.to(Device::CPU).to(DType::F64), e = expected.to(Device::CPU).to(DType::F64);
  const double* pa = a.data<double>();
  const double* pe = e.data<double>();
  int reported = 0;
  int64_t bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double err = std::abs(pa[i] - pe[i]);
    if (!(err <= atol + rtol * std::abs(pe[i]))) {  // also catches NaN
      if (reported++ < 5)
        ADD_FAILURE() << what << ": element " << i << " is " << pa[i] << ", expected " << pe[i] << " (|diff| " << err
                      << ")";
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << a.numel() << " elements out of tolerance (rtol " << rtol
                    << ", atol " << atol << ")";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one containing '" << fragments.front() << "'";
  } catch (const Error& e) {
    for (const std::string& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

}  // namespace spikegrad::testing
