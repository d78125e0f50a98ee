// The op table for the table-driven tests (ggml test-backend-ops style). Each op family registers
// cases from its own test file with SG_OP_CASE; tests/test_op_table.cpp then checks every case:
//   - CUDA vs CPU: same float32 inputs, forward output and input gradients agree (skipped without a GPU);
//   - gradients: analytic input gradients equal central finite differences, all in float64 on the CPU.
// The scalar checked is sum(y * R) with a fixed random R, so every output element contributes.
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/ops.h"

namespace spikegrad::testing {

struct OpCase {
  std::string name;  // "<op>/<variant>", unique
  // Builds the inputs on the CPU; floating inputs in `dtype` (float32 or float64). Must be deterministic.
  std::function<std::vector<Tensor>(DType dtype)> make_inputs;
  // Indices of inputs whose gradient is checked; they are marked requires_grad.
  std::vector<int> grad_inputs;
  // Runs the op. Must be a pure function of the inputs (seed any randomness inside).
  std::function<Tensor(Tape&, const std::vector<Tensor>&)> forward;
  double fd_step = 1e-6;      // central-difference step (float64)
  double grad_rtol = 1e-5;    // |analytic - numeric| <= grad_atol + grad_rtol * |numeric|
  double grad_atol = 1e-7;
  double cuda_rtol = 1e-5;    // CUDA vs CPU, float32
  double cuda_atol = 1e-5;
  int max_fd_elements = 48;   // finite differences on at most this many elements per input (spread evenly)
};

std::vector<OpCase>& op_cases();
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }  // gtest's name for a case

struct OpCaseRegistrar {
  explicit OpCaseRegistrar(OpCase c) { op_cases().push_back(std::move(c)); }
};

#define SG_OP_CASE_CAT2(a, b) a##b
#define SG_OP_CASE_CAT(a, b) SG_OP_CASE_CAT2(a, b)
// SG_OP_CASE({ .name = ..., ... }) at namespace scope in a test file.
#define SG_OP_CASE(...) \
  static ::spikegrad::testing::OpCaseRegistrar SG_OP_CASE_CAT(sg_op_case_, __LINE__)(::spikegrad::testing::OpCase __VA_ARGS__)

// Deterministic input makers (CPU tensors).
Tensor randn(const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0);
Tensor uniform(const Shape& shape, DType dtype, uint64_t seed, double lo, double hi);
Tensor labels(int64_t n, int64_t classes, uint64_t seed);  // int32 in [0, classes)

// Test helpers shared by test files.
bool cuda_ok();  // a CUDA device is usable

// Whether a CUDA test runs (SG_SKIP_WITHOUT_CUDA below). Without a usable device it is skipped with the
// reason (the CUDA error, or a build without CUDA) — or, under SPIKEGRAD_REQUIRE_CUDA=1, it fails: on a GPU
// machine (scripts/gpu/on_device.sh) a CUDA that does not start must not pass as "every CUDA test skipped".
struct CudaGate {
  enum Action { run, skip, fail };
  Action action = run;
  std::string message;  // for skip and fail: why
};
// unavailable_reason: empty when CUDA is usable (cuda_unavailable_reason()); required: SPIKEGRAD_REQUIRE_CUDA.
CudaGate cuda_gate(const std::string& unavailable_reason, bool required);
CudaGate cuda_gate();  // this process: cuda_unavailable_reason() and the variable as it is set now
void expect_close(const Tensor& actual, const Tensor& expected, double rtol, double atol, const std::string& what);
// The message of the spikegrad::Error that `f` throws, or "(no error)".
std::string error_of(const std::function<void()>& f);
// Expects `f` to throw a spikegrad::Error whose message contains every fragment.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments);
inline void expect_error(const std::function<void()>& f, const char* fragment) {
  expect_error(f, std::vector<std::string>{fragment});
}

// Sets the process-wide convolution settings (--conv, --tf32) for a scope and restores the previous ones.
class ScopedConvSettings {
 public:
  explicit ScopedConvSettings(const ops::ConvSettings& settings) { ops::set_conv_settings(settings); }
  ~ScopedConvSettings() { ops::set_conv_settings(saved_); }
  ScopedConvSettings(const ScopedConvSettings&) = delete;
  ScopedConvSettings& operator=(const ScopedConvSettings&) = delete;

 private:
  ops::ConvSettings saved_ = ops::conv_settings();
};

}  // namespace spikegrad::testing

// First statement of a CUDA test (or of its CUDA half): returns from the test as a skip or a failure
// unless CUDA is usable (CudaGate above).
#define SG_SKIP_WITHOUT_CUDA()                                                                   \
  switch (const ::spikegrad::testing::CudaGate sg_gate_ = ::spikegrad::testing::cuda_gate(); sg_gate_.action) { \
    case ::spikegrad::testing::CudaGate::run:                                                    \
      break;                                                                                     \
    case ::spikegrad::testing::CudaGate::fail:                                                   \
      FAIL() << sg_gate_.message;                                                                \
    case ::spikegrad::testing::CudaGate::skip:                                                   \
      GTEST_SKIP() << sg_gate_.message;                                                          \
  }                                                                                              \
  static_assert(true, "")
