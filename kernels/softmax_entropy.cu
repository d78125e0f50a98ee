// One warp per row: rows are short (K = classes, 10..1000) and N is the batch, so a warp's strided loop
// and warp reductions (kernels/block_reduce.cuh, every lane gets the result) cover a row without shared memory.
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/softmax_entropy.h"

namespace spikegrad {

namespace {
constexpr int kRowsPerBlock = kBlock / 32;

__global__ void forward_kernel(const float* logits, float* h, float* lse, int64_t N, int64_t K) {
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (n >= N) return;  // whole warps leave together: n is uniform per warp
  const float* a = logits + n * K;
  float m = -INFINITY;
  for (int64_t k = lane; k < K; k += 32) m = fmaxf(m, a[k]);
  m = warp_max(m);
  float s = 0.f;
  for (int64_t k = lane; k < K; k += 32) s += expf(a[k] - m);
  const float l = m + logf(warp_sum(s));
  float e = 0.f;
  for (int64_t k = lane; k < K; k += 32) e -= expf(a[k] - l) * (a[k] - l);
  e = warp_sum(e);
  if (lane == 0) {
    lse[n] = l;
    h[n] = e;
  }
}

__global__ void backward_kernel(const float* logits, const float* h, const float* lse, const float* gh,
                                float* glogits, int64_t N, int64_t K) {
  SG_GRID_STRIDE(i, N * K) {
    const int64_t n = i / K;
    const float logp = logits[i] - lse[n];
    glogits[i] += gh[n] * (-expf(logp) * (logp + h[n]));
  }
}
}  // namespace

void softmax_entropy_forward_cuda(const float* logits, float* h, float* lse, int64_t N, int64_t K) {
  if (N == 0) return;
  forward_kernel<<<unsigned(ceil_div(N, kRowsPerBlock)), kBlock>>>(logits, h, lse, N, K);
  SG_LAUNCH_CHECK();
}

void softmax_entropy_backward_cuda(const float* logits, const float* h, const float* lse, const float* gh,
                                   float* glogits, int64_t N, int64_t K) {
  SG_LAUNCH_1D(backward_kernel, N * K, logits, h, lse, gh, glogits, N, K);
}

}  // namespace spikegrad
