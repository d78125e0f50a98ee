// The TMI term: KDE mutual information forward + backward, fused (windowed, kernels/kde_mi.h) next to the
// dense formulation of the reference code (full (T,256) kernels, (256,256) joint per sample), in one run.
//
// Shapes: B = 64, T in {4, 8} (arg 0). Rates are those of VGGSNN's taps: X = layer 1 (64x32x32 per step),
// Z = layer 8 (512x2x2 per step), at firing probabilities around 0.1-0.2 (rates 25-50 in x255 units).
//   BM_KdeMi{Fused,Dense}{Cpu,Cuda}: rates (T,B) -> batch-mean MI -> gradients w.r.t. both rate tensors.
//     Dense CUDA = the reference's formulation on the GPU: Kx^T Kz by cublasSgemmStridedBatched, entropies
//     over the full joints, and the backward as two more batched GEMMs (dKx = D Kz, dKz = D^T Kx).
//     Work per step at T=4: fused ~ B*T^2*window^2*2 = 100k cell evaluations; dense ~ B*256^2*T*3 = 50M FMAs
//     plus 16 MiB of joint moved ~6 times. Target (GPU): fused >= 20x faster than dense.
//   BM_TmiChain{Cpu,Cuda}: the whole term through the public ops on binary spike taps -- firing rates of X
//     (T,64,64,32,32) and Z (T,64,512,2,2), MI, tape backward into both taps. Dominated by reading X
//     (T*16.8 MB) and writing its gradient; compare with a VGGSNN training step (target: < 2% of it at T=4).
// CUDA times are CUDA events around each iteration (UseManualTime); without a GPU those benchmarks skip.
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <cstdint>
#include <vector>

#include "engine/cuda_context.h"
#include "engine/ops.h"
#include "kernels/kde_mi.h"
#ifdef SPIKEGRAD_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda_check.h"
#endif

namespace {

using namespace spikegrad;

constexpr int64_t kBatch = 64;

// Deterministic pseudo-random in [0,1) (a hash, so CPU and CUDA runs see the same numbers).
double unit(uint64_t i) {
  i = (i + 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
  i ^= i >> 31;
  return double(i >> 11) * (1.0 / 9007199254740992.0);
}

// Rates (T,B) in x255 units: firing probability p plus a uniform jitter of width `spread` over time and batch.
std::vector<float> tap_rates(int64_t T, double p, double spread, uint64_t seed) {
  std::vector<float> r(size_t(T * kBatch));
  for (size_t k = 0; k < r.size(); ++k) r[k] = float(255.0 * (p + spread * (unit(seed * 1000003 + k) - 0.5)));
  return r;
}

void label(benchmark::State& state, int64_t T) { state.SetLabel("T=" + std::to_string(T) + " B=64"); }

// ---- CPU: rates -> MI -> rate gradients --------------------------------------------------------------------
void run_kde_cpu(benchmark::State& state, bool dense) {
  const int64_t T = state.range(0);
  const KdeMiParams p = kde_mi_params(T, kBatch, 256, 0.32, 1e-10, false);
  const std::vector<float> x = tap_rates(T, 0.12, 0.02, 1), z = tap_rates(T, 0.2, 0.1, 2);
  std::vector<float> stats(size_t(kBatch * kKdeStatCount)), gx(x.size()), gz(z.size());
  float mean = 0, one = 1;
  for (auto _ : state) {
    if (dense) {
      kde_mi_dense_cpu<float>(x.data(), z.data(), stats.data(), &mean, &one, gx.data(), gz.data(), p);
    } else {
      kde_mi_forward_cpu<float>(x.data(), z.data(), stats.data(), &mean, p);
      kde_mi_backward_cpu<float>(x.data(), z.data(), stats.data(), &one, gx.data(), gz.data(), p);
    }
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  state.counters["MI_bits"] = mean;
  label(state, T);
}
void BM_KdeMiFusedCpu(benchmark::State& state) { run_kde_cpu(state, false); }
void BM_KdeMiDenseCpu(benchmark::State& state) { run_kde_cpu(state, true); }

// The whole chain on the CPU through the ops (float32 taps).
Tensor binary_spikes(const Shape& shape, double p, uint64_t seed) {
  std::vector<float> v(size_t(shape_numel(shape)));
  for (size_t k = 0; k < v.size(); ++k) v[k] = unit(seed * 1000003 + k) < p ? 1.f : 0.f;
  return Tensor::from_vector(v, shape);
}

void run_chain(benchmark::State& state, Device device) {
  const int64_t T = state.range(0);
  Tensor sx = binary_spikes({T, kBatch, 64, 32, 32}, 0.12, 3).to(device);
  Tensor sz = binary_spikes({T, kBatch, 512, 2, 2}, 0.2, 4).to(device);
  sx.set_requires_grad(true);
  sz.set_requires_grad(true);
  auto step = [&] {
    Tape tape;
    Tensor mi = ops::kde_mutual_information(tape, ops::firing_rate(tape, sx), ops::firing_rate(tape, sz));
    return tape.grad(mi, {sx, sz});
  };
  step();  // warm the caching allocator
#ifdef SPIKEGRAD_CUDA
  if (device == Device::CUDA) {
    bench::GpuTimer timer;
    for (auto _ : state) state.SetIterationTime(timer.ms(step) * 1e-3);
  }
#endif
  if (device == Device::CPU)
    for (auto _ : state) {
      std::vector<Tensor> g = step();
      benchmark::DoNotOptimize(g[0].raw_data());
    }
  // Minimum traffic: read both taps forward, write both tap gradients (read+write for the += contract).
  const double bytes = double(sx.nbytes() + sz.nbytes()) * 3;
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  label(state, T);
}
void BM_TmiChainCpu(benchmark::State& state) { run_chain(state, Device::CPU); }

// ---- CUDA ------------------------------------------------------------------------------------------------
void run_kde_cuda(benchmark::State& state, bool dense) {
  if (bench::skip_without_cuda(state)) return;
#ifdef SPIKEGRAD_CUDA
  const int64_t T = state.range(0);
  const KdeMiParams p = kde_mi_params(T, kBatch, 256, 0.32, 1e-10, false);
  const Tensor x = Tensor::from_vector(tap_rates(T, 0.12, 0.02, 1), {T, kBatch}).to(Device::CUDA);
  const Tensor z = Tensor::from_vector(tap_rates(T, 0.2, 0.1, 2), {T, kBatch}).to(Device::CUDA);
  Tensor stats = Tensor::empty({kBatch, kKdeStatCount}, DType::F32, Device::CUDA);
  Tensor mean = Tensor::empty({}, DType::F32, Device::CUDA), one = Tensor::full({}, 1.0, DType::F32, Device::CUDA);
  Tensor gx = Tensor::zeros({T, kBatch}, DType::F32, Device::CUDA), gz = Tensor::zeros({T, kBatch}, DType::F32, Device::CUDA);
  Tensor ws;
  if (dense) ws = Tensor::empty({kde_mi_dense_workspace_floats(p)}, DType::F32, Device::CUDA);
  auto step = [&] {
    if (dense) {
      kde_mi_dense_forward_cuda(x.data<float>(), z.data<float>(), stats.data<float>(), mean.data<float>(),
                                ws.data<float>(), p);
      kde_mi_dense_backward_cuda(x.data<float>(), z.data<float>(), stats.data<float>(), one.data<float>(),
                                 gx.data<float>(), gz.data<float>(), ws.data<float>(), p);
    } else {
      kde_mi_forward_cuda(x.data<float>(), z.data<float>(), stats.data<float>(), mean.data<float>(), p);
      kde_mi_backward_cuda(x.data<float>(), z.data<float>(), stats.data<float>(), one.data<float>(), gx.data<float>(),
                           gz.data<float>(), p);
    }
  };
  bench::time_on_gpu(state, step);  // the untimed first call lets cuBLAS pick its kernels
  state.counters["MI_bits"] = mean.item();
  label(state, T);
#endif
}
void BM_KdeMiFusedCuda(benchmark::State& state) { run_kde_cuda(state, false); }
void BM_KdeMiDenseCuda(benchmark::State& state) { run_kde_cuda(state, true); }

void BM_TmiChainCuda(benchmark::State& state) {
  if (bench::skip_without_cuda(state)) return;
  run_chain(state, Device::CUDA);
}

}  // namespace

BENCHMARK(BM_KdeMiFusedCpu)->Arg(4)->Arg(8)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KdeMiDenseCpu)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KdeMiFusedCuda)->Arg(4)->Arg(8)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KdeMiDenseCuda)->Arg(4)->Arg(8)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TmiChainCpu)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TmiChainCuda)->Arg(4)->Arg(8)->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
