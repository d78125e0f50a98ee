// The skip of every CUDA benchmark where CUDA is unusable, naming why (the CUDA error, or a build without
// CUDA), as the tests' skips do.
#pragma once
#include <benchmark/benchmark.h>

#include <string>

#include "engine/cuda_context.h"

namespace spikegrad::bench {

// Marks the benchmark skipped and returns true when CUDA is unusable; callers return right after.
inline bool skip_without_cuda(benchmark::State& state) {
  if (cuda_available()) return false;
  static const std::string message = "no usable CUDA: " + cuda_unavailable_reason();
  state.SkipWithError(message.c_str());
  return true;
}

}  // namespace spikegrad::bench
