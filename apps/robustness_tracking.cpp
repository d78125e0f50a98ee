// The per-epoch MI and robustness of `train --track-robustness` (contract in apps/robustness_tracking.h).
#include "apps/robustness_tracking.h"

#include <algorithm>

#include "apps/attack_sweep.h"
#include "apps/evaluation.h"
#include "attacks/attack.h"
#include "attacks/evaluate.h"
#include "datasets/loader.h"
#include "engine/ops.h"
#include "losses/losses.h"

namespace spikegrad::app {

EpochRobustness measure_epoch_robustness(Model& model, const Dataset& test, const RunConfig& c) {
  SG_CHECK(c.track_robustness >= 1, "--track-robustness: must be >= 1 to measure, got " << c.track_robustness);
  RunConfig fgsm_flags = c;
  fgsm_flags.attacks = "fgsm";
  const AttackConfig fgsm = report_attacks(fgsm_flags, parse_fraction_list(c.eps, "--eps").front()).front().basic;
  const int64_t limit = std::min<int64_t>(c.track_robustness, test.size());
  Loader loader(test, LoaderOptions::evaluation(c.eval_batch));
  Batch b;
  EpochRobustness r;
  double mi_sum = 0;
  int64_t correct = 0;
  while (r.examples < limit && loader.next(b)) {
    Tensor images = b.images, labels = b.labels;
    if (r.examples + images.size(0) > limit) {
      images = images.slice0(0, limit - r.examples);
      labels = labels.slice0(0, limit - r.examples);
    }
    const int64_t n = images.size(0);
    const Tensor x = images.to(model.device());
    {
      NoGradGuard no_grad;
      ModelModeGuard eval_mode(model, std::nullopt);  // BN on running statistics, restored afterwards
      Tape tape;
      const ForwardResult out = model.forward(tape, x, TapKeep::mi(c.mi_x, c.mi_z));
      mi_sum += tap_mutual_information(tape, out.taps, c.mi_x, c.mi_z).item() * double(n);
    }
    // FGSM draws nothing from its generator; a local one keeps the run's stream untouched regardless.
    Generator unused(fgsm.seed);
    const Tensor x_attacked = attack_input(model, x, fgsm.domain);
    const Tensor adversarial = attack(model, x_attacked, labels.to(model.device()), fgsm, unused);
    correct += count_matches(predict(model, adversarial), labels);
    r.examples += n;
  }
  SG_CHECK(r.examples > 0, "--track-robustness: the test split is empty");
  r.test_mi_bits = mi_sum / double(r.examples);
  r.robust_accuracy = 100.0 * double(correct) / double(r.examples);
  return r;
}

}  // namespace spikegrad::app
