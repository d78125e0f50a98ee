// conv2d benchmarks: the CPU im2col + Eigen GEMM path next to the plain-loop reference, and the CUDA
// path (cuDNN, fp32 FMA math) forward and backward.
//
// FLOPs (kernels/conv2d.h, conv2d_flops): forward = 2·N·K·C·R·S·P·Q, one multiply-add per weight tap
// per output element. Backward data and backward weight cost the same each, so the backward counters
// use 2× that (the bias gradient, N·K·P·Q adds, is negligible and not counted).
// Counters "GFLOP" (CPU) and "TFLOP" (CUDA) are rates: Google Benchmark divides them by the measured
// time per iteration and prints them as GFLOP=…/s, i.e. they read as GFLOP/s and TFLOP/s.
// Arguments: N, C, H=W, K, R=S, stride, pad.
//
// CPU shapes are VGG-like layers shrunk to N=8 so the naive loops finish on a small machine; CUDA
// shapes are the eight VGGSNN layers of spec/reference.md §3 at T·B = 4·64 = 256.
// GPU time comes from CUDA events around each call (UseManualTime); without a device the CUDA
// benchmarks report SkipWithError.
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"

#include <string>

#include "engine/cuda_context.h"
#include "engine/rng.h"
#include "kernels/conv2d.h"

#ifdef SPIKEGRAD_CUDA
#include <cuda_runtime.h>

#include "engine/cuda_check.h"
#endif

namespace spikegrad {
namespace {

Conv2dShape shape_from(const benchmark::State& state) {
  return make_conv2d_shape(state.range(0), state.range(1), state.range(2), state.range(2), state.range(3),
                           state.range(4), state.range(4), state.range(5), state.range(6));
}

struct ConvTensors {
  Tensor x, w, b, y, gy, gx, gw, gb;
};

ConvTensors make_tensors(const Conv2dShape& s, Device device, bool with_grads) {
  Generator gen(1234);
  ConvTensors t;
  t.x = rand_normal({s.N, s.C, s.H, s.W}, gen, device);
  t.w = rand_normal({s.K, s.C, s.R, s.S}, gen, device);
  t.b = rand_normal({s.K}, gen, device);
  t.y = Tensor::empty({s.N, s.K, s.P, s.Q}, DType::F32, device);
  if (with_grads) {
    t.gy = rand_normal({s.N, s.K, s.P, s.Q}, gen, device);
    t.gx = Tensor::zeros(t.x.shape(), DType::F32, device);
    t.gw = Tensor::zeros(t.w.shape(), DType::F32, device);
    t.gb = Tensor::zeros(t.b.shape(), DType::F32, device);
  }
  return t;
}

void set_counters(benchmark::State& state, const Conv2dShape& s, double flops_per_call, const char* name,
                  double unit) {
  state.counters[name] = benchmark::Counter(flops_per_call * unit, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::to_string(s.C) + "->" + std::to_string(s.K) + " @" + std::to_string(s.H) + "x" +
                 std::to_string(s.W) + " k" + std::to_string(s.R) + " s" + std::to_string(s.stride) + " p" +
                 std::to_string(s.pad));
}

// ---- CPU -----------------------------------------------------------------------------------------

void BM_conv2d_forward_cpu_im2col(benchmark::State& state) {
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CPU, false);
  for (auto _ : state) {
    conv2d_forward_cpu<float>(t.x.data<float>(), t.w.data<float>(), t.b.data<float>(), t.y.data<float>(), s);
    benchmark::DoNotOptimize(t.y.data<float>());
    benchmark::ClobberMemory();
  }
  set_counters(state, s, conv2d_flops(s), "GFLOP", 1e-9);
}

void BM_conv2d_forward_cpu_naive(benchmark::State& state) {
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CPU, false);
  for (auto _ : state) {
    conv2d_forward_naive_cpu<float>(t.x.data<float>(), t.w.data<float>(), t.b.data<float>(), t.y.data<float>(), s);
    benchmark::DoNotOptimize(t.y.data<float>());
    benchmark::ClobberMemory();
  }
  set_counters(state, s, conv2d_flops(s), "GFLOP", 1e-9);
}

void BM_conv2d_backward_cpu_im2col(benchmark::State& state) {
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CPU, true);
  for (auto _ : state) {
    conv2d_backward_cpu<float>(t.x.data<float>(), t.w.data<float>(), t.gy.data<float>(), t.gx.data<float>(),
                               t.gw.data<float>(), t.gb.data<float>(), s);
    benchmark::ClobberMemory();
  }
  set_counters(state, s, 2 * conv2d_flops(s), "GFLOP", 1e-9);
}

void cpu_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "HW", "K", "RS", "stride", "pad"});
  b->Args({8, 64, 32, 64, 3, 1, 1});
  b->Args({8, 128, 16, 256, 3, 1, 1});
  b->Args({8, 512, 4, 512, 3, 1, 1});
  b->UseRealTime()->Unit(benchmark::kMillisecond);  // OpenMP workers: wall time is what matters
}

BENCHMARK(BM_conv2d_forward_cpu_im2col)->Apply(cpu_shapes);
BENCHMARK(BM_conv2d_forward_cpu_naive)->Apply(cpu_shapes);
BENCHMARK(BM_conv2d_backward_cpu_im2col)->Apply(cpu_shapes);

// ---- CUDA (cuDNN) --------------------------------------------------------------------------------

#ifdef SPIKEGRAD_CUDA
#endif

void BM_conv2d_forward_cudnn(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CUDA, false);
  bench::time_on_gpu(state, [&] {
    conv2d_forward_cuda(t.x.data<float>(), t.w.data<float>(), t.b.data<float>(), t.y.data<float>(), s);
  });
  set_counters(state, s, conv2d_flops(s), "TFLOP", 1e-12);
#else
  state.SkipWithError("no CUDA device (built without CUDA)");
#endif
}

void BM_conv2d_backward_cudnn(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (!cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CUDA, true);
  bench::time_on_gpu(state, [&] {
    conv2d_backward_cuda(t.x.data<float>(), t.w.data<float>(), t.gy.data<float>(), t.gx.data<float>(),
                         t.gw.data<float>(), t.gb.data<float>(), s);
  });
  set_counters(state, s, 2 * conv2d_flops(s), "TFLOP", 1e-12);
#else
  state.SkipWithError("no CUDA device (built without CUDA)");
#endif
}

void vggsnn_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "HW", "K", "RS", "stride", "pad"});
  b->Args({256, 3, 32, 64, 3, 1, 1});
  b->Args({256, 64, 32, 128, 3, 2, 1});
  b->Args({256, 128, 16, 256, 3, 1, 1});
  b->Args({256, 256, 16, 256, 3, 2, 1});
  b->Args({256, 256, 8, 512, 3, 1, 1});
  b->Args({256, 512, 8, 512, 3, 2, 1});
  b->Args({256, 512, 4, 512, 3, 1, 1});
  b->Args({256, 512, 4, 512, 3, 2, 1});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_conv2d_forward_cudnn)->Apply(vggsnn_shapes);
BENCHMARK(BM_conv2d_backward_cudnn)->Apply(vggsnn_shapes);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
