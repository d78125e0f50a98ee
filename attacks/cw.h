// Carlini–Wagner L2 (Carlini & Wagner, S&P 2017) as the FEEL framework and torchattacks run it, written
// from the paper: a minimum-L2 attack optimised in tanh space, with one fixed trade-off constant c.
//
//   x_adv = (tanh(w) + 1)/2                       (always in [0,1]; w starts at atanh(2x − 1), clipped)
//   minimise  ‖x_adv − x‖²₂ + c · max(z_y − max_{i≠y} z_i, −κ)      (z: mean over T of the logits)
//   with Adam on w (learning rate lr), `steps` steps. The best point per example is the misclassified
//   x_adv with the smallest ‖x_adv − x‖₂ seen; examples never misclassified keep the clean image.
//   Early stop: every max(steps/10, 1) steps, stop when the summed objective did not decrease since the
//   last such check (torchattacks' rule).
// An L2 attack: its result is the success rate and the L2 norms, not an accuracy at an L∞ ε.
#pragma once
#include <cstdint>
#include <vector>

#include "attacks/attack.h"

namespace spikegrad {

struct CwConfig {
  double c = 1.0;       // weight of the margin term
  double kappa = 0.0;   // confidence: the margin is pushed to −κ
  int steps = 50;
  double lr = 0.01;     // Adam's learning rate on w
  AttackGrad grad = AttackGrad::bptt;
};

struct CwResult {
  Tensor adversarial;            // (B,C,H,W): the smallest-L2 misclassified point found, else the clean image
  std::vector<uint8_t> fooled;   // misclassified at some step
  std::vector<double> l2;        // its ‖x_adv − x‖₂ (0 when not fooled)
  int steps_run = 0;             // < steps when the early stop fired
};

void check_cw_config(const CwConfig& config);

// images (B,C,H,W) float32 in [0,1] on the model's device, labels int32 (B) there. Deterministic.
CwResult cw_l2(Model& model, const Tensor& images, const Tensor& labels, const CwConfig& config);

}  // namespace spikegrad
