// Which SGEMM for the CPU convolution (issue 19 item 2: "measure Eigen (native ISA) against oneDNN and OpenBLAS
// on the zoo's conv shapes forward, backward-data and backward-weight"). Per pass and shape, four rows (`impl`):
//   0 eigen              im2col + Eigen GEMM, the engine's own path (conv2d_*_im2col_cpu in kernels/conv2d.h)
//   1 openblas           the same loop with cblas_sgemm in place of Eigen's product: im2col_cpu / col2im_add_cpu,
//                        OpenMP over images, OpenBLAS on one thread inside (as Eigen stays serial inside the
//                        region), per-thread dW slabs reduced in thread order
//   2 openblas_threaded  the images one after another, OpenBLAS threading each GEMM over all threads (one
//                        parallel region per GEMM instead of one per pass: which of 1 and 2 is faster depends on
//                        how big a single image's GEMM is)
//   3 onednn             oneDNN on its blocked layouts, reorders in and out included (conv2d_*_onednn with
//                        OnednnLayout::blocked): the layout kernels/conv2d_cpu.cpp adopted for every float pass except
//                        the input gradient below C = 16, which training runs on Eigen (row 0). Called directly, not
//                        through conv2d_forward_cpu, so that the op path's other choices do not enter these rows.
//                        Only in builds with oneDNN (SPIKEGRAD_WITH_ONEDNN); otherwise SkipWithError.
// Rows 1 and 2 exist only when CMake found OpenBLAS (Debian libopenblas-dev; SPIKEGRAD_BENCH_OPENBLAS, set for this
// benchmark alone: the engine never links it); otherwise they SkipWithError. Before timing, each OpenBLAS row
// computes its pass once next to Eigen's on the same inputs and skips with an error unless they agree to float
// rounding: |a − b| ≤ 1e-5·|b| + 8·2⁻²⁴·n, n the pass's reduction length (tests/test_conv2d_onednn.cpp's bound).
//
// Threads: OMP_NUM_THREADS for Eigen, oneDNN and row 1's loop; row 2 sets OpenBLAS to omp_get_max_threads(), row 1
// to 1. Debian's default OpenBLAS (libopenblas0-pthread) runs its own pthread pool, separate from libgomp's; its
// workers spin for a while after each call, so the threaded rows are registered last, after every other row.
// The run's context (console header, JSON "context") names the OpenBLAS build: openblas_config
// (openblas_get_config, with the core it dispatched to) and openblas_parallel (openblas_get_parallel: 0 serial,
// 1 pthreads, 2 OpenMP).
//
// Shapes: the zoo's CPU training shapes of bench_conv's BM_conv2d_cpu_* (bench/cpu_conv_shapes.h), T
// folded into the batch: VGGSNN's eight convs on CIFAR at T = 4, B = 16 (N = 64), small_cnn's two on
// Fashion-MNIST at T = 4, B = 64 (N = 256). Arguments: N, C, HW, K, RS, stride, pad, impl.
// Counter "GFLOP" is 2·N·K·C·R·S·P·Q per pass (kernels/conv2d.h conv2d_flops) as a rate, i.e. GFLOP/s; the bias
// and its gradient are not counted. Each row runs its pass once before timing (first touch, oneDNN's primitive
// creation, OpenBLAS's buffers), as a training step would have.
// Command for docs/perf.md: OMP_NUM_THREADS=2 build/bench/bench_conv_gemm --benchmark_min_time=0.1
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "bench/cpu_conv_shapes.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "kernels/conv2d.h"
#ifdef SPIKEGRAD_ONEDNN
#include "kernels/conv2d_onednn.h"
#endif

#ifdef SPIKEGRAD_BENCH_OPENBLAS
#include <cblas.h>
#ifndef OPENBLAS_VERSION
#error "bench_conv_gemm: <cblas.h> is not OpenBLAS's (bench/CMakeLists.txt should put OpenBLAS's include folder first)"
#endif
#endif

namespace spikegrad {
namespace {

enum class Pass { forward, backward_data, backward_weight };
enum Impl { kEigen = 0, kOpenblas = 1, kOpenblasThreaded = 2, kOnednn = 3 };

Conv2dShape shape_from(const benchmark::State& state) {
  return make_conv2d_shape(state.range(0), state.range(1), state.range(2), state.range(2), state.range(3),
                           state.range(4), state.range(4), state.range(5), state.range(6));
}

// The pass's inputs (seeded normals) and its outputs; gradients start at zero and accumulate (+=) call after call,
// which costs the same every call.
struct PassTensors {
  Tensor x, w, b, gy, y, gx, gw, gb;
};
PassTensors make_tensors(const Conv2dShape& s) {
  Generator gen(1234);
  PassTensors t;
  t.x = rand_normal({s.N, s.C, s.H, s.W}, gen, Device::CPU);
  t.w = rand_normal({s.K, s.C, s.R, s.S}, gen, Device::CPU);
  t.b = rand_normal({s.K}, gen, Device::CPU);
  t.gy = rand_normal({s.N, s.K, s.P, s.Q}, gen, Device::CPU);
  t.y = Tensor::zeros({s.N, s.K, s.P, s.Q}, DType::F32, Device::CPU);
  t.gx = Tensor::zeros(t.x.shape(), DType::F32, Device::CPU);
  t.gw = Tensor::zeros(t.w.shape(), DType::F32, Device::CPU);
  t.gb = Tensor::zeros(t.b.shape(), DType::F32, Device::CPU);
  return t;
}

void run_eigen(Pass pass, PassTensors& t, const Conv2dShape& s) {
  const float *x = t.x.data<float>(), *w = t.w.data<float>(), *gy = t.gy.data<float>();
  switch (pass) {
    case Pass::forward: conv2d_forward_im2col_cpu<float>(x, w, t.b.data<float>(), t.y.data<float>(), s); break;
    case Pass::backward_data:
      conv2d_backward_im2col_cpu<float>(x, w, gy, t.gx.data<float>(), nullptr, nullptr, s);
      break;
    case Pass::backward_weight:
      conv2d_backward_im2col_cpu<float>(x, w, gy, nullptr, t.gw.data<float>(), t.gb.data<float>(), s);
      break;
  }
}

#ifdef SPIKEGRAD_ONEDNN
void run_onednn(Pass pass, PassTensors& t, const Conv2dShape& s) {
  const float *x = t.x.data<float>(), *w = t.w.data<float>(), *gy = t.gy.data<float>();
  constexpr OnednnLayout blocked = OnednnLayout::blocked;
  switch (pass) {
    case Pass::forward: conv2d_forward_onednn(x, w, t.b.data<float>(), t.y.data<float>(), s, blocked); break;
    case Pass::backward_data: conv2d_backward_data_onednn(w, gy, t.gx.data<float>(), s, blocked); break;
    case Pass::backward_weight:
      conv2d_backward_weight_onednn(x, gy, t.gw.data<float>(), t.gb.data<float>(), s, blocked);
      break;
  }
}
#endif

#ifdef SPIKEGRAD_BENCH_OPENBLAS
// The im2col of a 1x1, stride-1, unpadded convolution is the image itself (as in kernels/conv2d_cpu.cpp).
bool is_pointwise(const Conv2dShape& s) { return s.R == 1 && s.S == 1 && s.stride == 1 && s.pad == 0; }

// Row-major C (m×n) = alpha·op(A)·op(B) + beta·C, op = transpose where asked.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m), int(n),
              int(k), 1.f, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

// The three passes as conv2d_forward_im2col_cpu / conv2d_backward_im2col_cpu run them (same buffers, same loop,
// same reduction order of the dW slabs), each Eigen product replaced by one cblas_sgemm. `parallel_images`: the
// OpenMP loop over images (row 1) or a serial loop whose GEMMs OpenBLAS threads itself (row 2).
void forward_openblas(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                      bool parallel_images) {
  const int64_t CRS = s.C * s.R * s.S, PQ = s.P * s.Q, image_size = s.C * s.H * s.W;
  const bool pointwise = is_pointwise(s);
#pragma omp parallel if (parallel_images && s.N > 1)
  {
    std::vector<float> col_buffer(pointwise ? 0 : size_t(CRS * PQ));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const float* col = x + n * image_size;
      if (!pointwise) {
        im2col_cpu(col, col_buffer.data(), s);
        col = col_buffer.data();
      }
      float* out = y + n * s.K * PQ;
      sgemm(false, false, s.K, PQ, CRS, w, CRS, col, PQ, 0.f, out, PQ);  // Y_n = W · col
      if (b)
        for (int64_t k = 0; k < s.K; ++k)
          for (int64_t i = 0; i < PQ; ++i) out[k * PQ + i] += b[k];
    }
  }
}

void backward_data_openblas(const float* w, const float* gy, float* gx, const Conv2dShape& s, bool parallel_images) {
  const int64_t CRS = s.C * s.R * s.S, PQ = s.P * s.Q, image_size = s.C * s.H * s.W;
  const bool pointwise = is_pointwise(s);
#pragma omp parallel if (parallel_images && s.N > 1)
  {
    std::vector<float> col_buffer(pointwise ? 0 : size_t(CRS * PQ));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const float* gy_n = gy + n * s.K * PQ;
      if (pointwise) {
        sgemm(true, false, s.C, PQ, s.K, w, CRS, gy_n, PQ, 1.f, gx + n * image_size, PQ);  // gx_n += Wᵀ · GY_n
      } else {
        sgemm(true, false, CRS, PQ, s.K, w, CRS, gy_n, PQ, 0.f, col_buffer.data(), PQ);  // col = Wᵀ · GY_n
        col2im_add_cpu(col_buffer.data(), gx + n * image_size, s);
      }
    }
  }
}

void backward_weight_openblas(const float* x, const float* gy, float* gw, float* gb, const Conv2dShape& s,
                              bool parallel_images) {
  const int64_t CRS = s.C * s.R * s.S, PQ = s.P * s.Q, image_size = s.C * s.H * s.W, weight_count = s.K * CRS;
  const bool pointwise = is_pointwise(s);
  const int slabs = parallel_images ? int(std::min<int64_t>(omp_get_max_threads(), s.N)) : 1;
  std::vector<float> dw_partials(size_t(slabs) * size_t(weight_count), 0.f);
#pragma omp parallel if (parallel_images && s.N > 1) num_threads(slabs)
  {
    float* dw_local = dw_partials.data() + size_t(omp_get_thread_num()) * size_t(weight_count);
    std::vector<float> col_buffer(pointwise ? 0 : size_t(CRS * PQ));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const float* col = x + n * image_size;
      if (!pointwise) {
        im2col_cpu(col, col_buffer.data(), s);
        col = col_buffer.data();
      }
      sgemm(false, true, s.K, CRS, PQ, gy + n * s.K * PQ, PQ, col, PQ, 1.f, dw_local, CRS);  // dW += GY_n · colᵀ
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < weight_count; ++i) {
    float acc = 0.f;
    for (int t = 0; t < slabs; ++t) acc += dw_partials[size_t(t) * size_t(weight_count) + size_t(i)];
    gw[i] += acc;
  }
  conv2d_backward_im2col_cpu<float>(nullptr, nullptr, gy, nullptr, nullptr, gb, s);  // the bias gradient: no GEMM
}

void run_openblas(Pass pass, PassTensors& t, const Conv2dShape& s, bool parallel_images) {
  switch (pass) {
    case Pass::forward:
      forward_openblas(t.x.data<float>(), t.w.data<float>(), t.b.data<float>(), t.y.data<float>(), s, parallel_images);
      break;
    case Pass::backward_data:
      backward_data_openblas(t.w.data<float>(), t.gy.data<float>(), t.gx.data<float>(), s, parallel_images);
      break;
    case Pass::backward_weight:
      backward_weight_openblas(t.x.data<float>(), t.gy.data<float>(), t.gw.data<float>(), t.gb.data<float>(), s,
                               parallel_images);
      break;
  }
}

// The pass once with OpenBLAS and once with Eigen on fresh outputs; an empty string when they agree to float
// rounding, else what differs.
std::string openblas_mismatch(Pass pass, const Conv2dShape& s, bool parallel_images) {
  PassTensors ours = make_tensors(s), eigen = make_tensors(s);
  run_openblas(pass, ours, s, parallel_images);
  run_eigen(pass, eigen, s);
  const int64_t reduction = pass == Pass::forward         ? s.C * s.R * s.S
                            : pass == Pass::backward_data ? s.K * s.R * s.S
                                                          : s.N * s.P * s.Q;
  const double atol = 8.0 * 0x1p-24 * double(reduction), rtol = 1e-5;
  const std::array<std::pair<const char*, std::pair<const Tensor*, const Tensor*>>, 4> outputs{
      {{"y", {&ours.y, &eigen.y}},
       {"gx", {&ours.gx, &eigen.gx}},
       {"gw", {&ours.gw, &eigen.gw}},
       {"gb", {&ours.gb, &eigen.gb}}}};
  for (const auto& [name, pair] : outputs) {
    const float *a = pair.first->data<float>(), *b = pair.second->data<float>();
    for (int64_t i = 0; i < pair.first->numel(); ++i)
      if (!(std::fabs(double(a[i]) - double(b[i])) <= rtol * std::fabs(double(b[i])) + atol))
        return std::string("OpenBLAS and Eigen differ: ") + name + "[" + std::to_string(i) +
               "] = " + std::to_string(a[i]) + " vs " + std::to_string(b[i]) + " (atol " + std::to_string(atol) + ")";
  }
  return {};
}
#endif  // SPIKEGRAD_BENCH_OPENBLAS

void run_pass_benchmark(benchmark::State& state, Pass pass) {
  const Conv2dShape s = shape_from(state);
  const int impl = int(state.range(7));
  PassTensors t = make_tensors(s);
  auto timed = [&] {
    switch (impl) {
      case kEigen: run_eigen(pass, t, s); break;
#ifdef SPIKEGRAD_ONEDNN
      case kOnednn: run_onednn(pass, t, s); break;
#endif
#ifdef SPIKEGRAD_BENCH_OPENBLAS
      case kOpenblas:
      case kOpenblasThreaded: run_openblas(pass, t, s, impl == kOpenblas); break;
#endif
      default: break;
    }
  };
#ifndef SPIKEGRAD_ONEDNN
  if (impl == kOnednn) return state.SkipWithError("built without oneDNN (SPIKEGRAD_WITH_ONEDNN)");
#endif
  if (impl == kOpenblas || impl == kOpenblasThreaded) {
#ifdef SPIKEGRAD_BENCH_OPENBLAS
    openblas_set_num_threads(impl == kOpenblas ? 1 : omp_get_max_threads());
    const std::string mismatch = openblas_mismatch(pass, s, impl == kOpenblas);
    if (!mismatch.empty()) return state.SkipWithError(mismatch.c_str());
#else
    return state.SkipWithError("built without OpenBLAS (Debian libopenblas-dev; bench/CMakeLists.txt)");
#endif
  }
  timed();  // first touch, primitive creation, library buffers: outside the timing
  for (auto _ : state) {
    timed();
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(conv2d_flops(s) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  static const char* const kImplNames[] = {"eigen", "openblas", "openblas_threaded", "onednn"};
  state.SetLabel(std::string(kImplNames[impl]) + " " + std::to_string(s.C) + "->" + std::to_string(s.K) + " @" +
                 std::to_string(s.H) + " s" + std::to_string(s.stride));
}

void BM_conv_gemm_forward(benchmark::State& state) { run_pass_benchmark(state, Pass::forward); }
void BM_conv_gemm_backward_data(benchmark::State& state) { run_pass_benchmark(state, Pass::backward_data); }
void BM_conv_gemm_backward_weight(benchmark::State& state) { run_pass_benchmark(state, Pass::backward_weight); }

void per_image_rows(benchmark::internal::Benchmark* b) { bench::add_zoo_cpu_shapes(b, {kEigen, kOpenblas, kOnednn}); }
void threaded_gemm_rows(benchmark::internal::Benchmark* b) { bench::add_zoo_cpu_shapes(b, {kOpenblasThreaded}); }

BENCHMARK(BM_conv_gemm_forward)->Apply(per_image_rows);
BENCHMARK(BM_conv_gemm_backward_data)->Apply(per_image_rows);
BENCHMARK(BM_conv_gemm_backward_weight)->Apply(per_image_rows);
// Last: OpenBLAS's pthread workers keep spinning for a while after a threaded call and would slow the rows after.
BENCHMARK(BM_conv_gemm_forward)->Apply(threaded_gemm_rows);
BENCHMARK(BM_conv_gemm_backward_data)->Apply(threaded_gemm_rows);
BENCHMARK(BM_conv_gemm_backward_weight)->Apply(threaded_gemm_rows);

}  // namespace
}  // namespace spikegrad

int main(int argc, char** argv) {
#ifdef SPIKEGRAD_BENCH_OPENBLAS
  benchmark::AddCustomContext("openblas_config",
                              std::string(openblas_get_config()) + " core " + openblas_get_corename());
  benchmark::AddCustomContext("openblas_parallel", std::to_string(openblas_get_parallel()));
#else
  benchmark::AddCustomContext("openblas_config", "not built in (the openblas rows report an error)");
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
