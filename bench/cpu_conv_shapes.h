// What the CPU convolution benchmarks (bench_conv, bench_conv_gemm, bench_conv_sparse) share: the zoo's CPU
// training shapes, a wall-clock timer, and the interleaved comparison calls they make after the timed loop.
#pragma once
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <initializer_list>

namespace spikegrad::bench {

// Milliseconds of wall time one call of f takes.
template <class F> double wall_ms(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Compares `baseline` with `candidate` after the timed loop: kReps calls of each, interleaved (baseline first) so
// both see the same clocks and caches; sets the counters `ratio` = baseline time / candidate time (> 1: the
// candidate is faster) and `baseline_ms` = the baseline's mean.
template <class A, class B>
void interleaved_ratio(benchmark::State& state, A&& baseline, B&& candidate, const char* ratio, const char* baseline_ms) {
  constexpr int kReps = 3;
  double base = 0, cand = 0;
  for (int i = 0; i < kReps; ++i) {
    base += wall_ms(baseline);
    cand += wall_ms(candidate);
  }
  state.counters[ratio] = base / cand;
  state.counters[baseline_ms] = base / kReps;
}

// The zoo's CPU training shapes, T folded into the batch as the engine does (N = T·B): VGGSNN's eight convs on
// CIFAR at T = 4, B = 16 (N = 64), and small_cnn's two on Fashion-MNIST at T = 4, B = 64 (N = 256); 3x3, pad 1.
// Arguments N, C, HW, K, RS, stride, pad, impl — once per implementation in `impls`.
inline void add_zoo_cpu_shapes(benchmark::internal::Benchmark* b, std::initializer_list<int> impls) {
  b->ArgNames({"N", "C", "HW", "K", "RS", "stride", "pad", "impl"});
  for (int impl : impls) {
    for (auto [c, hw, k, stride] : {std::array<int, 4>{3, 32, 64, 1}, {64, 32, 128, 2}, {128, 16, 256, 1},
                                    {256, 16, 256, 2}, {256, 8, 512, 1}, {512, 8, 512, 2}, {512, 4, 512, 1},
                                    {512, 4, 512, 2}})
      b->Args({64, c, hw, k, 3, stride, 1, impl});
    b->Args({256, 1, 28, 16, 3, 1, 1, impl});
    b->Args({256, 16, 14, 32, 3, 1, 1, impl});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);  // OpenMP workers: wall time is what matters
}

}  // namespace spikegrad::bench
