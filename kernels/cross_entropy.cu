#include "kernels/block_reduce.cuh"
#include "kernels/cross_entropy.h"
#include "kernels/cuda_utils.cuh"

namespace spikegrad {

namespace {
constexpr int kRowThreads = 128;

// One block per row: K is a class count (10..1000), so a block-wide max and sum suffice.
__global__ void ce_forward_kernel(const float* x, const int32_t* y, float* loss, float* stats, int64_t k,
                                  DeviceCheck labels_check) {
  const int64_t i = blockIdx.x;
  const float* row = x + i * k;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) m = fmaxf(m, row[j]);
  const float row_max = block_max<kRowThreads>(m);  // in every thread
  // The other terms apart from the count of terms equal to the max (kernels/cross_entropy.h); a NaN logit
  // (which fmaxf skipped) lands in `rest` and makes the loss NaN.
  float sums[2] = {0.f, 0.f};  // rest, at_max
  for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
    if (row[j] == row_max) sums[1] += 1.f;
    else sums[0] += expf(row[j] - row_max);
  }
  block_reduce_each<kRowThreads>(sums, SumOp{});
  const float rest = sums[0], at_max = sums[1];
  if (threadIdx.x == 0) {
    const float ls = log1pf(rest + (at_max - 1.f));
    stats[2 * i] = row_max;
    stats[2 * i + 1] = ls;
    const int32_t label = y[i];
    if (label >= 0 && label < k) {
      loss[i] = (row_max - row[label]) + ls;
    } else {
      loss[i] = NAN;
      record_check_failure(labels_check, i, double(label));
    }
  }
}

__global__ void ce_backward_kernel(const float* x, const int32_t* y, const float* stats, const float* gy, float* gx,
                                   int64_t n, int64_t k) {
  const float g = gy[0] / float(n);
  SG_GRID_STRIDE(idx, n * k) {
    const int64_t i = idx / k, j = idx % k;
    gx[idx] += g * cross_entropy_grad(x[idx], stats[2 * i], stats[2 * i + 1], j == y[i]);
  }
}
}  // namespace

void cross_entropy_forward_cuda(const float* x, const int32_t* y, float* loss, float* stats, int64_t n, int64_t k,
                                const DeviceCheck& labels_check) {
  if (n == 0) return;
  ce_forward_kernel<<<unsigned(n), kRowThreads>>>(x, y, loss, stats, k, labels_check);
  SG_LAUNCH_CHECK();
}

void cross_entropy_backward_cuda(const float* x, const int32_t* y, const float* stats, const float* gy, float* gx,
                                 int64_t n, int64_t k) {
  SG_LAUNCH_1D(ce_backward_kernel, n * k, x, y, stats, gy, gx, n, k);
}

}  // namespace spikegrad
