// Fused BN + LIF (ops::batch_norm_spike) against its unfused path (ops::batch_norm, then ops::spike), through
// the public ops with a tape, as a spiking layer runs them in training: forward only, and forward +
// backward (upstream gradient of ones on the spikes, input and BN-parameter gradients).
//
// Shapes: T = 4, B = 64, one VGGSNN layer: 64x32x32 (layer 0) or 512x4x4 (layer 1). Args: {layer, fused}.
// Traffic per neuron per step, float32 (the minimum each path must move):
//   unfused forward   BN apply reads x, writes u (8 B) + the neuron reads u, writes s and h (12 B) = 20 B, plus
//                     BN's two statistics passes over x (8 B) = 28 B
//   fused forward     statistics (8 B) + one pass that reads x and writes s (8 B) = 16 B
//   backward          unfused: neuron 16 B (grad_s, h, rmw du) + BN reduce (reads x, du: 8 B) + BN dx (reads x,
//                     du, rmw dx: 16 B) = 40 B; fused: the neuron reads x instead of h and recomputes h in
//                     cache (same 16 B) + the same BN 24 B = 40 B (plus zeroing du, 4 B, on both paths)
// Memory kept between forward and backward per neuron per step: unfused 8 B (x for BN, h for the neuron),
// fused 4 B (x). Both are reported as `saved_MiB` (allocator bytes live after the forward minus before).
// CPU: OpenMP, wall time. CUDA: CUDA events around the work; without a device "no CUDA device".
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <exception>

#include "engine/allocator.h"
#include "engine/cuda_context.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace spikegrad {
namespace {

constexpr int64_t kSteps = 4, kBatch = 64;

struct Layer {
  Tensor x, weight, bias, running_mean, running_var;
};

Layer make_layer(int64_t layer, Device device) {
  const int64_t C = layer == 0 ? 64 : 512, size = layer == 0 ? 32 : 4;
  Generator gen(17);
  Layer l;
  l.x = rand_normal({kSteps * kBatch, C, size, size}, gen, device);
  l.weight = Tensor::full({C}, 1.0).to(device);
  l.bias = Tensor::full({C}, 0.5).to(device);
  l.running_mean = Tensor::zeros({C}).to(device);
  l.running_var = Tensor::full({C}, 1.0).to(device);
  for (Tensor* t : {&l.x, &l.weight, &l.bias}) t->set_requires_grad(true);
  return l;
}

Tensor layer_forward(Tape& tape, const Layer& l, bool fused) {
  ops::BatchNormOptions bn;
  if (fused) return ops::batch_norm_spike(tape, l.x, l.weight, l.bias, l.running_mean, l.running_var, bn, kSteps);
  Tensor u = ops::batch_norm(tape, l.x, l.weight, l.bias, l.running_mean, l.running_var, bn);
  return ops::reshape(tape, ops::spike(tape, ops::reshape(tape, u, {kSteps, -1})), l.x.shape());
}

// One layer step; returns the bytes the tape holds after the forward (saved for backward).
size_t run_once(const Layer& l, bool fused, bool backward, Device device) {
  const size_t before = allocator(device).stats().current_bytes;
  Tape tape;
  Tensor y = layer_forward(tape, l, fused);
  const size_t saved = allocator(device).stats().current_bytes - before;
  if (backward) {
    tape.grad(ops::sum(tape, y), {l.x, l.weight, l.bias});
  }
  return saved;
}

template <class Timer>
void run(benchmark::State& state, Device device, bool backward, Timer&& timer) {
  try {
    const int64_t layer = state.range(0);
    const bool fused = state.range(1) != 0;
    Layer l = make_layer(layer, device);
    size_t saved = run_once(l, fused, backward, device);  // warm-up: fills the allocator's cache
    timer([&] { saved = run_once(l, fused, backward, device); });
    state.counters["saved_MiB"] = double(saved) / (1024.0 * 1024.0);
    state.SetLabel(std::string(fused ? "fused" : "unfused") + (layer == 0 ? " 64x32x32" : " 512x4x4") + " T=4 B=64");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_BnLifCpu(benchmark::State& state, bool backward) {
  run(state, Device::CPU, backward, [&](auto&& step) {
    for (auto _ : state) step();
  });
}

void BM_BnLifCuda(benchmark::State& state, bool backward) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  run(state, Device::CUDA, backward, [&](auto&& step) { bench::time_on_gpu(state, step); });
#else
  (void)backward;
  bench::skip_without_cuda(state);
#endif
}

void args(benchmark::internal::Benchmark* b) { b->ArgNames({"layer", "fused"})->ArgsProduct({{0, 1}, {0, 1}}); }

BENCHMARK_CAPTURE(BM_BnLifCpu, forward, false)->Apply(args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BnLifCpu, forward_backward, true)->Apply(args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BnLifCuda, forward, false)->Apply(args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_BnLifCuda, forward_backward, true)->Apply(args)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
