// The gradient-obfuscation checklist of every attack report (issue 12, item 4; Athalye et al. 2018, Carlini
// et al. 2019's checks). A surrogate-gradient SNN can look robust because its gradients are useless, not
// because it is: each check below is a symptom of that, stated pass/fail with its numbers, and the run is
// flagged "possibly obfuscated" when any fails. The checks that need attacks of their own run them on the
// first 200 examples of the attack subset, with the run's attack settings; the others read the sweep's table:
//
//   eps = 0            PGD at ε = 0 gives exactly the clean accuracy (nothing but the forward pass differs)
//   monotone in eps    every attack's robust accuracy does not rise with ε over the sweep
//   more steps         BIM with 2× the steps at the largest ε is not weaker than BIM (deterministic, no start)
//   unbounded          PGD at ε = 1 (any image in [0,1]), 10 steps of 0.2, drives robust accuracy below 2%
//   black-box          Square (score-based, no gradient) is not stronger than the best gradient attack at
//                      the same ε (only when Square ran)
//   black-box inside   Square, run by AutoAttack after APGD-CE, APGD-T and FAB-T, lowers robust accuracy by
//   AutoAttack         at most 1 point (only when AutoAttack ran with Square and a gradient stage)
//   transfer           each attack crafted on another model (--source-checkpoint) is not stronger than the
//                      same attack crafted on this one (only with a source checkpoint)
//   zero gradients     under 5% of the examples have an exactly zero input gradient
//   BPTT vs RGA        PGD with the rate-gradient approximation is not stronger than PGD with BPTT by more
//                      than 5 points at the largest ε (the other way round is the expected direction)
//   BPTT vs ANN-ReLU,  the same for PGD crafted on the weights run as a one-step ReLU / QCFS network
//   BPTT vs ANN-QCFS   (--attack-grad ann-relu / ann-qcfs); not run for models that read event frames
//                      (and BPTT vs RGA only for neurons with an RGA τ: lif, if)
#pragma once
#include <string>
#include <vector>

#include "apps/evaluation.h"

namespace spikegrad::app {

struct ObfuscationCheck {
  std::string name;
  bool pass = true;
  std::string detail;  // the numbers behind the verdict
};

// rows: the attack table of this run (its robust accuracies per attack and ε are reused; the checks run
// the four extra attacks they need on the same subset).
// transfer: the same sweep crafted on another model (--source-checkpoint), when given: a transfer attack
// must not be stronger than the white-box one.
std::vector<ObfuscationCheck> obfuscation_checks(Model& model, const Dataset& data, const RunConfig& c,
                                                 const std::vector<AttackRow>& rows, const PassOptions& pass,
                                                 const std::vector<AttackRow>& transfer = {});

// A markdown list, then "verdict: no sign of gradient obfuscation" or "verdict: POSSIBLY OBFUSCATED (…)".
std::string format_checks(const std::vector<ObfuscationCheck>& checks);

}  // namespace spikegrad::app
