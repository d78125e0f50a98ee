// The metric functions of `spikegrad analyze` (apps/analyze.h), pure and host-side so they are testable on
// hand-made gradients. Definitions: /work/shared/spec/gradient_sparsity.md §1.3 (per-tensor statistics),
// §2.1 (the ratio R and its first-order bounds), §2.2 (weight-gradient zeros, structural zeros).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace spikegrad::app {

// The thresholds of the thresholded counts |g_i| > tau · max|g| (spec §1.3).
constexpr std::array<double, 2> kGradientThresholds{1e-6, 1e-3};

// Statistics of one gradient, or of several read as one vector (a merge's two operands).
struct GradientStats {
  int64_t numel = 0, zeros = 0;  // zeros: elements exactly == 0 (the released code's criterion)
  // Per time step: tensors are time-major (S·B, ...), so step t is the t-th of S equal blocks of dim 0. Empty
  // when some part's dim 0 is not a multiple of S.
  std::vector<int64_t> step_numel, step_zeros;
  double l1 = 0, l2_squared = 0, max_abs = 0;
  std::array<int64_t, kGradientThresholds.size()> above{};  // counts of |g_i| > tau · max|g|, per threshold

  double zero_fraction() const;
  std::vector<double> zero_fraction_per_step() const;
  double norm() const;  // ||g||_2
  // s_eff = (||g||_1 / ||g||_2)^2 / D: 1 for a flat vector, 1/D for a one-hot, 0 for g = 0 (no support). Scale-free,
  // and meaningful where exact zeros are rare (BN with batch statistics, spec §5.2).
  double effective_support() const;
  double fraction_above(size_t threshold_index) const;  // 0 for g = 0
  int64_t nonzeros() const { return numel - zeros; }
};

// Host copies of `parts` (F32, any device); `steps` >= 1 is S.
GradientStats gradient_stats(const std::vector<Tensor>& parts, int64_t steps);

// Which taps (r, s) of a k×k convolution (stride, zero padding) ever multiply a real input pixel of an
// in_h × in_w map: row r does when some output row i has 0 <= i·stride − padding + r < in_h (likewise for
// columns). Row-major k·k flags. A tap that never does gets an exactly-zero weight gradient whatever the data:
// a structural zero (spec §2.2: 3×3 p1 on 1×1 leaves 1 of 9 taps; stride 2 on 2×2 leaves 4 of 9).
std::vector<bool> conv_taps_seeing_data(int kernel, int stride, int padding, int64_t in_h, int64_t in_w);

struct WeightZeros {
  int64_t numel = 0, zeros = 0;
  int64_t structural = 0;                      // entries in taps that never see data (all of them zero)
  int64_t nonstructural_zeros = 0;             // zeros among the entries whose tap sees data
  double zero_fraction() const;                // z_W: every zero
  double structural_fraction() const;          // z_W struct: structural entries / all
  double nonstructural_zero_fraction() const;  // z_W non-struct: zeros / entries that can see data
};
// grad: a weight gradient whose trailing k·k elements of each row are the taps (conv (O,I,k,k)), with
// `taps` from conv_taps_seeing_data; empty `taps`: no structural zeros (linear, batch norm).
WeightZeros weight_zeros(const Tensor& grad, const std::vector<bool>& taps);

// ---- the ratio R (spec §2.1) ----
// clamp(x + eps · sign(direction), 0, 1), sign(0) = 0: the FGSM point when direction is the loss gradient,
// the random point when it is a sign vector. Clamped to [0,1] as the attack would.
Tensor signed_step(const Tensor& x, const Tensor& direction, double eps);
// K random ±1 tensors of `shape` on `device`, drawn from the counter-based generator Generator(seed), so a
// seed gives the same signs on every device and run.
std::vector<Tensor> random_sign_vectors(const Shape& shape, int k, uint64_t seed, Device device);

struct SignRatio {
  double adversarial_increase = 0;  // ℓ(x + ε·sign g) − ℓ(x)
  double random_increase = 0;       // mean_k [ℓ(x + ε·s_k) − ℓ(x)]
  double random_abs_increase = 0;   // mean_k |ℓ(x + ε·s_k) − ℓ(x)|
  double ratio = 0;                 // R = adversarial / random (the spec's signed form; NaN when the mean is 0)
  double abs_ratio = 0;  // adversarial / mean |random|: the quantity the first-order bound √(2‖g‖₀) is about
};
SignRatio sign_ratio(double loss_clean, double loss_adversarial, const std::vector<double>& loss_random);

}  // namespace spikegrad::app
