// Fails the emulated test run when a test caused a CUDA violation (a kernel fault, an API misuse) yet
// passed, e.g. because the code under test swallowed the error: every violation must surface as a
// failing test. Tests that provoke violations on purpose take them with cudaemu::take_violations().
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cudaemu/testing.h"

namespace {

class ViolationListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestProgramStart(const ::testing::UnitTest&) override {
    const char* order = std::getenv("SPIKEGRAD_CUDAEMU_ORDER");
    std::printf("[cudaemu] CUDA is emulated: kernels run on the CPU as fibers, thread order %s. cuDNN and cuBLAS "
                "are stand-ins computed on the CPU: through them only spikegrad's glue is under test.\n",
                order && *order ? order : "launch");
  }
  void OnTestStart(const ::testing::TestInfo&) override { cudaemu::take_violations(); }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    const int n = cudaemu::take_violations();
    if (n == 0 || !info.result()->Passed()) return;
    const std::string name = std::string(info.test_suite_name()) + "." + info.name();
    std::printf("[cudaemu] %s passed although it caused %d CUDA violation(s) (messages above): counted as a failure\n",
                name.c_str(), n);
    offenders_.push_back(name);
  }
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    if (offenders_.empty()) return;
    std::printf("[cudaemu] %zu test(s) caused CUDA violations without failing; exiting with status 1\n",
                offenders_.size());
    std::fflush(stdout);
    std::_Exit(1);
  }

 private:
  std::vector<std::string> offenders_;
};

const bool registered = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new ViolationListener);
  return true;
}();

}  // namespace
