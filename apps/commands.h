// `spikegrad eval` and `spikegrad attack` on a checkpoint.
#pragma once
#include "apps/options.h"

namespace spikegrad::app {

// Clean accuracy on the test split, the attack table at --eps, temporal statistics; --save-logits.
void run_eval(const RunConfig& flags);
// An epsilon sweep (--eps a,b,c) of FGSM, PGD, BIM and GN; --save-adv writes every adversarial input.
void run_attack(const RunConfig& flags);

// The run config stored in the checkpoint, with this invocation's evaluation flags applied.
RunConfig config_for_checkpoint(const RunConfig& flags, const RunConfig& saved);

}  // namespace spikegrad::app
