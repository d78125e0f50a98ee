// Implicit-GEMM convolution, backward weight and bias (kernels/conv2d_igemm.h).
//
// gw: C(K, C·R·S) += gy(K, N·P·Q) · x_colᵀ. The reduction N·P·Q is huge (262144 at 64->128 @32x32)
// while C is small (128 x 576 = 5 tiles), so plan_igemm splits the reduction over blocks: each writes
// its partial tile to a workspace slice and igemm_sum_splits adds the slices in split order, then into
// gw. No float atomics, so the bits do not depend on block scheduling.
// gb[k] += Σ_{n,p,q} gy[n,k,p,q]: blocks (k, group of images) reduce in a fixed tree, a second kernel
// adds the group sums in group order.
#include <type_traits>

#include "kernels/block_reduce.cuh"
#include "kernels/conv2d_igemm.cuh"

namespace spikegrad {
namespace {

constexpr int kBiasThreads = 256;

// partial[k·groups + g] = Σ over images [g·per_group, min(N, (g+1)·per_group)) of gy[n, k, :, :].
__global__ void bias_grad_partial(const float* gy, int N, int K, int PQ, int groups, int per_group, float* partial) {
  const int k = blockIdx.x, g = blockIdx.y, tid = threadIdx.x;
  const int n_end = min(N, (g + 1) * per_group);
  // Thread tid reads elements tid, tid + 256, ... of the (n, pq) range, walking (n, pq) with a carry
  // instead of a division per element (N·P·Q < 2^31 is checked by to_conv_idx).
  const int dn = kBiasThreads / PQ, dpq = kBiasThreads % PQ;
  int n = g * per_group + tid / PQ, pq = tid % PQ;
  float sum = 0.f;
  while (n < n_end) {
    sum += gy[(int64_t(n) * K + k) * PQ + pq];
    pq += dpq;
    if (pq >= PQ) pq -= PQ, ++n;
    n += dn;
  }
  const float total = block_sum<kBiasThreads>(sum);  // fixed tree (kernels/block_reduce.cuh)
  if (tid == 0) partial[int64_t(k) * groups + g] = total;
}

__global__ void bias_grad_finish(const float* partial, int K, int groups, float* gb) {
  SG_GRID_STRIDE(k, K) {
    float total = 0.f;
    for (int g = 0; g < groups; ++g) total += partial[k * groups + g];
    gb[k] += total;
  }
}

// The bias reduction's image groups: enough (k, group) blocks for two per SM; one group when K alone fills
// the device.
struct BiasGroups {
  int groups, per_group;
};
BiasGroups bias_groups(const igemm::ConvIdx& s) {
  const int64_t want = std::max<int64_t>(1, ceil_div(2 * igemm::igemm_sm_count(), s.K));
  const int per_group = int(ceil_div(s.N, std::min<int64_t>(want, s.N)));
  return {int(ceil_div(s.N, per_group)), per_group};
}
size_t bias_partial_bytes(const igemm::ConvIdx& s) {
  return size_t(s.K) * size_t(bias_groups(s).groups) * sizeof(float);
}

// partial: bias_partial_bytes(s) of device memory.
void bias_grad(const float* gy, float* gb, const igemm::ConvIdx& s, float* partial) {
  const BiasGroups b = bias_groups(s);
  SG_CHECK(s.K <= 0x7fffffff && b.groups <= 65535, "conv2d_igemm_backward_weight: bias grid too large");
  bias_grad_partial<<<dim3(unsigned(s.K), unsigned(b.groups)), kBiasThreads>>>(gy, s.N, s.K, s.P * s.Q, b.groups,
                                                                               b.per_group, partial);
  SG_LAUNCH_CHECK();
  SG_LAUNCH_1D(bias_grad_finish, s.K, partial, s.K, b.groups, gb);
}

}  // namespace

// Workspace layout: the split-K partials of gw (igemm_workspace_bytes), then the bias partials.
size_t conv2d_igemm_backward_weight_workspace_bytes(const Conv2dShape& s, ConvMath math, bool want_gw, bool want_gb) {
  const igemm::ConvIdx idx = igemm::to_conv_idx(s, "conv2d_igemm_backward_weight");
  if (s.N * s.P * s.Q == 0 || s.K == 0) return 0;
  return (want_gw ? igemm::igemm_workspace_bytes<igemm::WgradView>(idx, math == ConvMath::tf32) : 0) +
         (want_gb ? bias_partial_bytes(idx) : 0);
}

template <class TIn>
void conv2d_igemm_backward_weight_cuda(const TIn* x, float x_scale, const float* gy, float* gw, float* gb,
                                       const Conv2dShape& s, ConvMath math, void* workspace, size_t workspace_bytes) {
  const char* op = "conv2d_igemm_backward_weight";
  const igemm::ConvIdx idx = igemm::to_conv_idx(s, op);
  if constexpr (std::is_same_v<TIn, float>)
    SG_CHECK(x_scale == 1.f, op << ": x_scale must be 1 for float x, got " << x_scale);
  if (s.N * s.P * s.Q == 0 || s.K == 0) return;  // empty reduction: gw and gb keep their values
  const size_t gw_bytes = gw ? igemm::igemm_workspace_bytes<igemm::WgradView>(idx, math == ConvMath::tf32) : 0;
  if (gb) {
    SG_CHECK(workspace != nullptr && workspace_bytes >= gw_bytes + bias_partial_bytes(idx),
             op << ": the workspace has " << workspace_bytes << " bytes, needs " << gw_bytes + bias_partial_bytes(idx)
                << " (size it with conv2d_igemm_backward_weight_workspace_bytes)");
    bias_grad(gy, gb, idx, reinterpret_cast<float*>(static_cast<char*>(workspace) + gw_bytes));
  }
  if (gw)
    igemm::run_igemm<igemm::WgradView>(idx, gy, 1.f, x, x_scale, gw, nullptr, 1, /*accumulate*/ true,
                                       math == ConvMath::tf32, workspace, workspace_bytes, op);
}

template void conv2d_igemm_backward_weight_cuda<float>(const float*, float, const float*, float*, float*,
                                                       const Conv2dShape&, ConvMath, void*, size_t);
template void conv2d_igemm_backward_weight_cuda<uint8_t>(const uint8_t*, float, const float*, float*, float*,
                                                         const Conv2dShape&, ConvMath, void*, size_t);

}  // namespace spikegrad
