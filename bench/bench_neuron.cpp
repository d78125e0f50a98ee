// Fused multi-step LIF (the reference neuron), forward and forward+backward, at VGG layer sizes.
//
// Shapes: B = 64, per step 64x32x32 (first VGG block, n = 4,194,304 neurons) or 512x4x4 (last, n = 524,288);
// T in {4, 8, 16}. Args: {T, layer} with layer 0 = 64x32x32, 1 = 512x4x4.
// Bytes = the minimum traffic the kernels must move, float32, per neuron per step:
//   forward (training, BPTT records kept)  12 B = read x + write s + write h
//   backward                               16 B = read gs + read h + read and write gx (+= contract)
//   forward + backward                     28 B
// GB/s = bytes / time. On CUDA each benchmark also times, in the same run, a cudaMemcpy device-to-device of
// bytes/2 (which reads bytes/2 and writes bytes/2, so it moves the same bytes) and reports
// pct_of_copy = ours / copy bandwidth. Target: fused forward+backward >= 85% of the copy.
// The CPU figures run the reference template (OpenMP over chunks of 256 neurons).
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <algorithm>
#include <vector>

#include "engine/cuda_context.h"
#include "kernels/neurons/multistep.h"
#ifdef SPIKEGRAD_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda_check.h"
#endif

namespace {

using namespace spikegrad;

constexpr int64_t kBatch = 64;
int64_t neurons_per_step(int64_t layer) { return layer == 0 ? kBatch * 64 * 32 * 32 : kBatch * 512 * 4 * 4; }
constexpr double kForwardBytes = 12, kBackwardBytes = 16;

void label(benchmark::State& state, int64_t steps, int64_t layer) {
  state.SetLabel("T=" + std::to_string(steps) + " B=64 " + (layer == 0 ? "64x32x32" : "512x4x4"));
}

// ---- CPU ---------------------------------------------------------------------------------------------------
void run_cpu(benchmark::State& state, bool backward) {
  const int64_t steps = state.range(0), layer = state.range(1), n = neurons_per_step(layer);
  const size_t total = size_t(steps * n);
  std::vector<float> x(total), s(total), h(total), gs(total, 1.0f), gx(total, 0.0f);
  for (size_t i = 0; i < total; ++i) x[i] = float(i % 17) * 0.15f - 0.4f;  // spikes and silences
  const neurons::Lif lif;
  const neurons::Firing fire;
  auto ours = [&] {
    neurons::multistep_forward_cpu<neurons::Lif, float>(lif, fire, x.data(), nullptr, s.data(), h.data(), nullptr,
                                                        steps, n);
    if (backward)
      neurons::multistep_backward_cpu<neurons::Lif, float>(lif, fire, false, gs.data(), h.data(), nullptr, gx.data(),
                                                           nullptr, steps, n);
  };
  ours();  // warm-up: the first touch of s and h would time page faults, not the kernel
  for (auto _ : state) {
    ours();
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  const double bytes = double(total) * (kForwardBytes + (backward ? kBackwardBytes : 0));
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  label(state, steps, layer);
}

void BM_LifForwardCpu(benchmark::State& state) { run_cpu(state, false); }
void BM_LifForwardBackwardCpu(benchmark::State& state) { run_cpu(state, true); }

// ---- CUDA --------------------------------------------------------------------------------------------------
void run_cuda(benchmark::State& state, bool backward) {
  if (bench::skip_without_cuda(state)) return;
#ifdef SPIKEGRAD_CUDA
  const int64_t steps = state.range(0), layer = state.range(1), n = neurons_per_step(layer);
  const size_t total = size_t(steps * n), buf = total * sizeof(float);
  float *x, *s, *h, *gs, *gx;
  for (float** p : {&x, &s, &h, &gs, &gx}) CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(p), buf));
  {
    std::vector<float> host(total);
    for (size_t i = 0; i < total; ++i) host[i] = float(i % 17) * 0.15f - 0.4f;  // same input as the CPU run
    CUDA_CHECK(cudaMemcpy(x, host.data(), buf, cudaMemcpyHostToDevice));
    std::fill(host.begin(), host.end(), 1.0f);
    CUDA_CHECK(cudaMemcpy(gs, host.data(), buf, cudaMemcpyHostToDevice));
  }
  CUDA_CHECK(cudaMemset(gx, 0, buf));
  const double bytes = double(total) * (kForwardBytes + (backward ? kBackwardBytes : 0));
  // The copy reads copy_bytes and writes copy_bytes: the same traffic as ours.
  const size_t copy_bytes = size_t(bytes / 2);
  void *copy_src, *copy_dst;
  CUDA_CHECK(cudaMalloc(&copy_src, copy_bytes));
  CUDA_CHECK(cudaMalloc(&copy_dst, copy_bytes));
  bench::GpuTimer timer;
  const neurons::Lif lif;
  const neurons::Firing fire;
  auto ours = [&] {
    neurons::multistep_forward_cuda<neurons::Lif>(lif, fire, x, nullptr, s, h, nullptr, steps, n);
    if (backward) neurons::multistep_backward_cuda<neurons::Lif>(lif, fire, false, gs, h, nullptr, gx, nullptr, nullptr, steps, n);
  };
  auto copy = [&] { CUDA_CHECK(cudaMemcpyAsync(copy_dst, copy_src, copy_bytes, cudaMemcpyDeviceToDevice)); };
  ours();  // warm-up: first launch, caches
  copy();
  double ours_ms = 0, copy_ms = 0;
  for (auto _ : state) {
    const double ms = timer.ms(ours);
    ours_ms += ms;
    copy_ms += timer.ms(copy);  // interleaved, so both see the same clocks and temperature
    state.SetIterationTime(ms * 1e-3);
  }
  const double iters = double(state.iterations());
  const double ours_gbps = bytes / (ours_ms / iters * 1e-3) * 1e-9, copy_gbps = bytes / (copy_ms / iters * 1e-3) * 1e-9;
  state.counters["GB/s"] = ours_gbps;
  state.counters["copy_GB/s"] = copy_gbps;
  state.counters["pct_of_copy"] = 100.0 * ours_gbps / copy_gbps;
  label(state, steps, layer);
  for (void* p : {(void*)x, (void*)s, (void*)h, (void*)gs, (void*)gx, copy_src, copy_dst}) CUDA_CHECK(cudaFree(p));
#endif
}

void BM_LifForwardCuda(benchmark::State& state) { run_cuda(state, false); }
void BM_LifForwardBackwardCuda(benchmark::State& state) { run_cuda(state, true); }

}  // namespace

BENCHMARK(BM_LifForwardCpu)->ArgsProduct({{4, 8, 16}, {0, 1}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LifForwardBackwardCpu)->ArgsProduct({{4, 8, 16}, {0, 1}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LifForwardCuda)->ArgsProduct({{4, 8, 16}, {0, 1}})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LifForwardBackwardCuda)->ArgsProduct({{4, 8, 16}, {0, 1}})->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
