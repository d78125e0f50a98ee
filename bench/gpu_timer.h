// GPU timing for the benchmarks: CUDA events around work on the default stream, reported to Google
// Benchmark as manual time (register such benchmarks with ->UseManualTime()).
#pragma once
#ifdef SPIKEGRAD_CUDA
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include "engine/cuda_check.h"

namespace spikegrad::bench {

class GpuTimer {
 public:
  GpuTimer() {
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~GpuTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  // Milliseconds the GPU spent on what `work` enqueued.
  template <class F>
  double ms(F&& work) {
    CUDA_CHECK(cudaEventRecord(start_));
    work();
    CUDA_CHECK(cudaEventRecord(stop_));
    CUDA_CHECK(cudaEventSynchronize(stop_));
    float elapsed = 0.f;
    CUDA_CHECK(cudaEventElapsedTime(&elapsed, start_, stop_));
    return double(elapsed);
  }

 private:
  cudaEvent_t start_, stop_;
};

// One untimed call first (library plans, module loading, the caching allocator), then every iteration
// timed with events.
template <class F>
void time_on_gpu(benchmark::State& state, F&& work) {
  work();
  CUDA_CHECK(cudaDeviceSynchronize());
  GpuTimer timer;
  for (auto _ : state) state.SetIterationTime(timer.ms(work) * 1e-3);
}

}  // namespace spikegrad::bench
#endif
