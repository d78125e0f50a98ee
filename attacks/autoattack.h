// AutoAttack, standard L∞ version (Croce & Hein, ICML 2020), assembled from this folder's attacks: on the
// examples the model classifies correctly, APGD-CE (100 iterations), then APGD-T with the targeted DLR loss
// against each of the classes ranked 2..10 by the clean logits (100 iterations each), then FAB-T against the
// same targets (100 iterations each), then Square (5000 queries), each stage on the examples no earlier
// stage broke. An example is broken when a stage finds a misclassified point within ε (FAB: its minimum
// norm ≤ ε). Logits are the mean over T of the pre-softmax outputs (reference.md §6). With grad = ann-relu
// or ann-qcfs the gradient stages craft on the ANN (they also judge success there), and a point breaks an
// example only when the spiking network misclassifies it as well.
//
// What the report needs: clean accuracy, the robust accuracy after each stage (the last one is the
// worst case over the ensemble), how many each stage broke, and two diagnostics: examples whose two top
// clean logits are exactly equal (the argmax then depends on an index rule, not on the model) and the
// stages that could not run (APGD-T and FAB-T need at least 4 and 2 classes, and targets ranked up to K).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attacks/attack.h"
#include "engine/rng.h"

namespace spikegrad {

struct AutoAttackConfig {
  double eps = 8.0 / 255;
  int apgd_iterations = 100;
  int fab_iterations = 100;
  int square_queries = 5000;
  int target_classes = 9;  // APGD-T and FAB-T: ranks 2..target_classes+1 (capped at K)
  AttackGrad grad = AttackGrad::bptt;  // of the gradient stages; Square always queries the spiking network
  // The stages to run, in the fixed order above (a subset runs one member alone, e.g. {"square"}).
  std::vector<std::string> stages = {"apgd-ce", "apgd-t", "fab-t", "square"};
};

struct AutoAttackStage {
  std::string name;     // "apgd-ce", "apgd-t", "fab-t", "square"
  int64_t broken = 0;   // examples this stage broke (none of the earlier ones had)
  int64_t robust_after = 0;  // still robust after it (correct on the clean image, unbroken)
  bool ran = true;
  std::string skipped_because;  // when !ran
};

struct AutoAttackResult {
  int64_t total = 0;
  int64_t clean_correct = 0;
  int64_t top_logit_ties = 0;         // clean top-2 logits exactly equal
  std::vector<AutoAttackStage> stages;  // in order
  Tensor adversarial;                 // (B,C,H,W) on the images' device: the breaking point, else the clean image
  std::vector<uint8_t> robust;        // (B) correct on the clean image and unbroken by every stage

  int64_t robust_correct() const { return stages.empty() ? clean_correct : stages.back().robust_after; }
  // Sums counts over batches (stages must match by name and order; adversarial/robust are per batch only).
  AutoAttackResult& operator+=(const AutoAttackResult& other);
};

void check_autoattack_config(const AutoAttackConfig& config);

// images (B,C,H,W) float32 in [0,1] on the model's device, labels int32 (B) there. Random draws (APGD's
// starts, Square's search) come from gen.
AutoAttackResult autoattack(Model& model, const Tensor& images, const Tensor& labels, const AutoAttackConfig& config,
                            Generator& gen);

}  // namespace spikegrad
