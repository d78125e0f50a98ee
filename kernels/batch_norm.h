// Batch normalisation over the channel dimension (PyTorch BatchNorm1d/2d semantics, affine).
//
// Shapes: x (N,C) or (N,C,H,W) is viewed as (N,C,S) with S = H·W (S = 1 for 2-D input); element
// (n,c,s) sits at (n·C + c)·S + s. Statistics per channel c over M = N·S elements.
//
// Forward, training:  mean_c = Σ x / M,  var_c = Σ (x − mean_c)² / M   (biased; two passes, so no
//                     cancellation as in E[x²] − E[x]²),  invstd_c = 1/sqrt(var_c + eps),
//                     y = (x − mean_c)·invstd_c·weight_c + bias_c.
//                     Running buffers, in place (PyTorch's rule, unbiased variance; needs M > 1):
//                     running_mean = (1−m)·running_mean + m·mean_c
//                     running_var  = (1−m)·running_var  + m·var_c·M/(M−1)
// Forward, eval:      mean_c = running_mean_c, invstd_c = 1/sqrt(running_var_c + eps), same y; the
//                     running buffers are only read.
// Saved for backward: x, weight, and the per-channel mean_c and invstd_c that forward used (2·C values;
//                     in eval mode a snapshot, so later in-place updates of the running buffers cannot
//                     change this backward).
// Backward (each output pointer may be null; all accumulate with +=), with xhat = (x − mean_c)·invstd_c:
//   dbias_c   += Σ dy
//   dweight_c += Σ dy·xhat
//   dx        += weight_c·invstd_c·(dy − Σdy/M − xhat·Σ(dy·xhat)/M)   training (batch statistics depend on x)
//   dx        += weight_c·invstd_c·dy                                  eval (statistics are constants)
// Synchronised (cross-replica) batch norm: each of R replicas holds a slice of the batch; the per-channel
// sums Σx, Σ(x − mean)² and, in backward, Σdy, Σdy·xhat are summed over the replicas between stages (the
// glue calls engine/batch_norm_options.h's CrossReplicaSum), and M is the total count over replicas, so R
// replicas compute the statistics and dx of one process holding the whole batch. dweight and dbias stay
// each replica's own sums (data-parallel training all-reduces parameter gradients itself). The stage
// functions below are those steps; with no all-reduce between them they compute bit for bit what the
// one-call functions compute (the same per-channel sums in the same order).
// Bytes moved: training forward 3 reads of x (two statistics passes + apply) + 1 write of y; backward
// 2 reads of x and dy (reduce + dx) + 1 read-modify-write of dx.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

// Flat offset of the j-th element (j in [0, N·S)) of channel c in the (N,C,S) layout.
SG_HD int64_t bn_channel_offset(int64_t j, int64_t c, int64_t C, int64_t S) { return ((j / S) * C + c) * S + j % S; }
// Channel of flat offset i in the (N,C,S) layout.
SG_HD int64_t bn_channel_of(int64_t i, int64_t C, int64_t S) { return (i / S) % C; }

// (x − mean)·invstd·weight + bias with unfused products (mul_rn), so the CPU and CUDA round alike: the result
// is a neuron's input current in the fused BN + neuron op and right before the unfused one.
template <class T> SG_HD T bn_normalize(T x, T mean, T invstd, T weight, T bias) {
  return mul_rn(mul_rn(x - mean, invstd), weight) + bias;
}

// One running-buffer step; `var` is the biased batch variance over M elements.
template <class T> SG_HD void bn_update_running(T& running_mean, T& running_var, T mean, T var, int64_t M, T momentum) {
  running_mean = (T(1) - momentum) * running_mean + momentum * mean;
  running_var = (T(1) - momentum) * running_var + momentum * var * (T(M) / T(M - 1));
}

// Mean and biased variance from the channel's Σx and Σ(x − mean)² over M elements, in double.
SG_HD double bn_mean(double sum, int64_t M) { return sum / double(M); }
SG_HD double bn_variance(double squares, int64_t M) { return squares / double(M); }

// dx for one element; sum_dy and sum_dy_xhat are the channel's Σdy and Σ(dy·xhat).
template <class T>
SG_HD T bn_input_grad(bool training, T x, T dy, T mean, T invstd, T weight, T sum_dy, T sum_dy_xhat, int64_t M) {
  if (!training) return weight * invstd * dy;
  const T xhat = (x - mean) * invstd;
  return weight * invstd * (dy - sum_dy / T(M) - xhat * sum_dy_xhat / T(M));
}

// CPU reference, instantiated for float and double. Accumulation in double.
// Writes y, save_mean, save_invstd (C each); training also updates running_mean/var in place. y may be
// null: statistics only, for the fused BN + neuron op (kernels/neurons/multistep.h, BnInput).
template <class T>
void batch_norm_forward_cpu(const T* x, const T* weight, const T* bias, T* running_mean, T* running_var, int64_t N,
                            int64_t C, int64_t S, bool training, double momentum, double eps, T* y, T* save_mean,
                            T* save_invstd);
// gx, gweight, gbias may each be null.
template <class T>
void batch_norm_backward_cpu(const T* x, const T* weight, const T* save_mean, const T* save_invstd, const T* gy,
                             int64_t N, int64_t C, int64_t S, bool training, T* gx, T* gweight, T* gbias);

// CPU stages of training-mode batch norm (synchronised above). Channel sums are double arrays of C (2·C
// for backward: Σdy, then Σdy·xhat); M is the element count per channel over all replicas.
//   forward:  channel_sums -> (all-reduce) -> mean_c = bn_mean(sum_c, M) -> channel_squares ->
//             (all-reduce) -> finish_stats -> apply (or the fused neuron reading x through BnInput)
//   backward: backward_sums (also dweight, dbias += this replica's sums) -> (all-reduce) -> input_grad
template <class T> void batch_norm_channel_sums_cpu(const T* x, int64_t N, int64_t C, int64_t S, double* sums);
template <class T>
void batch_norm_channel_squares_cpu(const T* x, int64_t N, int64_t C, int64_t S, const double* mean, double* squares);
// save_mean, save_invstd and the running buffers' step from the mean and Σ(x − mean)² over M elements.
template <class T>
void batch_norm_finish_stats_cpu(const double* mean, const double* squares, int64_t C, int64_t M, double momentum,
                                 double eps, T* running_mean, T* running_var, T* save_mean, T* save_invstd);
template <class T>
void batch_norm_apply_cpu(const T* x, const T* weight, const T* bias, const T* save_mean, const T* save_invstd,
                          int64_t N, int64_t C, int64_t S, T* y);
// sums: Σdy (C), then Σdy·xhat (C). gweight, gbias may be null.
template <class T>
void batch_norm_backward_sums_cpu(const T* x, const T* save_mean, const T* save_invstd, const T* gy, int64_t N,
                                  int64_t C, int64_t S, double* sums, T* gweight, T* gbias);
// Training dx from the channel sums (all replicas') over M elements.
template <class T>
void batch_norm_input_grad_cpu(const T* x, const T* weight, const T* save_mean, const T* save_invstd, const T* gy,
                               const double* sums, int64_t N, int64_t C, int64_t S, int64_t M, T* gx);

// CUDA, float32. Per-channel reductions split each channel over several blocks (enough blocks in total to
// fill the GPU once; double partials added in a fixed order, so the result is deterministic on a given
// GPU) and finish in small per-channel kernels; see batch_norm.cu. The launchers allocate nothing: the
// caller passes `scratch`, device memory of at least batch_norm_cuda_scratch_size(N, C, S) doubles (for
// the block partials), and backward's `channel_sums`, 2·C floats (Σdy, Σdy·xhat from the reduction to
// the dx kernel; read only in training mode).
int64_t batch_norm_cuda_scratch_size(int64_t N, int64_t C, int64_t S);
void batch_norm_forward_cuda(const float* x, const float* weight, const float* bias, float* running_mean,
                             float* running_var, int64_t N, int64_t C, int64_t S, bool training, float momentum,
                             float eps, float* y, float* save_mean, float* save_invstd, double* scratch,
                             int64_t scratch_size);
void batch_norm_backward_cuda(const float* x, const float* weight, const float* save_mean, const float* save_invstd,
                              const float* gy, int64_t N, int64_t C, int64_t S, bool training, float* channel_sums,
                              float* gx, float* gweight, float* gbias, double* scratch, int64_t scratch_size);

// CUDA stages, as the CPU ones (all pointers device memory; sums and mean in double). finish_mean turns the
// channel sums into the means in place and writes save_mean.
void batch_norm_channel_sums_cuda(const float* x, int64_t N, int64_t C, int64_t S, double* sums, double* scratch,
                                  int64_t scratch_size);
void batch_norm_finish_mean_cuda(double* sums_to_mean, int64_t C, int64_t M, float* save_mean);
void batch_norm_channel_squares_cuda(const float* x, int64_t N, int64_t C, int64_t S, const double* mean,
                                     double* squares, double* scratch, int64_t scratch_size);
// save_invstd and the running buffers' step; save_mean as finish_mean wrote it.
void batch_norm_finish_stats_cuda(const double* squares, int64_t C, int64_t M, float momentum, float eps,
                                  const float* save_mean, float* running_mean, float* running_var, float* save_invstd);
void batch_norm_apply_cuda(const float* x, const float* weight, const float* bias, const float* save_mean,
                           const float* save_invstd, int64_t N, int64_t C, int64_t S, float* y);
void batch_norm_backward_sums_cuda(const float* x, const float* save_mean, const float* save_invstd, const float* gy,
                                   int64_t N, int64_t C, int64_t S, double* sums, float* gweight, float* gbias,
                                   double* scratch, int64_t scratch_size);
void batch_norm_input_grad_cuda(const float* x, const float* weight, const float* save_mean, const float* save_invstd,
                                const float* gy, const double* sums, int64_t N, int64_t C, int64_t S, int64_t M,
                                float* gx);

}  // namespace spikegrad
