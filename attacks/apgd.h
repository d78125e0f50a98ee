// APGD, the step-size-free L∞ attack of AutoAttack (Croce & Hein, ICML 2020, "Reliable evaluation of
// adversarial robustness with an ensemble of diverse parameter-free attacks"), written from the paper:
//
//   x⁽⁰⁾      = clamp01(x + ε·t/‖t‖∞),  t ~ U[-1,1]^D             (one random start on the ε-sphere)
//   z⁽ᵏ⁺¹⁾    = P(x⁽ᵏ⁾ + η_b·sign(∇f(x⁽ᵏ⁾)))
//   x⁽ᵏ⁺¹⁾    = P(x⁽ᵏ⁾ + a·(z⁽ᵏ⁺¹⁾ − x⁽ᵏ⁾) + (1 − a)·(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾)),  a = 1 at k = 0, else `momentum` (0.75)
//   P = projection onto the ε-ball around x and onto [0,1].
//   Per example b: η starts at 2ε. At each checkpoint w_j (apgd_checkpoints) η is halved, and the iterate
//   restarted from the best point so far, when (1) the loss rose in at most ρ·(w_j − w_{j−1}) of the steps
//   since the last checkpoint (ρ = 0.75), or (2) η was not halved at the last checkpoint and the best loss
//   has not improved since it.
//   The best-loss point is kept per example; an example counts as broken as soon as any iterate (the start
//   included) is misclassified, and the first such iterate is returned for it.
//
// Losses (maximised), on the mean over T of the logits z (reference.md §6), per example with label y:
//   ce            cross entropy
//   dlr           −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)                 (needs ≥ 3 classes)
//   dlr_targeted  −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12), target t       (needs ≥ 4 classes)
//   with z_π1 ≥ z_π2 ≥ … the sorted logits. AutoAttack's APGD-T takes as targets the classes ranked 2..10
//   by the clean logits (`target_rank`).
//
// Loss and its gradient w.r.t. the logits are computed on the host from the (B,K) mean logits; the input
// gradient is then one vector-Jacobian product through the model. The per-example bookkeeping runs on host
// copies of the images (one (B,C,H,W) copy each way per iteration on CUDA, small beside an SNN's
// forward and backward over T steps). Mode handling as for every attack: BN in eval mode, neuron backward
// = config.grad, both restored (ModelModeGuard); no parameter gradient is touched.
#pragma once
#include <cstdint>
#include <vector>

#include "attacks/attack.h"
#include "engine/rng.h"

namespace spikegrad {

enum class ApgdLoss { ce, dlr, dlr_targeted };

struct ApgdConfig {
  double eps = 8.0 / 255;  // L∞ radius in [0,1] pixel units
  int iterations = 100;
  double momentum = 0.75;  // a
  double rho = 0.75;       // the checkpoint test's share of increasing steps
  ApgdLoss loss = ApgdLoss::ce;
  int target_rank = 2;     // dlr_targeted: the target is the class ranked this high by the clean logits (2..K)
  AttackGrad grad = AttackGrad::bptt;
};

struct ApgdResult {
  Tensor adversarial;          // (B,C,H,W) on the images' device: the first misclassified iterate, else the best-loss one
  std::vector<uint8_t> fooled;  // per example: some iterate (or the start) was misclassified
  std::vector<double> best_loss;
};

// The checkpoints w_0 = 0 < w_1 < … ≤ iterations of the paper: p_0 = 0, p_1 = 0.22,
// p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), w_j = ceil(p_j · iterations), those below `iterations`.
std::vector<int> apgd_checkpoints(int iterations);

// Per-row loss and its gradient w.r.t. the K logits z of one example (double precision). `target` is used by
// dlr_targeted only. Throws when the loss needs more classes than K, naming it.
double apgd_row_loss(ApgdLoss loss, const float* z, int64_t k, int32_t label, int32_t target, double* gz);
const char* apgd_loss_name(ApgdLoss loss);

// Throws a spikegrad::Error naming the field for a config APGD cannot run with.
void check_apgd_config(const ApgdConfig& config, int64_t num_classes);

// Runs APGD on a batch. images (B,C,H,W) float32 in [0,1] on the model's device, labels int32 (B) there.
ApgdResult apgd(Model& model, const Tensor& images, const Tensor& labels, const ApgdConfig& config, Generator& gen);

}  // namespace spikegrad
