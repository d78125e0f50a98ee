// Clean and robust evaluation of one batch, with the metrics named exactly (pitfall 9) and the
// gradient-obfuscation diagnostic of pitfall 8.
//
// Predictions are the argmax of the mean-over-T logits (reference.md §6), computed with BN in eval mode
// under NoGradGuard, so they depend neither on the model's mode nor on the batch size or composition.
// Accumulate batches with `total += evaluate_attack(...)`.
#pragma once
#include <cstdint>

#include "attacks/attack.h"

namespace spikegrad {

struct RobustResult {
  int64_t total = 0;          // examples evaluated
  int64_t clean_correct = 0;  // correct on the clean images
  int64_t adv_correct = 0;    // correct on the adversarial images
  int64_t fooled = 0;         // correct on the clean image AND wrong on its adversarial image
  int64_t zero_grad = 0;      // examples whose input gradient at the clean image is exactly zero everywhere

  // Ratios in [0,1]; NaN when their denominator is zero (nothing evaluated / nothing initially correct).
  double clean_accuracy() const;       // clean_correct / total
  double robust_accuracy() const;      // adv_correct / total
  // Among initially-correct examples, the fraction the attack flipped: fooled / clean_correct. This is the
  // RGA code's "success rate"; it is NOT 1 - robust_accuracy (initially wrong examples are not counted).
  double attack_success_rate() const;
  // zero_grad / total. Dead surrogate regions make a white-box attack powerless: a high value means the
  // robust accuracy overstates robustness (gradient obfuscation), check with GN/black-box attacks.
  double zero_grad_fraction() const;

  RobustResult& operator+=(const RobustResult& other);
};

// int32 (B) class predictions on the images' device: argmax over K of mean_t logits (the first maximum on
// ties). Images (B,C,H,W) float32 in [0,1]. The model's mode is restored afterwards.
Tensor predict(Model& model, const Tensor& images);

// Number of examples b whose slice grad[b] is exactly zero everywhere (-0.0 counts as zero). grad (B,...).
int64_t count_zero_gradient_examples(const Tensor& grad);

// One batch: clean predictions, the attack of `config` (random draws from `gen`), predictions on the
// adversarial images, and the zero-gradient diagnostic from the input gradient at the clean images in the
// attack's gradient mode. When adv_out is given it receives the adversarial images (re-classifying them
// reproduces adv_correct exactly).
RobustResult evaluate_attack(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config,
                             Generator& gen, Tensor* adv_out = nullptr);

// The same counts for adversarial images `adv` crafted by any other attack (APGD, FAB, Square, AutoAttack,
// CW): clean and adversarial predictions, and the zero-gradient diagnostic of the CE input gradient at the
// clean images in `grad` mode.
RobustResult evaluate_adversarial(Model& model, const Tensor& images, const Tensor& labels, const Tensor& adv,
                                  AttackGrad grad);

}  // namespace spikegrad
