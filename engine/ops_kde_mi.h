// Public ops of the kde_mi family (declared here to keep engine/ops.h readable; included by it): the TMI
// loss pieces -- tap spikes -> firing rates -> KDE mutual information -- and the softmax entropy used by
// the output-entropy regulariser. Math and backward formulas: kernels/firing_rate.h, kernels/kde_mi.h,
// kernels/softmax_entropy.h; the spec is reference.md §1 (TMI).
#pragma once
#include <vector>

#include "engine/tape.h"
#include "engine/tensor.h"

namespace spikegrad::ops {

// How a tap is reduced to one rate per (t, b).
enum class RateReduce {
  Mean,        // mean over every element of the step (TMI: mean over C,H,W)
  ChannelMax,  // max over channels (dim 2) of each channel's spatial mean; ties go to the lowest channel
};
const char* rate_reduce_name(RateReduce r);  // "mean" | "channel_max"

// spikes (T,B,...) (ChannelMax: (T,B,C,...)) -> rates (T,B) = scale * reduction. Differentiable in spikes.
Tensor firing_rate(Tape& tape, const Tensor& spikes, RateReduce reduce = RateReduce::Mean, double scale = 255.0);

struct KdeMiOptions {
  int bins = 256;       // bin centres 0..bins-1, spacing 1 (rates should be scaled to [0, bins-1])
  double sigma = 0.32;  // kernel standard deviation in bins (the reference's "sigma = 2*0.4^2")
  double eps = 1e-10;   // in the normalisers and inside log2; must be > 0
};

// x_rates, z_rates (T,B) -> shape () batch mean over b of MI_b in bits, MI_b estimated over the T time
// steps of sample b. Differentiable in both rate tensors. CUDA: T <= 32.
Tensor kde_mutual_information(Tape& tape, const Tensor& x_rates, const Tensor& z_rates, const KdeMiOptions& opt = {});

// Per-sample statistics of the same estimator, for tests and logging; no tape, copies to the host.
struct KdeMiStats {
  std::vector<double> mi, h_x, h_z, h_xz;  // (B) each, bits
  double mean_mi = 0;
};
KdeMiStats kde_mi_stats(const Tensor& x_rates, const Tensor& z_rates, const KdeMiOptions& opt = {});
// For the estimators' glue: KdeMiStats from an MI kernel's per-sample statistics (B, kKdeStatCount)
// (kernels/kde_mi.h's layout, which the histogram estimator shares) and its batch mean, copied to the host.
KdeMiStats mi_stats_from_kernel(const Tensor& stats, const Tensor& mean, int64_t batch);

// logits (N,K) -> (N): entropy (nats) of softmax of each row. Differentiable in logits.
Tensor softmax_entropy(Tape& tape, const Tensor& logits);

}  // namespace spikegrad::ops
