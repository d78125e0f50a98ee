// What `spikegrad attack`, `eval` and the training report attack with (--attacks), beyond FGSM/PGD/BIM/GN:
// the AutoAttack members APGD-CE, APGD-T, FAB-T and Square, the AutoAttack ensemble, and CW-L2, each with
// the run's settings. One SweepAttack is one column of the sweep at one epsilon; running it on a batch gives
// the counts of attacks/evaluate.h (robust accuracy, attack success rate, zero input gradients).
#pragma once
#include <string>
#include <vector>

#include "apps/options.h"
#include "attacks/attack.h"
#include "attacks/autoattack.h"
#include "attacks/cw.h"
#include "attacks/evaluate.h"

namespace spikegrad::app {

struct SweepAttack {
  std::string name;  // fgsm pgd bim gn | apgd-ce apgd-t fab-t square autoattack | cw
  double eps = 0;    // L∞ radius (GN: noise std; CW: none, it is an L2 attack)
  AttackConfig basic;           // fgsm, pgd, bim, gn
  AutoAttackConfig ensemble;    // the AutoAttack members (one stage) and autoattack (all four)
  CwConfig cw;
  // What the attack perturbs (--attack-domain), and the model's --encoding, stated in the settings column when
  // it is not direct.
  AttackDomain domain = AttackDomain::pixels;
  std::string encoding = "direct";
  SweepAttack() = default;
  SweepAttack(const AttackConfig& a);  // NOLINT: a basic attack is a sweep attack
  bool is_basic() const;
};

// The names --attacks accepts, in the order a sweep runs them.
const std::vector<std::string>& sweep_attack_names();
// "fgsm,pgd,apgd-ce" -> the names, checked; "none" -> empty. Errors name --attacks and list the valid names.
std::vector<std::string> parse_attack_list(const std::string& text);
// The PGD/BIM step at `eps` from --alpha: a fraction ("1/255") or "eps/N" (N > 0; at eps 0, 1/255, which
// then does not matter). A sweep's default is eps/4: TMI's 1/255 at 4/255, and a step that still reaches
// eps = 8/255 in 4 steps, where a fixed 1/255 could not.
double alpha_at(const std::string& alpha, double eps);

// The attacks of --attacks at one epsilon, with the run's settings.
std::vector<SweepAttack> report_attacks(const RunConfig& c, double eps);
// The settings column of the table, e.g. "eps 4/255, alpha 1/255, 4 steps, random start, grad bptt".
std::string describe(const SweepAttack& a);
// "4/255" when v is a whole number of 255ths, else the number: how the tables write an epsilon.
std::string eps_text(double v);
// The safetensors name of an attack's adversarial inputs in --save-adv: "pgd/eps=4/255", "cw/c=1".
std::string adversarial_name(const SweepAttack& a);

// One batch of one attack: the counts, the adversarial images (adv_out; in the spike domain the adversarial
// (B,T,C,H,W) spikes, crafted from the attacked model's encoding of `images`) and, for autoattack, the ensemble's
// per-stage counts (added into *ensemble). Random draws from gen. With `source` (a transfer / black-box
// attack, --source-checkpoint) the inputs are crafted on the source model and scored on `model`; the
// ensemble's stage counts are then the source's and are not reported.
RobustResult run_sweep_attack(Model& model, const Tensor& images, const Tensor& labels, const SweepAttack& a,
                              Generator& gen, Tensor* adv_out, AutoAttackResult* ensemble, Model* source = nullptr);

}  // namespace spikegrad::app
