// Implicit-GEMM convolution, forward and backward data (kernels/conv2d_igemm.h; the kernel template is
// in kernels/conv2d_igemm.cuh, backward weight in kernels/conv2d_igemm_wgrad.cu).
//
// Napkin math (H100 SXM, fp32 FFMA peak ~67 TFLOP/s, HBM ~3.3 TB/s), VGGSNN at N = T·B = 256:
//   64->128 @32x32: 2·262144·128·576 = 38.7 GFLOP forward, reads x 67 MB (gathered 9x, mostly from
//   L1/L2) and writes y 134 MB: compute-bound (~0.6 ms at 60 TFLOP/s vs ~0.06 ms of traffic).
//   3->64 @32x32: C·R·S = 27, so 2·262144·64·27 = 0.9 GFLOP against 67 MB of y: memory-bound; the
//   uint8 spike input path does not apply there (the first layer sees the analog image).
//   512->512 @4x4: M = 4096 rows only: 128x128 tiles give 128 blocks for 132 SMs, so the planner
//   splits the 4608-deep reduction (see plan_igemm).
#include <type_traits>

#include "kernels/conv2d_igemm.cuh"

namespace spikegrad {
namespace igemm {

__global__ void igemm_sum_splits(const float* ws, int splits, int64_t numel, float* c, const float* bias,
                                 int64_t bias_div, int64_t bias_mod, bool accumulate) {
  SG_GRID_STRIDE(i, numel) {
    float sum = 0.f;
    for (int split = 0; split < splits; ++split) sum += ws[split * numel + i];  // fixed order: deterministic
    if (bias) sum += bias[(i / bias_div) % bias_mod];
    c[i] = accumulate ? c[i] + sum : sum;
  }
}

}  // namespace igemm

template <class TIn>
void conv2d_igemm_forward_cuda(const TIn* x, float x_scale, const float* w, const float* b, float* y,
                               const Conv2dShape& s, ConvMath math, void* workspace, size_t workspace_bytes) {
  const char* op = "conv2d_igemm_forward";
  const igemm::ConvIdx idx = igemm::to_conv_idx(s, op);
  if constexpr (std::is_same_v<TIn, float>)
    SG_CHECK(x_scale == 1.f, op << ": x_scale must be 1 for float x, got " << x_scale);
  igemm::run_igemm<igemm::FwdView>(idx, x, x_scale, w, 1.f, y, b, /*bias_div*/ s.P * s.Q, /*accumulate*/ false,
                                   math == ConvMath::tf32, workspace, workspace_bytes, op);
}

size_t conv2d_igemm_forward_workspace_bytes(const Conv2dShape& s, ConvMath math) {
  return igemm::igemm_workspace_bytes<igemm::FwdView>(igemm::to_conv_idx(s, "conv2d_igemm_forward"),
                                                      math == ConvMath::tf32);
}

void conv2d_igemm_backward_data_cuda(const float* w, const float* gy, float* gx, const Conv2dShape& s, ConvMath math,
                                     void* workspace, size_t workspace_bytes) {
  const char* op = "conv2d_igemm_backward_data";
  const igemm::ConvIdx idx = igemm::to_conv_idx(s, op);
  if (s.N * s.P * s.Q == 0 || s.K == 0) return;  // nothing reaches gx: it keeps its values
  igemm::run_igemm<igemm::DgradView>(idx, gy, 1.f, w, 1.f, gx, nullptr, 1, /*accumulate*/ true, math == ConvMath::tf32,
                                     workspace, workspace_bytes, op);
}

size_t conv2d_igemm_backward_data_workspace_bytes(const Conv2dShape& s, ConvMath math) {
  return igemm::igemm_workspace_bytes<igemm::DgradView>(igemm::to_conv_idx(s, "conv2d_igemm_backward_data"),
                                                        math == ConvMath::tf32);
}

template void conv2d_igemm_forward_cuda<float>(const float*, float, const float*, const float*, float*,
                                               const Conv2dShape&, ConvMath, void*, size_t);
template void conv2d_igemm_forward_cuda<uint8_t>(const uint8_t*, float, const float*, const float*, float*,
                                                 const Conv2dShape&, ConvMath, void*, size_t);

}  // namespace spikegrad
