// The zero-skipping conv2d (kernels/conv2d_sparse.h) next to the dense path on the same inputs: forward, weight
// gradient from float x, and weight gradient from spike bytes, on the zoo's CPU training shapes with x a random
// spike map of the given density (the last argument, in per mille; VGGSNN's layers measure 150–220 ‰ in
// training).
//
// Each timed call includes what the op pays on the sparse path: counting x's non-zeros (the dispatch test),
// building the non-zero lists and the K-blocked copy of w or gy. "dense_ms" is the dense path the op would take
// otherwise — oneDNN with its blocked layouts in builds with oneDNN, im2col + Eigen without — and "vs_dense" =
// dense time / sparse time, both the mean of 3 interleaved calls after the timed loop (> 1: sparse faster).
// "GFLOP" is the dense formula's 2·N·K·C·R·S·P·Q per call, so it reads as the dense-equivalent rate.
#include <benchmark/benchmark.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "bench/cpu_conv_shapes.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_sparse.h"
#include "kernels/spike_pack.h"
#ifdef SPIKEGRAD_ONEDNN
#include "kernels/conv2d_onednn.h"
#endif

namespace spikegrad {
namespace {

enum class SparsePass { forward, backward_weight, backward_weight_packed };

std::vector<float> normal(int64_t count, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& e : v) e = d(gen);
  return v;
}

void run(benchmark::State& state, SparsePass pass) {
  const Conv2dShape s = make_conv2d_shape(state.range(0), state.range(1), state.range(2), state.range(2),
                                          state.range(3), state.range(4), state.range(4), state.range(5), state.range(6));
  const double density = double(state.range(7)) / 1000.0;
  const int64_t x_count = s.N * s.C * s.H * s.W;
  std::vector<float> x(static_cast<size_t>(x_count));
  std::vector<uint8_t> q(static_cast<size_t>(x_count));
  std::mt19937 gen(7);
  std::bernoulli_distribution spike(density);
  for (int64_t i = 0; i < x_count; ++i) q[size_t(i)] = spike(gen) ? 1 : 0, x[size_t(i)] = float(q[size_t(i)]);
  const std::vector<float> w = normal(s.K * s.C * s.R * s.S, 8), b = normal(s.K, 9), gy = normal(s.N * s.K * s.P * s.Q, 10);
  std::vector<float> y(gy.size()), gw(w.size(), 0.f), gb(b.size(), 0.f), x_unpacked;

  auto sparse = [&] {
    switch (pass) {
      case SparsePass::forward:
        benchmark::DoNotOptimize(conv2d_sparse_pays(s, count_nonzero_cpu(x.data(), x_count)));
        conv2d_forward_sparse_cpu(x.data(), w.data(), b.data(), y.data(), s);
        break;
      case SparsePass::backward_weight:
        benchmark::DoNotOptimize(conv2d_sparse_pays(s, count_nonzero_cpu(x.data(), x_count)));
        conv2d_backward_weight_sparse_cpu(x.data(), gy.data(), gw.data(), gb.data(), s);
        break;
      case SparsePass::backward_weight_packed:
        benchmark::DoNotOptimize(conv2d_sparse_pays(s, count_nonzero_cpu(q.data(), x_count)));
        conv2d_backward_weight_sparse_packed_cpu(q.data(), 1, gy.data(), gw.data(), gb.data(), s);
        break;
    }
  };
  auto dense = [&] {
#ifdef SPIKEGRAD_ONEDNN
    constexpr OnednnLayout kBlocked = OnednnLayout::blocked;
    switch (pass) {
      case SparsePass::forward: conv2d_forward_onednn(x.data(), w.data(), b.data(), y.data(), s, kBlocked); break;
      case SparsePass::backward_weight:
        conv2d_backward_weight_onednn(x.data(), gy.data(), gw.data(), gb.data(), s, kBlocked);
        break;
      case SparsePass::backward_weight_packed:  // the op's dense packed path: unpack whole, then oneDNN
        x_unpacked.resize(static_cast<size_t>(x_count));
        unpack_levels_cpu<float>(q.data(), x_unpacked.data(), x_count, 1);
        conv2d_backward_weight_onednn(x_unpacked.data(), gy.data(), gw.data(), gb.data(), s, kBlocked);
        break;
    }
#else
    switch (pass) {
      case SparsePass::forward: conv2d_forward_im2col_cpu<float>(x.data(), w.data(), b.data(), y.data(), s); break;
      case SparsePass::backward_weight:
        conv2d_backward_im2col_cpu<float>(x.data(), w.data(), gy.data(), nullptr, gw.data(), gb.data(), s);
        break;
      case SparsePass::backward_weight_packed:
        conv2d_backward_packed_im2col_cpu<float>(q.data(), 1, w.data(), gy.data(), nullptr, gw.data(), gb.data(), s);
        break;
    }
#endif
  };
  sparse();
  dense();  // oneDNN's primitive creation, outside the timing
  for (auto _ : state) {
    sparse();
    benchmark::ClobberMemory();
  }
  constexpr int kReps = 3;
  double sparse_ms = 0, dense_ms = 0;
  for (int i = 0; i < kReps; ++i) {
    dense_ms += bench::wall_ms(dense);
    sparse_ms += bench::wall_ms(sparse);
  }
  state.counters["vs_dense"] = dense_ms / sparse_ms;
  state.counters["dense_ms"] = dense_ms / kReps;
  state.counters["GFLOP"] = benchmark::Counter(conv2d_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::to_string(s.C) + "->" + std::to_string(s.K) + " @" + std::to_string(s.H) + " s" +
                 std::to_string(s.stride) + " density " + std::to_string(state.range(7)) + "‰");
}

void BM_conv2d_sparse_forward(benchmark::State& state) { run(state, SparsePass::forward); }
void BM_conv2d_sparse_backward_weight(benchmark::State& state) { run(state, SparsePass::backward_weight); }
void BM_conv2d_sparse_backward_weight_packed(benchmark::State& state) {
  run(state, SparsePass::backward_weight_packed);
}

// VGGSNN's convs with spike inputs (layers 2–8) at T = 4, B = 16 (N = 64) at the measured density, then two of
// them swept over densities to find the crossover; small_cnn's second conv (2x2-pooled spikes, N = 256); two
// residual-network shapes.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "HW", "K", "RS", "stride", "pad", "permille"});
  for (auto [c, hw, k, stride] : {std::array<int, 4>{64, 32, 128, 2}, {128, 16, 256, 1}, {256, 16, 256, 2},
                                  {256, 8, 512, 1}, {512, 8, 512, 2}, {512, 4, 512, 1}, {512, 4, 512, 2}})
    b->Args({64, c, hw, k, 3, stride, 1, 170});
  for (int permille : {50, 100, 250, 300, 400, 600}) {
    b->Args({64, 128, 16, 256, 3, 1, 1, permille});
    b->Args({64, 512, 4, 512, 3, 1, 1, permille});
  }
  b->Args({256, 16, 14, 32, 3, 1, 1, 200});
  // Residual-network shapes (Spiking-/SEW-ResNet on CIFAR at N = 64): a 3x3 block conv at 32x32, a 1x1 projection.
  b->Args({64, 64, 32, 64, 3, 1, 1, 170});
  b->Args({64, 128, 16, 256, 1, 1, 0, 170});
  b->Args({64, 128, 16, 256, 1, 2, 0, 170});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_conv2d_sparse_forward)->Apply(shapes);
BENCHMARK(BM_conv2d_sparse_backward_weight)->Apply(shapes);
BENCHMARK(BM_conv2d_sparse_backward_weight_packed)->Apply(shapes);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
