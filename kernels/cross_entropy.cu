#include <cub/block/block_reduce.cuh>

#include "kernels/cross_entropy.h"
#include "kernels/cuda_utils.cuh"

namespace spikegrad {

namespace {
constexpr int kRowThreads = 128;

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// One block per row: K is a class count (10..1000), so a block-wide max and sum suffice.
__global__ void ce_forward_kernel(const float* x, const int32_t* y, float* loss, float* lse, int64_t k,
                                  DeviceCheck labels_check) {
  using Reduce = cub::BlockReduce<float, kRowThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float row_max;
  const int64_t i = blockIdx.x;
  const float* row = x + i * k;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) m = fmaxf(m, row[j]);
  m = Reduce(tmp).Reduce(m, MaxOp());
  if (threadIdx.x == 0) row_max = m;
  __syncthreads();
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) s += expf(row[j] - row_max);
  __syncthreads();  // tmp is reused by the second reduction
  s = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) {
    const float l = row_max + logf(s);
    lse[i] = l;
    const int32_t label = y[i];
    if (label >= 0 && label < k) {
      loss[i] = l - row[label];
    } else {
      loss[i] = NAN;
      record_check_failure(labels_check, i, double(label));
    }
  }
}

__global__ void ce_backward_kernel(const float* x, const int32_t* y, const float* lse, const float* gy, float* gx,
                                   int64_t n, int64_t k) {
  const float g = gy[0] / float(n);
  SG_GRID_STRIDE(idx, n * k) {
    const int64_t i = idx / k, j = idx % k;
    gx[idx] += g * (expf(x[idx] - lse[i]) - (j == y[i] ? 1.f : 0.f));
  }
}
}  // namespace

void cross_entropy_forward_cuda(const float* x, const int32_t* y, float* loss, float* lse, int64_t n, int64_t k,
                                const DeviceCheck& labels_check) {
  if (n == 0) return;
  ce_forward_kernel<<<unsigned(n), kRowThreads>>>(x, y, loss, lse, k, labels_check);
  SG_LAUNCH_CHECK();
}

void cross_entropy_backward_cuda(const float* x, const int32_t* y, const float* lse, const float* gy, float* gx, int64_t n,
                                 int64_t k) {
  SG_LAUNCH_1D(ce_backward_kernel, n * k, x, y, lse, gy, gx, n, k);
}

}  // namespace spikegrad
