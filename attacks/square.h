// Square Attack, L∞ (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020), written from the paper: a
// score-based random search that never takes a gradient, so it is AutoAttack's check against gradient
// masking (a surrogate-gradient SNN whose white-box numbers Square beats is obfuscating).
//
// Per example, with z the mean over T of the logits and the margin m(x) = z_y − max_{i≠y} z_i (< 0: fooled):
//   start   x̂ = clamp01(x + ε·s), s ∈ {−1,+1} drawn per (channel, column): vertical stripes
//   repeat  while m(x̂) > 0 and queries remain:
//           side  h = max(round(sqrt(p_k · C·H·W / C)), 1), p_k the schedule below, h ≤ min(H, W)
//           a window of h×h at a uniformly drawn position; per channel a sign σ_c ∈ {−1,+1}
//           x̃ = x̂ with the window set to clamp01(x + ε·σ_c) (the paper adds 2εσ to x̂ and projects onto the
//             ε-ball, which lands on the same ±ε vertex)
//           one query: accept x̃ when its margin is lower (or ≤ 0)
//   p_k     = p_init (0.8) halved at fractions 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10000 of
//             the query budget (the paper's schedule for 10,000 queries, rescaled to the budget)
// Windows and signs are drawn per example (the paper's algorithm is per image); AutoAttack's batched code
// shares one window per step across the batch. Queries count forward passes per example, the start's
// included, and stop as soon as the example is fooled.
//
// Only forward passes (NoGradGuard, BN in eval mode), on the examples still unbroken each step.
#pragma once
#include <cstdint>
#include <vector>

#include "attacks/attack.h"
#include "engine/rng.h"

namespace spikegrad {

struct SquareConfig {
  double eps = 8.0 / 255;
  int queries = 5000;  // forward passes per example, the start's included
  double p_init = 0.8;
};

struct SquareResult {
  Tensor adversarial;                 // (B,C,H,W) on the images' device
  std::vector<uint8_t> fooled;        // margin ≤ 0 reached
  std::vector<int64_t> queries_used;  // per example, ≤ config.queries
  std::vector<double> margin;         // per example, the lowest margin found
};

// The share of the image a window covers at query `query` of a budget of `queries` (the schedule above).
double square_p_at(double p_init, int query, int queries);

// Throws a spikegrad::Error naming the field for a config Square cannot run with.
void check_square_config(const SquareConfig& config);

// images (B,C,H,W) float32 in [0,1] on the model's device, labels int32 (B) there; draws from gen.
SquareResult square_attack(Model& model, const Tensor& images, const Tensor& labels, const SquareConfig& config,
                           Generator& gen);

}  // namespace spikegrad
