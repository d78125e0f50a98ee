// Optimizer benchmarks on the VGGSNN (CIFAR-100) parameter set: 8 conv layers (weight, bias, BN weight,
// BN bias) plus the classifier, 34 tensors and 9,430,884 floats, dominated by the 512x512x3x3 convs.
//
// Napkin math, float32 Adam: each element reads p, g, m, v and writes p, m, v, so the minimum traffic is
//   bytes = 7 * 4 * numel = 28 * 9,430,884 ≈ 264 MB per step   (~80 us at 3.3 TB/s on an H100).
// The baseline is a device-to-device cudaMemcpy moving the same traffic: copying 14 * numel bytes reads
// 14 * numel and writes 14 * numel. Global grad norm: reads g once, bytes = 4 * numel.
// GPU times come from CUDA events around the work (UseManualTime), so they include the gaps between the
// 34 per-tensor launches of the unfused path, which is the real cost of a step; the multi-tensor path
// (the default) updates all 34 in one launch.
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <memory>

#include "engine/cuda_context.h"
#include "engine/optim.h"
#ifdef SPIKEGRAD_CUDA
#include <cuda_runtime.h>

#include "engine/cuda_check.h"
#endif

namespace spikegrad {
namespace {

NamedTensors vggsnn_params(Device device, int64_t classes = 100) {
  const int64_t plan[8][2] = {{3, 64}, {64, 128}, {128, 256}, {256, 256}, {256, 512}, {512, 512}, {512, 512}, {512, 512}};
  NamedTensors params;
  auto add = [&](const std::string& name, const Shape& shape) {
    Tensor p = Tensor::full(shape, 0.05, DType::F32, device);
    p.set_requires_grad(true);
    p.set_grad(Tensor::full(shape, 0.01, DType::F32, device));
    params.push_back({name, p});
  };
  for (int l = 0; l < 8; ++l) {
    const int64_t in = plan[l][0], out = plan[l][1];
    const std::string prefix = "features." + std::to_string(l);
    add(prefix + ".conv.weight", {out, in, 3, 3});
    add(prefix + ".conv.bias", {out});
    add(prefix + ".bn.weight", {out});
    add(prefix + ".bn.bias", {out});
  }
  add("classifier.weight", {classes, 2048});
  add("classifier.bias", {classes});
  return params;
}

int64_t total_numel(const NamedTensors& params) {
  int64_t n = 0;
  for (const auto& nt : params) n += nt.tensor.numel();
  return n;
}

void set_counters(benchmark::State& state, int64_t bytes_per_iter) {
  state.SetBytesProcessed(state.iterations() * bytes_per_iter);
  state.counters["MB_per_step"] = double(bytes_per_iter) / 1e6;
}

void BM_AdamStepCpu(benchmark::State& state) {
  NamedTensors params = vggsnn_params(Device::CPU);
  Adam adam(params, AdamOptions{0.01});
  for (auto _ : state) adam.step();
  set_counters(state, 28 * total_numel(params));
}
BENCHMARK(BM_AdamStepCpu)->UseRealTime()->Unit(benchmark::kMillisecond);  // OpenMP: wall time

void BM_GlobalGradNormCpu(benchmark::State& state) {
  NamedTensors params = vggsnn_params(Device::CPU);
  for (auto _ : state) benchmark::DoNotOptimize(global_grad_norm(params));
  set_counters(state, 4 * total_numel(params));
}
BENCHMARK(BM_GlobalGradNormCpu)->UseRealTime()->Unit(benchmark::kMillisecond);

#ifdef SPIKEGRAD_CUDA
#endif

// Arg 1: all 34 tensors in one launch (multi-tensor, the default); 0: one launch per tensor (the unfused path).
void BM_AdamStepCuda(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  NamedTensors params = vggsnn_params(Device::CUDA);
  Adam adam(params, AdamOptions{0.01});
  adam.set_multi_tensor(state.range(0) != 0);
  bench::time_on_gpu(state, [&] { adam.step(); });
  set_counters(state, 28 * total_numel(params));
  state.SetLabel(state.range(0) ? "one launch" : "34 launches");
#else
  bench::skip_without_cuda(state);
#endif
}
BENCHMARK(BM_AdamStepCuda)->ArgName("multi_tensor")->Arg(1)->Arg(0)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_MemcpyBaselineCuda(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  const int64_t n = total_numel(vggsnn_params(Device::CPU));
  const size_t copy_bytes = size_t(14 * n);  // read 14n + write 14n = Adam's 28n
  Tensor src = Tensor::zeros({int64_t(copy_bytes)}, DType::U8, Device::CUDA);
  Tensor dst = Tensor::empty({int64_t(copy_bytes)}, DType::U8, Device::CUDA);
  bench::time_on_gpu(state, [&] {
    CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), copy_bytes, cudaMemcpyDeviceToDevice));
  });
  set_counters(state, int64_t(2 * copy_bytes));
#else
  bench::skip_without_cuda(state);
#endif
}
BENCHMARK(BM_MemcpyBaselineCuda)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Includes the one device-to-host read of the norm, which clip_grad_norm needs anyway.
void BM_GlobalGradNormCuda(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  NamedTensors params = vggsnn_params(Device::CUDA);
  bench::time_on_gpu(state, [&] { benchmark::DoNotOptimize(global_grad_norm(params)); });
  set_counters(state, 4 * total_numel(params));
#else
  bench::skip_without_cuda(state);
#endif
}
BENCHMARK(BM_GlobalGradNormCuda)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
