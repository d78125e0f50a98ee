// conv2d benchmarks: the CPU im2col + Eigen GEMM path next to the plain-loop reference and, per pass, next
// to oneDNN (builds with SPIKEGRAD_WITH_ONEDNN); the CUDA path (cuDNN, fp32 FMA math) forward and backward.
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
//
// Implicit GEMM (kernels/conv2d_igemm.h), one benchmark per pass — forward (with bias), backward data,
// backward weight (with the bias gradient) — each with a last argument tf32 = 0 (fp32 FMA) or 1 (TF32
// tensor cores). "TFLOP" is ours, 2·N·K·C·R·S·P·Q per pass; "vs_cudnn" = cuDNN time / our time for the
// same pass through kernels/conv2d.h (fp32 FMA math, deterministic algorithms), both as the mean of
// interleaved event-timed calls in the same process, so > 1 means ours is faster.
#include <benchmark/benchmark.h>

#include "bench/cpu_conv_shapes.h"
#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <array>
#include <chrono>
#include <string>
#include <utility>

#include "engine/cuda_context.h"
#include "engine/op_util.h"
#include "engine/rng.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_igemm.h"
#include "kernels/spike_pack.h"
#ifdef SPIKEGRAD_ONEDNN
#include "kernels/conv2d_onednn.h"
#endif

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
    conv2d_forward_im2col_cpu<float>(t.x.data<float>(), t.w.data<float>(), t.b.data<float>(), t.y.data<float>(), s);
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
    conv2d_backward_im2col_cpu<float>(t.x.data<float>(), t.w.data<float>(), t.gy.data<float>(), t.gx.data<float>(),
                                      t.gw.data<float>(), t.gb.data<float>(), s);
    benchmark::ClobberMemory();
  }
  set_counters(state, s, 2 * conv2d_flops(s), "GFLOP", 1e-9);
}

// The same backward with x kept as bytes (spike inputs, Conv2dOptions::input_levels = 1): each image is
// unpacked into a per-thread float buffer just before its GEMMs (kernels/conv2d.h). Against the row above it
// measures what the 4x smaller saved input costs in time.
void BM_conv2d_backward_cpu_packed(benchmark::State& state) {
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CPU, true);
  Tensor x_levels = Tensor::empty(t.x.shape(), DType::U8, Device::CPU);
  uint8_t* q = x_levels.data<uint8_t>();
  const float* x = t.x.data<float>();
  for (int64_t i = 0; i < x_levels.numel(); ++i) q[i] = x[i] > 0.5f ? 1 : 0;  // ~30% spikes from N(0,1)
  for (auto _ : state) {
    conv2d_backward_packed_im2col_cpu<float>(q, 1, t.w.data<float>(), t.gy.data<float>(), t.gx.data<float>(),
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
BENCHMARK(BM_conv2d_backward_cpu_packed)->Apply(cpu_shapes);

// ---- CPU: oneDNN next to im2col + Eigen, per pass --------------------------------------------------
// One benchmark per pass — forward (with bias), backward data, backward weight (with the bias gradient), and
// backward weight from spike bytes (x as levels, Conv2dOptions::input_levels = 1) — with a last argument
// impl: 0 = im2col + Eigen (conv2d_*_im2col_cpu), 1 = oneDNN on the NCHW/OIHW arrays as they are, 2 = oneDNN
// on its own blocked layouts with reorders in and out on every call (kernels/conv2d_onednn.h). For the packed
// weight pass, Eigen unpacks image by image inside its loop; oneDNN needs the whole float x, so impl 1/2
// unpack it first (timed). "GFLOP" is 2·N·K·C·R·S·P·Q per pass (read as GFLOP/s). "vs_eigen" = Eigen's time /
// this row's time, both as the mean of interleaved calls in the same process after the timed loop (> 1:
// oneDNN faster); "eigen_ms" is that Eigen mean. Each row calls once before timing, so oneDNN's primitive
// creation (cached per shape, as in training) is not timed.
enum class CpuPass { forward, backward_data, backward_weight, backward_weight_packed };


void run_cpu_pass_benchmark(benchmark::State& state, CpuPass pass) {
  const Conv2dShape s = shape_from(state);
  const int impl = int(state.range(7));
  ConvTensors t = make_tensors(s, Device::CPU, pass != CpuPass::forward);
  Tensor x_levels = Tensor::empty(t.x.shape(), DType::U8, Device::CPU), x_unpacked;
  uint8_t* q = x_levels.data<uint8_t>();
  for (int64_t i = 0; i < x_levels.numel(); ++i) q[i] = t.x.data<float>()[i] > 0.5f ? 1 : 0;  // ~30% spikes
  if (pass == CpuPass::backward_weight_packed) x_unpacked = Tensor::empty(t.x.shape(), DType::F32, Device::CPU);
  const float *x = t.x.data<float>(), *w = t.w.data<float>(), *b = t.b.data<float>();
  float* y = t.y.data<float>();
  const float* gy = pass == CpuPass::forward ? nullptr : t.gy.data<float>();
  float* gx = pass == CpuPass::forward ? nullptr : t.gx.data<float>();
  float* gw = pass == CpuPass::forward ? nullptr : t.gw.data<float>();
  float* gb = pass == CpuPass::forward ? nullptr : t.gb.data<float>();
  auto eigen = [&] {
    switch (pass) {
      case CpuPass::forward: conv2d_forward_im2col_cpu<float>(x, w, b, y, s); break;
      case CpuPass::backward_data: conv2d_backward_im2col_cpu<float>(x, w, gy, gx, nullptr, nullptr, s); break;
      case CpuPass::backward_weight: conv2d_backward_im2col_cpu<float>(x, w, gy, nullptr, gw, gb, s); break;
      case CpuPass::backward_weight_packed:
        conv2d_backward_packed_im2col_cpu<float>(q, 1, w, gy, nullptr, gw, gb, s);
        break;
    }
  };
#ifdef SPIKEGRAD_ONEDNN
  const OnednnLayout layout = impl == 2 ? OnednnLayout::blocked : OnednnLayout::plain;
  auto onednn = [&] {
    switch (pass) {
      case CpuPass::forward: conv2d_forward_onednn(x, w, b, y, s, layout); break;
      case CpuPass::backward_data: conv2d_backward_data_onednn(w, gy, gx, s, layout); break;
      case CpuPass::backward_weight: conv2d_backward_weight_onednn(x, gy, gw, gb, s, layout); break;
      case CpuPass::backward_weight_packed:
        unpack_levels_cpu<float>(q, x_unpacked.data<float>(), x_unpacked.numel(), 1);
        conv2d_backward_weight_onednn(x_unpacked.data<float>(), gy, gw, gb, s, layout);
        break;
    }
  };
#else
  auto onednn = [&] {};
  if (impl != 0) {
    state.SkipWithError("built without oneDNN (SPIKEGRAD_WITH_ONEDNN)");
    return;
  }
#endif
  auto timed = [&] { impl == 0 ? eigen() : onednn(); };
  timed();  // primitive creation and first-touch of the scratch, outside the timing
  for (auto _ : state) {
    timed();
    benchmark::ClobberMemory();
  }
  set_counters(state, s, conv2d_flops(s), "GFLOP", 1e-9);
#ifdef SPIKEGRAD_ONEDNN
  if (impl != 0) bench::interleaved_ratio(state, eigen, onednn, "vs_eigen", "eigen_ms");
#else
  (void)onednn;
#endif
}

void BM_conv2d_cpu_forward(benchmark::State& state) { run_cpu_pass_benchmark(state, CpuPass::forward); }
void BM_conv2d_cpu_backward_data(benchmark::State& state) { run_cpu_pass_benchmark(state, CpuPass::backward_data); }
void BM_conv2d_cpu_backward_weight(benchmark::State& state) {
  run_cpu_pass_benchmark(state, CpuPass::backward_weight);
}
void BM_conv2d_cpu_backward_weight_packed(benchmark::State& state) {
  run_cpu_pass_benchmark(state, CpuPass::backward_weight_packed);
}

// The zoo's CPU training shapes (bench/cpu_conv_shapes.h), each with impl 0, 1 and 2.
void zoo_cpu_shapes(benchmark::internal::Benchmark* b) { bench::add_zoo_cpu_shapes(b, {0, 1, 2}); }

BENCHMARK(BM_conv2d_cpu_forward)->Apply(zoo_cpu_shapes);
BENCHMARK(BM_conv2d_cpu_backward_data)->Apply(zoo_cpu_shapes);
BENCHMARK(BM_conv2d_cpu_backward_weight)->Apply(zoo_cpu_shapes);
BENCHMARK(BM_conv2d_cpu_backward_weight_packed)->Apply(zoo_cpu_shapes);

// ---- CUDA (cuDNN) --------------------------------------------------------------------------------

#ifdef SPIKEGRAD_CUDA
#endif

void BM_conv2d_forward_cudnn(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CUDA, false);
  const detail::CudaScratch ws = detail::cuda_scratch(conv2d_forward_cuda_workspace_bytes(s));  // outside the timing
  bench::time_on_gpu(state, [&] {
    conv2d_forward_cuda(t.x.data<float>(), t.w.data<float>(), t.b.data<float>(), t.y.data<float>(), s, ws.ptr,
                        ws.bytes);
  });
  set_counters(state, s, conv2d_flops(s), "TFLOP", 1e-12);
#else
  bench::skip_without_cuda(state);
#endif
}

void BM_conv2d_backward_cudnn(benchmark::State& state) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  const Conv2dShape s = shape_from(state);
  ConvTensors t = make_tensors(s, Device::CUDA, true);
  const detail::CudaScratch ws = detail::cuda_scratch(conv2d_backward_cuda_workspace_bytes(s, true, true));
  bench::time_on_gpu(state, [&] {
    conv2d_backward_cuda(t.x.data<float>(), t.w.data<float>(), t.gy.data<float>(), t.gx.data<float>(),
                         t.gw.data<float>(), t.gb.data<float>(), s, ws.ptr, ws.bytes);
  });
  set_counters(state, s, 2 * conv2d_flops(s), "TFLOP", 1e-12);
#else
  bench::skip_without_cuda(state);
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

// ---- CUDA implicit GEMM (ours) next to cuDNN -----------------------------------------------------

enum class ConvPass { forward, backward_data, backward_weight };

#ifdef SPIKEGRAD_CUDA
// Mean milliseconds per call of `ours` and of `theirs`, each timed with events, calls interleaved so
// both see the same clocks and caches; one untimed call of each first.
template <class A, class B>
std::pair<double, double> interleaved_mean_ms(A&& ours, B&& theirs, int reps) {
  ours();
  theirs();
  CUDA_CHECK(cudaDeviceSynchronize());
  bench::GpuTimer timer;
  double a = 0, b = 0;
  for (int i = 0; i < reps; ++i) {
    a += timer.ms(ours);
    b += timer.ms(theirs);
  }
  return {a / reps, b / reps};
}
#endif

void run_igemm_benchmark(benchmark::State& state, ConvPass pass) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  const Conv2dShape s = shape_from(state);
  const ConvMath math = state.range(7) ? ConvMath::tf32 : ConvMath::fp32;
  ConvTensors t = make_tensors(s, Device::CUDA, pass != ConvPass::forward);
  const float *x = t.x.data<float>(), *w = t.w.data<float>(), *b = t.b.data<float>(), *gy = nullptr;
  float *y = t.y.data<float>(), *gx = nullptr, *gw = nullptr, *gb = nullptr;
  if (pass != ConvPass::forward) {
    gy = t.gy.data<float>();
    gx = t.gx.data<float>(), gw = t.gw.data<float>(), gb = t.gb.data<float>();
  }
  // Each side's scratch, sized by its query and allocated outside the timing.
  const bool dgrad = pass == ConvPass::backward_data, wgrad = pass == ConvPass::backward_weight;
  const detail::CudaScratch ours_ws = detail::cuda_scratch(
      pass == ConvPass::forward ? conv2d_igemm_forward_workspace_bytes(s, math)
      : dgrad                   ? conv2d_igemm_backward_data_workspace_bytes(s, math)
                                : conv2d_igemm_backward_weight_workspace_bytes(s, math, true, true));
  const detail::CudaScratch cudnn_ws =
      detail::cuda_scratch(pass == ConvPass::forward ? conv2d_forward_cuda_workspace_bytes(s)
                                                     : conv2d_backward_cuda_workspace_bytes(s, dgrad, wgrad));
  void* const ows = ours_ws.ptr;
  void* const cws = cudnn_ws.ptr;
  const size_t obytes = ours_ws.bytes, cbytes = cudnn_ws.bytes;
  auto ours = [&] {
    switch (pass) {
      case ConvPass::forward: conv2d_igemm_forward_cuda<float>(x, 1.f, w, b, y, s, math, ows, obytes); break;
      case ConvPass::backward_data: conv2d_igemm_backward_data_cuda(w, gy, gx, s, math, ows, obytes); break;
      case ConvPass::backward_weight:
        conv2d_igemm_backward_weight_cuda<float>(x, 1.f, gy, gw, gb, s, math, ows, obytes);
        break;
    }
  };
  auto cudnn = [&] {
    switch (pass) {
      case ConvPass::forward: conv2d_forward_cuda(x, w, b, y, s, cws, cbytes); break;
      case ConvPass::backward_data: conv2d_backward_cuda(x, w, gy, gx, nullptr, nullptr, s, cws, cbytes); break;
      case ConvPass::backward_weight: conv2d_backward_cuda(x, w, gy, nullptr, gw, gb, s, cws, cbytes); break;
    }
  };
  bench::time_on_gpu(state, ours);
  const auto [ours_ms, cudnn_ms] = interleaved_mean_ms(ours, cudnn, 10);
  set_counters(state, s, conv2d_flops(s), "TFLOP", 1e-12);
  state.counters["vs_cudnn"] = cudnn_ms / ours_ms;
  state.counters["cudnn_us"] = cudnn_ms * 1e3;
#else
  (void)pass;
  bench::skip_without_cuda(state);
#endif
}

void BM_conv2d_igemm_forward(benchmark::State& state) { run_igemm_benchmark(state, ConvPass::forward); }
void BM_conv2d_igemm_backward_data(benchmark::State& state) { run_igemm_benchmark(state, ConvPass::backward_data); }
void BM_conv2d_igemm_backward_weight(benchmark::State& state) { run_igemm_benchmark(state, ConvPass::backward_weight); }

// The seven VGGSNN convolutions as 3x3 s1 p1 layers at N = 256, then 1x1 s1 p0 and 3x3 s2 p1 variants.
void igemm_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "HW", "K", "RS", "stride", "pad", "tf32"});
  for (int tf32 : {0, 1}) {
    for (auto [c, hw, k] : {std::array<int, 3>{3, 32, 64}, {64, 32, 128}, {128, 16, 256}, {256, 16, 256}, {256, 8, 512},
                            {512, 8, 512}, {512, 4, 512}})
      b->Args({256, c, hw, k, 3, 1, 1, tf32});
    b->Args({256, 128, 16, 256, 1, 1, 0, tf32});
    b->Args({256, 512, 8, 512, 1, 1, 0, tf32});
    b->Args({256, 64, 32, 128, 3, 2, 1, tf32});
    b->Args({256, 256, 16, 256, 3, 2, 1, tf32});
  }
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_conv2d_igemm_forward)->Apply(igemm_shapes);
BENCHMARK(BM_conv2d_igemm_backward_data)->Apply(igemm_shapes);
BENCHMARK(BM_conv2d_igemm_backward_weight)->Apply(igemm_shapes);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
