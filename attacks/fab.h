// FAB, the targeted L∞ version AutoAttack runs (Croce & Hein, ICML 2020, "Minimally distorted adversarial
// examples with a fast adaptive boundary attack"), written from the paper. A minimum-norm attack: it walks
// along the linearised decision boundary between the label y and a target t and keeps the smallest
// ‖x_adv − x‖∞ that flips the prediction; an example counts as broken at ε when that norm is ≤ ε.
//
// Per example, from x⁽⁰⁾ = x (no random start, as AutoAttack's standard FAB-T), at each iteration:
//   g(v)    = z_t(v) − z_y(v) (z: mean over T of the logits), w = ∇g(x⁽ⁱ⁾)
//   the boundary linearised at x⁽ⁱ⁾:  { v : w·v = w·x⁽ⁱ⁾ − g(x⁽ⁱ⁾) }
//   δ  = the smallest-L∞ step from x⁽ⁱ⁾ onto it inside [0,1]^D,  δ₀ = the same from x
//   α  = min(‖δ‖∞ / (‖δ‖∞ + ‖δ₀‖∞), α_max)      (α_max = 0.1: how much to lean back towards x)
//   x⁽ⁱ⁺¹⁾ = clamp01((1 − α)(x⁽ⁱ⁾ + η·δ) + α(x + η·δ₀)),  η = 1.05 (overshoot)
//   if x⁽ⁱ⁺¹⁾ is misclassified: keep it if its ‖· − x‖∞ is the smallest so far, then move it back towards
//   x: x⁽ⁱ⁺¹⁾ ← x + β(x⁽ⁱ⁺¹⁾ − x), β = 0.9.
// The projection (fab_project_linf) solves min ‖δ‖∞ s.t. w·δ = c, 0 ≤ p + δ ≤ 1 exactly: δ_i =
// sign(c·w_i)·min(ρ, room_i), with ρ found over the sorted rooms; when even the box corner does not reach
// the hyperplane it returns that corner (the closest the box allows).
// The target is the class ranked `target_rank` by the clean logits (AutoAttack runs ranks 2..10).
// Cost per iteration: a forward over the examples still searching (those misclassified at the start never
// are) at the stepped points, the misclassification test, then a forward and backward at the points the next
// step starts from (moved back or not). Taking the gradient in the first pass and a second pass only for
// the points moved back was measured slower (FAB-T on 64 demo-model images: 31.0 s against 23.8 s): most
// points cross the boundary at most iterations, so most needed the second pass anyway.
#pragma once
#include <cstdint>
#include <vector>

#include "attacks/attack.h"

namespace spikegrad {

struct FabConfig {
  int iterations = 100;
  int target_rank = 2;     // 2..K
  double alpha_max = 0.1;
  double eta = 1.05;
  double beta = 0.9;
  AttackGrad grad = AttackGrad::bptt;
};

struct FabResult {
  Tensor adversarial;          // (B,C,H,W): the smallest-norm misclassified point found, else the clean image
  std::vector<uint8_t> found;  // a misclassified point was found (the clean image itself counts when misclassified)
  std::vector<double> norm;    // its ‖x_adv − x‖∞ (0 when already misclassified; +inf when none found)
};

// The smallest-L∞ δ with w·δ = c and 0 ≤ p + δ ≤ 1 (all of length n); `feasible` is set to whether the box
// reaches the hyperplane at all (otherwise δ is the box corner that comes closest).
std::vector<float> fab_project_linf(const float* p, const float* w, double c, int64_t n, bool* feasible = nullptr);

void check_fab_config(const FabConfig& config, int64_t num_classes);

// images (B,C,H,W) float32 in [0,1] on the model's device, labels int32 (B) there. Deterministic.
FabResult fab_targeted(Model& model, const Tensor& images, const Tensor& labels, const FabConfig& config);

}  // namespace spikegrad
