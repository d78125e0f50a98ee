// CUDA batch norm kernels (kernels/batch_norm.h) on spiking-VGG layer shapes at T·B = 256:
//   layer 0: (256, 64, 32, 32)   C = 64,  M = 262,144 per channel (few channels, long reductions)
//   layer 1: (256, 128, 32, 32)  C = 128, M = 262,144
//   layer 2: (256, 512, 4, 4)    C = 512, M = 4,096    (many short channels)
// Called directly (no tape), float32, training mode. Minimum traffic per element (n = N·C·S):
//   forward (training, with y)      3 reads of x (two statistics passes + apply) + 1 write of y = 16 B
//   statistics only (y == nullptr)  2 reads of x                                               =  8 B
//   backward (training, dx and dweight/dbias)  x and dy read twice (reduce + dx) + rmw of dx   = 24 B
// GB/s is that minimum over the GPU time (CUDA events, UseManualTime); about 3.3 TB/s is an H100's peak.
// The statistics passes may hit L2 for the small layer (8 MiB of x), so it can exceed the DRAM rate.
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "engine/cuda_context.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/batch_norm.h"

namespace spikegrad {
namespace {

constexpr int64_t kShapes[3][4] = {{256, 64, 32, 32}, {256, 128, 32, 32}, {256, 512, 4, 4}};

struct Layer {
  int64_t N, C, S;
  Tensor x, gy, gx, weight, bias, running_mean, running_var, save_mean, save_invstd, channel_sums, gweight, gbias, y;
  Tensor scratch;  // the reductions' block partials (batch_norm_cuda_scratch_size doubles)
  int64_t scratch_size = 0;
};

Layer make_layer(int64_t index) {
  const int64_t* s = kShapes[index];
  Layer l;
  l.N = s[0];
  l.C = s[1];
  l.S = s[2] * s[3];
  Generator gen(11);
  const Shape shape{s[0], s[1], s[2], s[3]};
  const Device d = Device::CUDA;
  l.x = rand_normal(shape, gen, d);
  l.gy = rand_normal(shape, gen, d);
  l.gx = Tensor::zeros(shape, DType::F32, d);
  l.y = Tensor::empty(shape, DType::F32, d);
  l.weight = Tensor::full({l.C}, 1.0, DType::F32, d);
  l.bias = Tensor::zeros({l.C}, DType::F32, d);
  l.running_mean = Tensor::zeros({l.C}, DType::F32, d);
  l.running_var = Tensor::full({l.C}, 1.0, DType::F32, d);
  l.save_mean = Tensor::empty({l.C}, DType::F32, d);
  l.save_invstd = Tensor::empty({l.C}, DType::F32, d);
  l.channel_sums = Tensor::empty({2, l.C}, DType::F32, d);
  l.gweight = Tensor::zeros({l.C}, DType::F32, d);
  l.gbias = Tensor::zeros({l.C}, DType::F32, d);
  l.scratch_size = batch_norm_cuda_scratch_size(l.N, l.C, l.S);
  l.scratch = Tensor::empty({std::max<int64_t>(l.scratch_size, 1)}, DType::F64, d);
  return l;
}

void forward(Layer& l, bool with_y) {
  batch_norm_forward_cuda(l.x.data<float>(), l.weight.data<float>(), l.bias.data<float>(),
                          l.running_mean.data<float>(), l.running_var.data<float>(), l.N, l.C, l.S, true, 0.1f, 1e-5f,
                          with_y ? l.y.data<float>() : nullptr, l.save_mean.data<float>(), l.save_invstd.data<float>(),
                          l.scratch.data<double>(), l.scratch_size);
}

void backward(Layer& l) {
  batch_norm_backward_cuda(l.x.data<float>(), l.weight.data<float>(), l.save_mean.data<float>(),
                           l.save_invstd.data<float>(), l.gy.data<float>(), l.N, l.C, l.S, true,
                           l.channel_sums.data<float>(), l.gx.data<float>(), l.gweight.data<float>(),
                           l.gbias.data<float>(), l.scratch.data<double>(), l.scratch_size);
}

void set_counters(benchmark::State& state, const Layer& l, int64_t bytes_per_element) {
  const double bytes = double(l.N * l.C * l.S * bytes_per_element);
  state.SetBytesProcessed(int64_t(double(state.iterations()) * bytes));
  state.counters["GB/s"] = benchmark::Counter(double(state.iterations()) * bytes / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel("(" + std::to_string(l.N) + "," + std::to_string(l.C) + "," + std::to_string(l.S) + ")");
}

// mode 0: training forward with y; 1: statistics only; 2: backward (after one forward for the statistics).
void BM_BatchNormCuda(benchmark::State& state, int mode) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  Layer l = make_layer(state.range(0));
  forward(l, true);
  if (mode == 2) {
    bench::time_on_gpu(state, [&] { backward(l); });
    set_counters(state, l, 24);
  } else {
    bench::time_on_gpu(state, [&] { forward(l, mode == 0); });
    set_counters(state, l, mode == 0 ? 16 : 8);
  }
#else
  (void)mode;
  bench::skip_without_cuda(state);
#endif
}

void args(benchmark::internal::Benchmark* b) { b->ArgName("layer")->DenseRange(0, 2); }

BENCHMARK_CAPTURE(BM_BatchNormCuda, forward_train, 0)->Apply(args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_BatchNormCuda, stats_only, 1)->Apply(args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_BatchNormCuda, backward_train, 2)->Apply(args)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
