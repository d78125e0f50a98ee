// Implicit-GEMM convolution, backward weight and bias (kernels/conv2d_igemm.h).
//
// gw: C(K, C·R·S) += gy(K, N·P·Q) · x_colᵀ. The reduction N·P·Q is huge (262144 at 64->128 @32x32)
// while C is small (128 x 576 = 5 tiles), so plan_igemm splits the reduction over blocks: each writes
// its partial tile to a workspace slice and igemm_sum_splits adds the slices in split order, then into
// gw. No float atomics, so the bits do not depend on block scheduling.
// gb[k] += Σ_{n,p,q} gy[n,k,p,q]: blocks (k, group of images) reduce in a fixed tree, a second kernel
// adds the group sums in group order.
#include <type_traits>

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
  // Fixed-shape tree: warp shuffles, then warp sums added in warp order.
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  __shared__ float warp_sums[kBiasThreads / 32];
  if ((tid & 31) == 0) warp_sums[tid >> 5] = sum;
  __syncthreads();
  if (tid == 0) {
    float total = 0.f;
    for (int w = 0; w < kBiasThreads / 32; ++w) total += warp_sums[w];
    partial[int64_t(k) * groups + g] = total;
  }
}

__global__ void bias_grad_finish(const float* partial, int K, int groups, float* gb) {
  SG_GRID_STRIDE(k, K) {
    float total = 0.f;
    for (int g = 0; g < groups; ++g) total += partial[k * groups + g];
    gb[k] += total;
  }
}

void bias_grad(const float* gy, float* gb, const igemm::ConvIdx& s) {
  // Enough (k, group) blocks for two per SM; one group when K alone fills the device.
  const int64_t want = std::max<int64_t>(1, ceil_div(2 * igemm::igemm_sm_count(), s.K));
  const int per_group = int(ceil_div(s.N, std::min<int64_t>(want, s.N)));
  const int groups = int(ceil_div(s.N, per_group));
  SG_CHECK(s.K <= 0x7fffffff && groups <= 65535, "conv2d_igemm_backward_weight: bias grid too large");
  Tensor partial = Tensor::empty({int64_t(s.K) * groups}, DType::F32, Device::CUDA);
  bias_grad_partial<<<dim3(unsigned(s.K), unsigned(groups)), kBiasThreads>>>(gy, s.N, s.K, s.P * s.Q, groups, per_group,
                                                                             partial.data<float>());
  SG_LAUNCH_CHECK();
  SG_LAUNCH_1D(bias_grad_finish, s.K, partial.data<float>(), s.K, groups, gb);
}

}  // namespace

template <class TIn>
void conv2d_igemm_backward_weight_cuda(const TIn* x, float x_scale, const float* gy, float* gw, float* gb,
                                       const Conv2dShape& s, ConvMath math) {
  const igemm::ConvIdx idx = igemm::to_conv_idx(s, "conv2d_igemm_backward_weight");
  if constexpr (std::is_same_v<TIn, float>)
    SG_CHECK(x_scale == 1.f, "conv2d_igemm_backward_weight: x_scale must be 1 for float x, got " << x_scale);
  if (s.N * s.P * s.Q == 0 || s.K == 0) return;  // empty reduction: gw and gb keep their values
  if (gb) bias_grad(gy, gb, idx);
  if (gw)
    igemm::run_igemm<igemm::WgradView>(idx, gy, 1.f, x, x_scale, gw, nullptr, 1, /*accumulate*/ true,
                                       math == ConvMath::tf32);
}

template void conv2d_igemm_backward_weight_cuda<float>(const float*, float, const float*, float*, float*,
                                                       const Conv2dShape&, ConvMath);
template void conv2d_igemm_backward_weight_cuda<uint8_t>(const uint8_t*, float, const float*, float*, float*,
                                                         const Conv2dShape&, ConvMath);

}  // namespace spikegrad
