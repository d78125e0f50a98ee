// The zero-skipping conv2d (kernels/conv2d_sparse.h) next to the dense path on the same inputs: forward, weight
// gradient from float x, and weight gradient from spike bytes, on the zoo's CPU training shapes with x a random
// spike map of the given density (the last argument, in per mille; VGGSNN's layers measure 150–220 ‰ in
// training).
//
// Each timed call includes what the op pays on the sparse path: counting x's non-zeros (the dispatch test; the op
// counts float x once per forward and the backward reuses it, so each row here counts once),
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
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_sparse.h"
#include "kernels/spike_pack.h"
#ifdef SPIKEGRAD_ONEDNN
#include "kernels/conv2d_onednn.h"
#endif

namespace spikegrad {
namespace {

enum class SparsePass { forward, backward_weight, backward_weight_packed };

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
  Generator normal(8);
  const Tensor w_t = rand_normal({s.K, s.C, s.R, s.S}, normal, Device::CPU), b_t = rand_normal({s.K}, normal, Device::CPU);
  const Tensor gy_t = rand_normal({s.N, s.K, s.P, s.Q}, normal, Device::CPU);
  const float *w = w_t.data<float>(), *b = b_t.data<float>(), *gy = gy_t.data<float>();
  std::vector<float> y(size_t(gy_t.numel())), gw(size_t(w_t.numel()), 0.f), gb(size_t(s.K), 0.f), x_unpacked;

  auto sparse = [&] {
    switch (pass) {
      case SparsePass::forward:
        benchmark::DoNotOptimize(conv2d_sparse_pays(s, count_nonzero_cpu(x.data(), x_count)));
        conv2d_forward_sparse_cpu(x.data(), w, b, y.data(), s);
        break;
      case SparsePass::backward_weight:
        benchmark::DoNotOptimize(conv2d_sparse_pays(s, count_nonzero_cpu(x.data(), x_count)));
        conv2d_backward_weight_sparse_cpu(x.data(), gy, gw.data(), gb.data(), s);
        break;
      case SparsePass::backward_weight_packed:
        benchmark::DoNotOptimize(conv2d_sparse_pays(s, count_nonzero_cpu(x.data(), x_count)));
        conv2d_backward_weight_sparse_packed_cpu(q.data(), 1, gy, gw.data(), gb.data(), s);
        break;
    }
  };
  auto dense = [&] {
#ifdef SPIKEGRAD_ONEDNN
    constexpr OnednnLayout kBlocked = OnednnLayout::blocked;
    switch (pass) {
      case SparsePass::forward: conv2d_forward_onednn(x.data(), w, b, y.data(), s, kBlocked); break;
      case SparsePass::backward_weight:
        conv2d_backward_weight_onednn(x.data(), gy, gw.data(), gb.data(), s, kBlocked);
        break;
      case SparsePass::backward_weight_packed:  // the op's dense packed path: unpack whole, then oneDNN
        x_unpacked.resize(static_cast<size_t>(x_count));
        unpack_levels_cpu<float>(q.data(), x_unpacked.data(), x_count, 1);
        conv2d_backward_weight_onednn(x_unpacked.data(), gy, gw.data(), gb.data(), s, kBlocked);
        break;
    }
#else
    switch (pass) {
      case SparsePass::forward: conv2d_forward_im2col_cpu<float>(x.data(), w, b, y.data(), s); break;
      case SparsePass::backward_weight:
        conv2d_backward_im2col_cpu<float>(x.data(), w, gy, nullptr, gw.data(), gb.data(), s);
        break;
      case SparsePass::backward_weight_packed:
        conv2d_backward_packed_im2col_cpu<float>(q.data(), 1, w, gy, nullptr, gw.data(), gb.data(), s);
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
  bench::interleaved_ratio(state, dense, sparse, "vs_dense", "dense_ms");
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
