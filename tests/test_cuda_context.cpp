// The CUDA context's host-side contract: why CUDA is unusable and what a CUDA test does then (skip, or fail
// under SPIKEGRAD_REQUIRE_CUDA), the deferred device checks (ops::check_range, cross_entropy's labels),
// and to_cpu's one-transfer read-back.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include "engine/cuda_context.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// Sets (or unsets, for nullptr) an environment variable for a scope and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    set(value);
  }
  ~ScopedEnv() { set(saved_ ? saved_->c_str() : nullptr); }
  void set(const char* value) {
    if (value) setenv(name_, value, 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

TEST(CudaContext, UnavailableReasonIsEmptyExactlyWhenCudaIsUsable) {
  EXPECT_EQ(cuda_unavailable_reason().empty(), cuda_available());
  if (!cuda_compiled()) {
    EXPECT_NE(cuda_unavailable_reason().find("built without CUDA"), std::string::npos);
  }
  if (!cuda_available()) {
    expect_error([] { require_cuda("thing"); }, {"thing: needs CUDA, but ", cuda_unavailable_reason()});
  }
}

TEST(CudaContext, EnvFlagIsOnForAnythingButEmptyAndZero) {
  ScopedEnv env("SPIKEGRAD_TEST_FLAG", nullptr);
  EXPECT_FALSE(env_flag("SPIKEGRAD_TEST_FLAG"));
  for (const char* off : {"", "0"}) {
    env.set(off);
    EXPECT_FALSE(env_flag("SPIKEGRAD_TEST_FLAG")) << "'" << off << "'";
  }
  for (const char* on : {"1", "yes", "true"}) {
    env.set(on);
    EXPECT_TRUE(env_flag("SPIKEGRAD_TEST_FLAG")) << on;
  }
}

TEST(CudaGate, SkipsNamingTheReasonOrFailsWhenCudaIsRequired) {
  const std::string reason = "cudaGetDeviceCount failed with cudaErrorInsufficientDriver: driver too old";
  EXPECT_EQ(cuda_gate("", false).action, CudaGate::run);
  EXPECT_EQ(cuda_gate("", true).action, CudaGate::run);
  const CudaGate skip = cuda_gate(reason, false), fail = cuda_gate(reason, true);
  EXPECT_EQ(skip.action, CudaGate::skip);
  EXPECT_NE(skip.message.find(reason), std::string::npos) << skip.message;
  EXPECT_EQ(fail.action, CudaGate::fail);
  EXPECT_NE(fail.message.find(reason), std::string::npos) << fail.message;
  EXPECT_NE(fail.message.find("SPIKEGRAD_REQUIRE_CUDA"), std::string::npos) << fail.message;
}

void gated_test_body() { SG_SKIP_WITHOUT_CUDA(); }

// The process's own gate follows the variable as it is set now; without CUDA, SG_SKIP_WITHOUT_CUDA under
// SPIKEGRAD_REQUIRE_CUDA=1 is a real (fatal) test failure that names the CUDA error.
TEST(CudaGate, RequireCudaTurnsTheSkipIntoAFailure) {
  ScopedEnv env("SPIKEGRAD_REQUIRE_CUDA", "1");
  EXPECT_EQ(cuda_gate().action, cuda_ok() ? CudaGate::run : CudaGate::fail);
  if (!cuda_ok()) {
    EXPECT_NE(cuda_gate().message.find(cuda_unavailable_reason()), std::string::npos) << cuda_gate().message;
    EXPECT_FATAL_FAILURE(gated_test_body(), "SPIKEGRAD_REQUIRE_CUDA is set, but CUDA is not usable");
  }
  for (const char* off : {"0", ""}) {
    env.set(off);
    EXPECT_EQ(cuda_gate().action, cuda_ok() ? CudaGate::run : CudaGate::skip) << "'" << off << "'";
  }
}

// ---- ops::check_range ------------------------------------------------------------------------------------
std::string range_message(int64_t i, double v) {
  std::ostringstream o;
  o << "bad " << float(v) << " at " << i;
  return o.str();
}

TEST(CheckRange, CpuNamesTheFirstElementOutsideAndNan) {
  EXPECT_NO_THROW(ops::check_range(Tensor::from_vector<float>({0, 0.5f, 1}, {3}), 0, 1, range_message));
  expect_error([] { ops::check_range(Tensor::from_vector<float>({0.5f, 2, -1}, {3}), 0, 1, range_message); },
               "bad 2 at 1");
  expect_error([] { ops::check_range(Tensor::from_vector<double>({0, std::nan("")}, {2}), 0, 1, range_message); },
               "bad nan at 1");
  const float inf = std::numeric_limits<float>::infinity();
  const double big = std::numeric_limits<float>::max();
  expect_error([&] { ops::check_range(Tensor::from_vector<float>({1, -inf}, {2}), -big, big, range_message); },
               "bad -inf at 1");
  expect_error([] { ops::check_range(Tensor::zeros({2}, DType::I32), 0, 1, range_message); }, "check_range: x must be float32");
}

// On CUDA the failure surfaces at the next copy to the host, the first recorded failure wins, and the next
// check starts clean.
TEST(CheckRange, CudaReportsAtTheNextSynchronisation) {
  SG_SKIP_WITHOUT_CUDA();
  const Tensor good = Tensor::from_vector<float>({0, 0.5f, 1}, {3}).to(Device::CUDA);
  const Tensor bad = Tensor::from_vector<float>({0.5f, 0.25f, 7}, {3}).to(Device::CUDA);
  ops::check_range(good, 0, 1, range_message);
  EXPECT_NO_THROW(good.to_vector<float>());
  EXPECT_NO_THROW(ops::check_range(bad, 0, 1, range_message));  // queued, not yet known
  ops::check_range(Tensor::full({2}, -3.0, DType::F32, Device::CUDA), 0, 1, range_message);
  expect_error([&] { good.to_vector<float>(); }, {"bad 7 at 2", "reported at the next synchronisation"});
  ops::check_range(good, 0, 1, range_message);
  EXPECT_NO_THROW(cuda_synchronize());
  ops::check_range(bad, 0, 1, range_message);
  expect_error([] { cuda_synchronize(); }, "bad 7 at 2");
}

// ---- to_cpu ----------------------------------------------------------------------------------------------
TEST(ToCpu, ReturnsCpuAndUndefinedTensorsAsTheyAre) {
  const Tensor a = Tensor::from_vector<float>({1, 2}, {2});
  const std::vector<Tensor> out = to_cpu({a, Tensor()});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].same(a));
  EXPECT_FALSE(out[1].defined());
}

TEST(ToCpu, GathersCudaTensorsOfMixedTypesAndShapes) {
  SG_SKIP_WITHOUT_CUDA();
  const Tensor f = Tensor::from_vector<float>({1.5f, -2, 3}, {3}), i = Tensor::from_vector<int32_t>({7}, {1});
  const Tensor d = Tensor::scalar(0.25, DType::F32), cpu = Tensor::from_vector<uint8_t>({9, 8}, {2});
  const std::vector<Tensor> out = to_cpu({f.to(Device::CUDA), cpu, i.to(Device::CUDA), d.to(Device::CUDA)});
  ASSERT_EQ(out.size(), 4u);
  for (const Tensor& t : out) EXPECT_EQ(t.device(), Device::CPU);
  EXPECT_EQ(out[0].to_vector<float>(), f.to_vector<float>());
  EXPECT_TRUE(out[1].same(cpu));
  EXPECT_EQ(out[2].to_vector<int32_t>(), i.to_vector<int32_t>());
  EXPECT_EQ(out[3].shape(), Shape{});
  EXPECT_EQ(out[3].item(), 0.25);
}

}  // namespace
}  // namespace spikegrad::testing
