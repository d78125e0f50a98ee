// The public differentiable ops. models/, losses/ and attacks/ call only these (never a kernel).
//
// Conventions for every op:
// - Inputs must share one device; float ops take float32 on CUDA and float32 or float64 on the CPU
//   (float64 exists so gradient checks run through the very same code in double).
// - Shapes use fixed letters: T time, B batch, N = T*B merged batch, C/K channels in/out, H W spatial.
// - An op records one node on `tape` when grad mode is on and an input requires grad; the backward
//   computes only the input gradients that are wanted (see engine/tape.h).
// - Bad input throws spikegrad::Error naming the op and expected vs actual.
// The glue for each family lives in engine/ops_<family>.cpp; the math in kernels/<family>.{h,_cpu.cpp,cu}.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/batch_norm_options.h"
#include "engine/rng.h"
#include "engine/tape.h"
#include "engine/tensor.h"

namespace spikegrad::ops {

// ---- elementwise (kernels/elementwise) ---------------------------------------------------------
Tensor add(Tape& tape, const Tensor& a, const Tensor& b);  // same shape
Tensor mul(Tape& tape, const Tensor& a, const Tensor& b);  // same shape
Tensor scale(Tape& tape, const Tensor& a, double s);       // s * a
Tensor add_scalar(Tape& tape, const Tensor& a, double s);  // a + s
// Gradient passes where lo <= a <= hi (inclusive, as PyTorch), zero outside.
Tensor clamp(Tape& tape, const Tensor& a, double lo, double hi);
// sign(a) in {-1, 0, 1}. Its derivative is zero almost everywhere, so the output never requires grad.
Tensor sign(const Tensor& a);
// In place, no tape: dst += alpha * src (same shape, dtype, device). Used for gradient accumulation.
void accumulate(const Tensor& dst, const Tensor& src, double alpha = 1.0);

// Per-channel affine y[n,c,...] = x[n,c,...]·scale[c] + shift[c] on x (N,C,...); scale/shift (C) are
// constants (the models' dataset normalisation), only x gets a gradient. (kernels/channel_affine)
Tensor channel_affine(Tape& tape, const Tensor& x, const Tensor& scale, const Tensor& shift);

// ---- shape and time (kernels/temporal) ----------------------------------------------------------
Tensor reshape(Tape& tape, const Tensor& x, const Shape& shape);  // a view; one dim may be -1
Tensor flatten(Tape& tape, const Tensor& x, int start_dim = 1);    // dims [start_dim, end) merged
Tensor repeat_time(Tape& tape, const Tensor& x, int64_t T);        // (B,...) -> (T,B,...), copies
Tensor mean_time(Tape& tape, const Tensor& x);                     // (T,B,...) -> (B,...)
Tensor swap_leading_dims(Tape& tape, const Tensor& x);             // (A,B,...) -> (B,A,...), copies

// ---- reductions (kernels/reduce) ----------------------------------------------------------------
Tensor sum(Tape& tape, const Tensor& x);   // all elements -> shape ()
Tensor mean(Tape& tape, const Tensor& x);  // all elements -> shape ()

// ---- dense layers (kernels/linear, kernels/conv2d) ------------------------------------------------
// y = x w^T + b; x (N,in), w (out,in) as PyTorch, b (out) or undefined. CUDA: cuBLAS.
Tensor linear(Tape& tape, const Tensor& x, const Tensor& w, const Tensor& b);
struct Conv2dOptions {
  int stride = 1;
  int padding = 0;
  // 0: backward keeps x as it is. L in {1, 2, 4, ..., 128}: the caller promises x holds only multiples of
  // 1/L in [0, 255/L] — spikes (L = 1), spikes average-pooled over 2x2 (L = 4) — and backward keeps x as one
  // byte per element (kernels/spike_pack.h) instead of 4 (float) or 8 (double); the gradients are exactly
  // those of the float path. The CPU checks the promise and fails naming the element; CUDA rounds to the
  // nearest level without checking (a check would cost a device-to-host synchronisation per layer).
  int input_levels = 0;
};
// x (N,C,H,W), w (K,C,R,S) as PyTorch OIHW, b (K) or undefined -> (N,K,P,Q), P = (H+2p-R)/stride+1.
// CPU: oneDNN or im2col + Eigen, and the zero-skipping kernels for sparse inputs (conv_settings().cpu_sparse).
// CUDA: the backend of conv_settings() below.
Tensor conv2d(Tape& tape, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dOptions opt = {});

// The CUDA convolution backend, process-wide (the trainer's --conv and --tf32):
//   cudnn  cuDNN, fp32 FMA math, deterministic algorithms (kernels/conv2d.cu); the default until the
//          benchmark shows ours at >= 0.8x cuDNN on the zoo's shapes on the target GPU (docs/perf.md).
//   ours   the hand-written implicit GEMM (kernels/conv2d_igemm.h); reads byte-packed spike inputs
//          (input_levels) directly in the weight gradient, without a float copy.
// tf32: TF32 tensor cores with fp32 accumulation (10-bit mantissa products); ours only.
// cpu_sparse (the trainer's --cpu-conv auto|dense): on the CPU in float, the forward and the weight gradient use
// the zero-skipping spike kernels (kernels/conv2d_sparse.h) on the shapes where they measured faster, whenever x's
// density is at most kConv2dSparseMaxDensity (counted per call); off, always the dense path (oneDNN or Eigen).
// The two agree to float rounding (another summation order); each is deterministic for any thread count.
enum class ConvBackend { cudnn, ours };
struct ConvSettings {
  ConvBackend backend = ConvBackend::cudnn;
  bool tf32 = false;
  bool cpu_sparse = true;
};
void set_conv_settings(const ConvSettings& settings);  // fails for tf32 with cudnn
ConvSettings conv_settings();

// ---- normalisation (kernels/batch_norm) ----------------------------------------------------------
// x (N,C) or (N,C,H,W); statistics per channel over N (and H,W). For spiking layers N = T*B, so the
// statistics are shared across time steps as in the reference code. training: batch statistics
// (biased variance to normalise) and running_mean/var updated in place with the unbiased variance:
// r = (1-momentum) r + momentum * batch. Eval: running statistics. weight/bias (C) are affine.
// BatchNormOptions {training = true, momentum = 0.1, eps = 1e-5}: engine/batch_norm_options.h.
Tensor batch_norm(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormOptions opt = {});

// ---- pooling (kernels/pool2d) ---------------------------------------------------------------------
// x (N,C,H,W), square kernel k, stride s, padding p <= k/2 (PyTorch's rule), output (N,C,P,Q) with
// P = (H+2p-k)/s+1, Q = (W+2p-k)/s+1 (floor, ceil_mode=False).
// avg: every window divides by k*k, padded zeros included (PyTorch's count_include_pad=True).
// max: padding is -inf (never the maximum); the gradient goes to the FIRST maximum of each window in row-major
// order over its in-bounds positions, on both devices, as PyTorch — on binary spike maps ties decide it.
Tensor avg_pool2d(Tape& tape, const Tensor& x, int kernel, int stride, int padding = 0);
Tensor max_pool2d(Tape& tape, const Tensor& x, int kernel, int stride, int padding = 0);
// PyTorch's AdaptiveAvgPool2d: (N,C,H,W) -> (N,C,out_h,out_w); output row bin i averages rows
// [floor(i*H/out_h), ceil((i+1)*H/out_h)), columns likewise (bins overlap when the size does not divide).
Tensor adaptive_avg_pool2d(Tape& tape, const Tensor& x, int out_h, int out_w);

// ---- weighted sum (kernels/weighted_sum) ----------------------------------------------------------
// y = sum_i weights[i] * xs[i]: xs (>= 1 tensors) all of one shape, dtype and device; weights 1-D of
// xs.size() entries, same dtype and device (a learnable parameter: SNN-RAT's ConvexCombination). Gradients
// to every x and to weights (a deterministic reduction on both devices).
Tensor weighted_sum(Tape& tape, const std::vector<Tensor>& xs, const Tensor& weights);

// ---- loss (kernels/cross_entropy) -----------------------------------------------------------------
// Fused log-softmax + negative log-likelihood, mean over N. logits (N,K) float, labels (N) int32 in [0,K).
Tensor cross_entropy(Tape& tape, const Tensor& logits, const Tensor& labels);

// Row-wise argmax of x (N,K) -> int32 (N): first maximum on both devices. Not differentiable. (kernels/argmax)
Tensor argmax(const Tensor& x);

// ---- input checks (kernels/range_check) -----------------------------------------------------------
// Fails unless every element of x (float) lies in [lo, hi] (NaN fails); message(index, value) is the error.
// CPU: throws here, naming the first element outside. CUDA: a kernel records one element outside and the
// error is thrown at the next copy to the host — a deferred device check (engine/cuda_context.h) — so the
// check costs no wait for the device. Bounds are rounded to float32 on CUDA. Not differentiable.
void check_range(const Tensor& x, double lo, double hi, const std::function<std::string(int64_t, double)>& message);

// ---- ANN-mode activations (kernels/ann_activation) -------------------------------------------------
// What replaces a spiking neuron when a model runs as an ANN (reference.md §5.3; models/layers.h AnnMode).
Tensor relu(Tape& tape, const Tensor& x);  // gradient g·[x > 0]
// floor(clamp(x/threshold, 0, 1)·levels + 1/2)/levels·threshold, straight-through gradient g·[0 <= x <= threshold].
// threshold > 0, levels >= 1.
Tensor qcfs(Tape& tape, const Tensor& x, double threshold, int levels);

// ---- regularisation (kernels/dropout) -------------------------------------------------------------
// Inverted dropout: keep with probability 1-p and scale by 1/(1-p). The mask comes from the counter-based
// RNG (same numbers on CPU and CUDA for the same generator state). Identity when !training or p == 0.
Tensor dropout(Tape& tape, const Tensor& x, double p, bool training, Generator& gen);

}  // namespace spikegrad::ops

// Spiking neurons and the KDE mutual information have their own headers, part of the same public API. Like
// this one they include no kernel header; running a neuron struct of one's own (spike_with) is in the
// extension header engine/ops_neuron_ext.h.
#include "engine/ops_kde_mi.h"
#include "engine/ops_neuron.h"
