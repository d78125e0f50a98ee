// Public op of the hist_mi family: the histogram (plug-in) mutual information between two rate series, the
// AIMIE-style baseline of the TMI loss (losses/losses.h, --mi-estimator hist). Math, the straight-through
// soft-binning gradient and shapes: kernels/hist_mi.h. Same inputs and output as kde_mutual_information
// (engine/ops_kde_mi.h), so the losses can swap one estimator for the other.
#pragma once
#include "engine/ops_kde_mi.h"  // KdeMiStats: the per-sample report both estimators share
#include "engine/tape.h"
#include "engine/tensor.h"

namespace spikegrad::ops {

struct HistMiOptions {
  // Bin centres 0..bins-1, spacing 1 (rates should be scaled to [0, bins-1]). 16 by default: with T = 4..8
  // samples per sequence, 256 bins (KDE's) would give almost every distinct rate a bin of its own, and the
  // estimate would be log2(#distinct values) whatever the dependence; 16 bins (1/16 of the firing-rate
  // range each) let nearby rates share a bin, which is what a histogram estimator needs to count anything.
  int bins = 16;
  double eps = 1e-10;         // inside log2 (as KDE-MI); must be > 0
  bool soft_forward = false;  // true: the forward returns the soft-binned MI the backward differentiates
};

// x_rates, z_rates (T,B) -> shape () batch mean over b of the histogram MI_b in bits over the T time steps
// of sample b. Backward: the soft-binning surrogate (kernels/hist_mi.h). CUDA: T <= 1024.
Tensor hist_mutual_information(Tape& tape, const Tensor& x_rates, const Tensor& z_rates, const HistMiOptions& opt = {});

// Per-sample statistics of the same estimator (hard, or soft with opt.soft_forward); no tape, host copy.
KdeMiStats hist_mi_stats(const Tensor& x_rates, const Tensor& z_rates, const HistMiOptions& opt = {});

}  // namespace spikegrad::ops
