// Batch norm on CUDA: per-channel reductions with one block per channel (warp shuffles, then one
// shared-memory step across warps), and elementwise kernels over all N·C·S elements for the parts that
// need no reduction, so those run on the whole GPU even when C is small.
#include "kernels/batch_norm.h"
#include "kernels/cuda_utils.cuh"

namespace spikegrad {

namespace {

// 512 threads: enough loads in flight per block to stream a channel; a multiple of the warp size,
// which block_sum relies on.
constexpr int kChannelBlock = 512;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of v over the block, returned to every thread. `scratch` holds one float per warp (32).
// The leading barrier lets a block call this repeatedly with the same scratch.
__device__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? scratch[lane] : 0.f;
    v = warp_sum(v);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  return scratch[0];
}

// Training statistics: block c owns channel c. Two passes over the channel (sum, then squared
// deviations from the mean) keep the variance accurate when |mean| >> std.
__global__ void bn_train_stats_kernel(const float* x, int64_t N, int64_t C, int64_t S, float momentum, float eps,
                                      float* running_mean, float* running_var, float* save_mean, float* save_invstd) {
  __shared__ float scratch[32];
  const int64_t c = blockIdx.x, M = N * S;
  float partial = 0.f;
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x) partial += x[bn_channel_offset(j, c, C, S)];
  const float mean = block_sum(partial, scratch) / float(M);
  partial = 0.f;
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
    const float d = x[bn_channel_offset(j, c, C, S)] - mean;
    partial += d * d;
  }
  const float var = block_sum(partial, scratch) / float(M);
  if (threadIdx.x == 0) {
    save_mean[c] = mean;
    save_invstd[c] = 1.f / sqrtf(var + eps);
    bn_update_running<float>(running_mean[c], running_var[c], mean, var, M, momentum);
  }
}

__global__ void bn_eval_stats_kernel(const float* running_mean, const float* running_var, int64_t C, float eps,
                                     float* save_mean, float* save_invstd) {
  SG_GRID_STRIDE(c, C) {
    save_mean[c] = running_mean[c];
    save_invstd[c] = 1.f / sqrtf(running_var[c] + eps);
  }
}

__global__ void bn_apply_kernel(const float* x, const float* weight, const float* bias, const float* mean,
                                const float* invstd, int64_t n, int64_t C, int64_t S, float* y) {
  SG_GRID_STRIDE(i, n) {
    const int64_t c = bn_channel_of(i, C, S);
    y[i] = bn_normalize(x[i], mean[c], invstd[c], weight[c], bias[c]);
  }
}

// Block c: Σdy and Σdy·xhat of channel c into channel_sums[c], channel_sums[C + c]; accumulates the
// parameter gradients when wanted.
__global__ void bn_backward_reduce_kernel(const float* x, const float* save_mean, const float* save_invstd,
                                          const float* gy, int64_t N, int64_t C, int64_t S, float* channel_sums,
                                          float* gweight, float* gbias) {
  __shared__ float scratch[32];
  const int64_t c = blockIdx.x, M = N * S;
  const float mean = save_mean[c], invstd = save_invstd[c];
  float partial_dy = 0.f, partial_dy_xhat = 0.f;
  for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
    const int64_t o = bn_channel_offset(j, c, C, S);
    const float dy = gy[o];
    partial_dy += dy;
    partial_dy_xhat += dy * ((x[o] - mean) * invstd);
  }
  const float sum_dy = block_sum(partial_dy, scratch);
  const float sum_dy_xhat = block_sum(partial_dy_xhat, scratch);
  if (threadIdx.x == 0) {
    channel_sums[c] = sum_dy;
    channel_sums[C + c] = sum_dy_xhat;
    if (gweight) gweight[c] += sum_dy_xhat;
    if (gbias) gbias[c] += sum_dy;
  }
}

// channel_sums is read only in training mode (eval dx needs no reduction) and may be null otherwise.
__global__ void bn_input_grad_kernel(const float* x, const float* weight, const float* save_mean,
                                     const float* save_invstd, const float* gy, const float* channel_sums, int64_t n,
                                     int64_t N, int64_t C, int64_t S, bool training, float* gx) {
  SG_GRID_STRIDE(i, n) {
    const int64_t c = bn_channel_of(i, C, S);
    const float sum_dy = training ? channel_sums[c] : 0.f;
    const float sum_dy_xhat = training ? channel_sums[C + c] : 0.f;
    gx[i] += bn_input_grad<float>(training, x[i], gy[i], save_mean[c], save_invstd[c], weight[c], sum_dy, sum_dy_xhat,
                                  N * S);
  }
}

}  // namespace

void batch_norm_forward_cuda(const float* x, const float* weight, const float* bias, float* running_mean,
                             float* running_var, int64_t N, int64_t C, int64_t S, bool training, float momentum,
                             float eps, float* y, float* save_mean, float* save_invstd) {
  if (C == 0) return;
  if (training) {
    bn_train_stats_kernel<<<unsigned(C), kChannelBlock>>>(x, N, C, S, momentum, eps, running_mean, running_var,
                                                          save_mean, save_invstd);
    SG_LAUNCH_CHECK();
  } else {
    SG_LAUNCH_1D(bn_eval_stats_kernel, C, running_mean, running_var, C, eps, save_mean, save_invstd);
  }
  if (!y) return;  // statistics only (the fused BN + neuron op applies them itself)
  const int64_t n = N * C * S;
  SG_LAUNCH_1D(bn_apply_kernel, n, x, weight, bias, save_mean, save_invstd, n, C, S, y);
}

void batch_norm_backward_cuda(const float* x, const float* weight, const float* save_mean, const float* save_invstd,
                              const float* gy, int64_t N, int64_t C, int64_t S, bool training, float* channel_sums,
                              float* gx, float* gweight, float* gbias) {
  if (C == 0) return;
  if (training || gweight || gbias) {
    bn_backward_reduce_kernel<<<unsigned(C), kChannelBlock>>>(x, save_mean, save_invstd, gy, N, C, S, channel_sums,
                                                              gweight, gbias);
    SG_LAUNCH_CHECK();
  }
  if (gx) {
    const int64_t n = N * C * S;
    SG_LAUNCH_1D(bn_input_grad_kernel, n, x, weight, save_mean, save_invstd, gy, channel_sums, n, N, C, S, training, gx);
  }
}

}  // namespace spikegrad
