// `train --track-robustness N`: after every epoch, on the first N test examples, the two numbers of the TMI
// paper's "higher temporal MI, more fragile" trend (README "MI and robustness"):
//   test_mi_bits  the KDE MI(X;Z) of the TMI estimator (losses/losses.h tap_mutual_information: the run's
//                 --mi-x/--mi-z taps, default first / last convolutional spiking layer; rates x255, 256 bins,
//                 its sigma) in bits, the mean over the examples of each example's MI over its T steps;
//   robust_acc    accuracy (%) under FGSM at the run's --eps (the first value), --attack-grad, --attack-domain
//                 and --attack-loss; FGSM only, because PGD would multiply the per-epoch cost by its steps.
// Neither may change training: no tape is kept (the MI pass runs under NoGradGuard; FGSM asks the tape for the
// input's gradient only), BN runs in eval mode (running statistics read, never updated), FGSM draws no
// random numbers and the run's Generator is not touched; the model's modes are restored afterwards.
#pragma once
#include "apps/options.h"
#include "datasets/dataset.h"
#include "models/model.h"

namespace spikegrad::app {

struct EpochRobustness {
  double test_mi_bits = 0;
  double robust_accuracy = 0;  // percent
  int64_t examples = 0;
};

// Measures both on the first c.track_robustness examples of `test` (all of them when it is larger), in
// batches of c.eval_batch. c.track_robustness must be >= 1.
EpochRobustness measure_epoch_robustness(Model& model, const Dataset& test, const RunConfig& c);

}  // namespace spikegrad::app
