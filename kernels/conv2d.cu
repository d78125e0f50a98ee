// CUDA conv2d through cuDNN's convolution API (see kernels/conv2d.h).
//
// Choices, and why:
// - float32 data and compute with CUDNN_FMA_MATH. CUDNN_DEFAULT_MATH would let cuDNN use TF32 tensor
//   cores on Ampere and later (10-bit mantissa), so the CUDA path would stop agreeing with the CPU
//   reference to float32 tolerance; FMA math restricts cuDNN to true fp32 kernels, and candidates that
//   report a tensor-op math type are skipped as well.
// - Algorithms from the cudnnGet*Algorithm_v7 heuristics (no benchmarking runs, so no hidden
//   synchronisation), keeping the best one that is deterministic and fits kMaxWorkspaceBytes: a run
//   with the same seed then gives the same bits, which the project promises. Chosen once per shape and
//   cached together with the descriptors.
// - Workspace is the caller's (the op glue takes it from the caching allocator, released in stream order:
//   every CUDA call here runs on the default stream), so a warm training step makes no cudaMalloc; the
//   *_workspace_bytes queries give the size the chosen algorithms need.
// - Backward uses beta = 1 everywhere: gradients accumulate into the buffers the tape hands us.
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/cuda_handles.h"
#include "kernels/conv2d.h"
#include "kernels/cuda_utils.cuh"

namespace spikegrad {

namespace {

constexpr size_t kMaxWorkspaceBytes = size_t(1) << 30;

// ---- RAII descriptors ----------------------------------------------------------------------------
struct TensorDescriptor {
  cudnnTensorDescriptor_t handle = nullptr;
  TensorDescriptor(int n, int c, int h, int w) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&handle));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(handle, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(handle); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
};

struct FilterDescriptor {
  cudnnFilterDescriptor_t handle = nullptr;
  FilterDescriptor(int k, int c, int r, int s) {
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&handle));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(handle, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, r, s));
  }
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(handle); }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
};

struct ConvolutionDescriptor {
  cudnnConvolutionDescriptor_t handle = nullptr;
  ConvolutionDescriptor(int pad, int stride) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&handle));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(handle, pad, pad, stride, stride, /*dilation*/ 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(handle, CUDNN_FMA_MATH));
  }
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(handle); }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
};

// ---- per-shape plan: descriptors + algorithms ----------------------------------------------------
struct ConvPlan {
  TensorDescriptor x, y, bias;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
  cudnnConvolutionFwdAlgo_t forward_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnConvolutionBwdDataAlgo_t backward_data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  cudnnConvolutionBwdFilterAlgo_t backward_filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  size_t forward_bytes = 0, backward_data_bytes = 0, backward_filter_bytes = 0;

  explicit ConvPlan(const Conv2dShape& s)
      : x(int(s.N), int(s.C), int(s.H), int(s.W)),
        y(int(s.N), int(s.K), int(s.P), int(s.Q)),
        bias(1, int(s.K), 1, 1),
        w(int(s.K), int(s.C), int(s.R), int(s.S)),
        conv(int(s.pad), int(s.stride)) {}
};

bool is_tensor_op_math(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// First heuristic candidate (they come best first) that ran the heuristic successfully, is
// deterministic, uses fp32 math and fits the workspace cap; `fallback` (deterministic, small
// workspace, supported for every fp32 NCHW shape) when none qualifies.
template <class Perf, class Algo>
Algo pick_algorithm(const std::vector<Perf>& candidates, int returned, Algo fallback) {
  for (int i = 0; i < returned; ++i) {
    const Perf& p = candidates[size_t(i)];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (is_tensor_op_math(p.mathType) || p.memory > kMaxWorkspaceBytes) continue;
    return p.algo;
  }
  return fallback;
}

void choose_algorithms(ConvPlan& plan) {
  cudnnHandle_t h = cudnn_handle();
  int max_count = 0, returned = 0;

  CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> forward(static_cast<size_t>(max_count));
  CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, plan.x.handle, plan.w.handle, plan.conv.handle, plan.y.handle,
                                                     max_count, &returned, forward.data()));
  plan.forward_algo = pick_algorithm(forward, returned, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, plan.x.handle, plan.w.handle, plan.conv.handle, plan.y.handle,
                                                      plan.forward_algo, &plan.forward_bytes));

  CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> data(static_cast<size_t>(max_count));
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, plan.w.handle, plan.y.handle, plan.conv.handle,
                                                          plan.x.handle, max_count, &returned, data.data()));
  plan.backward_data_algo = pick_algorithm(data, returned, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
  CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, plan.w.handle, plan.y.handle, plan.conv.handle,
                                                           plan.x.handle, plan.backward_data_algo,
                                                           &plan.backward_data_bytes));

  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> filter(static_cast<size_t>(max_count));
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, plan.x.handle, plan.y.handle, plan.conv.handle,
                                                            plan.w.handle, max_count, &returned, filter.data()));
  plan.backward_filter_algo = pick_algorithm(filter, returned, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
  CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, plan.x.handle, plan.y.handle, plan.conv.handle,
                                                             plan.w.handle, plan.backward_filter_algo,
                                                             &plan.backward_filter_bytes));
}

void check_fits_cudnn(const Conv2dShape& s) {
  const int64_t limit = int64_t(1) << 31;
  for (int64_t d : {s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.P, s.Q, s.stride, s.pad})
    SG_CHECK(d < limit, "conv2d (cuda): dimension " << d << " exceeds cuDNN's int range");
}

// Plans live for the whole process: a model uses a handful of shapes, and descriptors are tiny.
ConvPlan& plan_for(const Conv2dShape& s) {
  using Key = std::array<int64_t, 9>;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<ConvPlan>> plans;
  const Key key{s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride, s.pad};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it != plans.end()) return *it->second;

  check_fits_cudnn(s);
  auto plan = std::make_unique<ConvPlan>(s);
  int n = 0, k = 0, p = 0, q = 0;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(plan->conv.handle, plan->x.handle, plan->w.handle, &n, &k, &p, &q));
  SG_CHECK(n == s.N && k == s.K && p == s.P && q == s.Q,
           "conv2d (cuda): cuDNN computes output (" << n << "," << k << "," << p << "," << q << "), expected (" << s.N
                                                    << "," << s.K << "," << s.P << "," << s.Q << ")");
  choose_algorithms(*plan);
  return *plans.emplace(key, std::move(plan)).first->second;
}

void check_workspace(const char* op, size_t have, size_t need) {
  SG_CHECK(have >= need, op << ": the cuDNN workspace has " << have << " bytes, needs " << need
                            << " (size it with the pass's *_workspace_bytes query for the same shape)");
}

size_t backward_bytes(const ConvPlan& plan, bool want_gx, bool want_gw) {
  size_t bytes = 0;  // the passes run one after another, so they share one workspace
  if (want_gx) bytes = std::max(bytes, plan.backward_data_bytes);
  if (want_gw) bytes = std::max(bytes, plan.backward_filter_bytes);
  return bytes;
}

}  // namespace

size_t conv2d_forward_cuda_workspace_bytes(const Conv2dShape& s) { return plan_for(s).forward_bytes; }

size_t conv2d_backward_cuda_workspace_bytes(const Conv2dShape& s, bool want_gx, bool want_gw) {
  return backward_bytes(plan_for(s), want_gx, want_gw);
}

void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                         void* workspace, size_t workspace_bytes) {
  ConvPlan& plan = plan_for(s);
  check_workspace("conv2d_forward_cuda", workspace_bytes, plan.forward_bytes);
  cudnnHandle_t h = cudnn_handle();
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnConvolutionForward(h, &one, plan.x.handle, x, plan.w.handle, w, plan.conv.handle, plan.forward_algo,
                                      plan.forward_bytes ? workspace : nullptr, plan.forward_bytes, &zero,
                                      plan.y.handle, y));
  if (b) CUDNN_CHECK(cudnnAddTensor(h, &one, plan.bias.handle, b, &one, plan.y.handle, y));
}

void conv2d_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          const Conv2dShape& s, void* workspace, size_t workspace_bytes) {
  ConvPlan& plan = plan_for(s);
  const size_t bytes = backward_bytes(plan, gx != nullptr, gw != nullptr);
  check_workspace("conv2d_backward_cuda", workspace_bytes, bytes);
  cudnnHandle_t h = cudnn_handle();
  const float one = 1.f;  // alpha = 1 and beta = 1: accumulate
  void* scratch_ptr = bytes ? workspace : nullptr;
  if (gb) CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, plan.y.handle, gy, &one, plan.bias.handle, gb));
  if (gx)
    CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, plan.w.handle, w, plan.y.handle, gy, plan.conv.handle,
                                             plan.backward_data_algo, scratch_ptr, plan.backward_data_bytes, &one,
                                             plan.x.handle, gx));
  if (gw)
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, plan.x.handle, x, plan.y.handle, gy, plan.conv.handle,
                                               plan.backward_filter_algo, scratch_ptr, plan.backward_filter_bytes,
                                               &one, plan.w.handle, gw));
}

}  // namespace spikegrad
