// Pooling ops (kernels/pool2d.h) through the public ops, float32, on residual-SNN shapes at T·B = 4·32 = 128:
//   max_pool2d 3x3/s2/p1, the ResNet stem:   x (128, 64, 32, 32)  -> (128, 64, 16, 16)
//   adaptive_avg_pool2d to 1x1, the head:    x (128, 512, 4, 4)   -> (128, 512, 1, 1)
//   adaptive_avg_pool2d to 5x5 (bins overlap): x (128, 64, 32, 32) -> (128, 64, 5, 5)
// Minimum traffic, with n_in = N·C·H·W and n_out = N·C·P·Q:
//   forward   4·(n_in + n_out) bytes (+ 4·n_out for max pool's int32 argmax)
//   backward  4·(n_out + 2·n_in): dy read, dx read-modify-write (+ 4·n_out argmax for max pool)
// "fwd+bwd" runs the op with x requiring grad and the tape's vjp, so it also counts the zero fill of dx
// (4·n_in more bytes) and the allocations; it is the cost a training step sees.
// Baseline: a device-to-device copy of the forward's bytes (half read, half written). GPU time from CUDA
// events (UseManualTime); the CPU runs are wall time (OpenMP).
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <cstdint>

#include "engine/cuda_context.h"
#include "engine/ops.h"
#include "engine/rng.h"
#ifdef SPIKEGRAD_CUDA
#include <cuda_runtime.h>

#include "engine/cuda_check.h"
#endif

namespace spikegrad {
namespace {

// range(0) picks the case.
struct PoolCase {
  const char* label;
  Shape x;
  bool max;  // max_pool2d 3x3/s2/p1, else adaptive_avg_pool2d to out x out
  int out;
};
const PoolCase kCases[] = {
    {"max_pool2d 3x3/s2/p1 (128,64,32,32)", {128, 64, 32, 32}, true, 0},
    {"adaptive_avg_pool2d 1x1 (128,512,4,4)", {128, 512, 4, 4}, false, 1},
    {"adaptive_avg_pool2d 5x5 (128,64,32,32)", {128, 64, 32, 32}, false, 5},
};

Tensor run_pool(Tape& tape, const PoolCase& c, const Tensor& x) {
  return c.max ? ops::max_pool2d(tape, x, 3, 2, 1) : ops::adaptive_avg_pool2d(tape, x, c.out, c.out);
}

int64_t forward_bytes(const PoolCase& c, const Tensor& y) {
  const int64_t n_in = shape_numel(c.x), n_out = y.numel();
  return 4 * (n_in + n_out) + (c.max ? 4 * n_out : 0);
}

// Forward alone (no recording), or forward + vjp with x requiring grad.
void run_step(const PoolCase& c, const Tensor& x, const Tensor& gy, bool backward) {
  Tape tape;
  if (!backward) {
    NoGradGuard no_grad;
    benchmark::DoNotOptimize(run_pool(tape, c, x));
    return;
  }
  Tensor y = run_pool(tape, c, x);
  benchmark::DoNotOptimize(tape.vjp(y, gy, {x}));
}

void set_counters(benchmark::State& state, const PoolCase& c, int64_t bytes) {
  state.SetBytesProcessed(state.iterations() * bytes);
  state.SetLabel(c.label);
}

// range(1): 0 forward, 1 forward + backward.
void bench_pool(benchmark::State& state, Device device) {
  const PoolCase& c = kCases[state.range(0)];
  const bool backward = state.range(1) != 0;
  Generator gen(5);
  Tensor x = rand_normal(c.x, gen, device);
  x.set_requires_grad(backward);
  Tape probe;
  Tensor y0;
  {
    NoGradGuard no_grad;
    y0 = run_pool(probe, c, x);
  }
  Tensor gy = rand_normal(y0.shape(), gen, device);
  const int64_t n_in = shape_numel(c.x), n_out = y0.numel();
  const int64_t bytes = forward_bytes(c, y0) + (backward ? 4 * (n_out + 3 * n_in) + (c.max ? 4 * n_out : 0) : 0);
#ifdef SPIKEGRAD_CUDA
  if (device == Device::CUDA) {
    bench::time_on_gpu(state, [&] { run_step(c, x, gy, backward); });
    set_counters(state, c, bytes);
    return;
  }
#endif
  for (auto _ : state) run_step(c, x, gy, backward);
  set_counters(state, c, bytes);
}

void BM_PoolCpu(benchmark::State& state) { bench_pool(state, Device::CPU); }
BENCHMARK(BM_PoolCpu)
    ->ArgNames({"case", "backward"})
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_PoolCuda(benchmark::State& state) {
  if (bench::skip_without_cuda(state)) return;
  bench_pool(state, Device::CUDA);
}
BENCHMARK(BM_PoolCuda)
    ->ArgNames({"case", "backward"})
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The forward's bytes moved by a device-to-device copy.
void BM_MemcpyBaselineCuda(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  const PoolCase& c = kCases[state.range(0)];
  Tensor y;
  {
    Tape tape;
    NoGradGuard no_grad;
    y = run_pool(tape, c, Tensor::zeros(c.x, DType::F32, Device::CUDA));
  }
  const int64_t copy_bytes = forward_bytes(c, y) / 2;
  Tensor src = Tensor::zeros({copy_bytes}, DType::U8, Device::CUDA);
  Tensor dst = Tensor::empty({copy_bytes}, DType::U8, Device::CUDA);
  bench::time_on_gpu(state, [&] {
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), size_t(copy_bytes), cudaMemcpyDeviceToDevice));
  });
  set_counters(state, c, 2 * copy_bytes);
#else
  bench::skip_without_cuda(state);
#endif
}
BENCHMARK(BM_MemcpyBaselineCuda)->ArgName("case")->DenseRange(0, 2)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
