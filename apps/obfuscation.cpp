// The gradient-obfuscation checklist (apps/obfuscation.h).
#include "apps/obfuscation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "engine/neuron_registry.h"

namespace spikegrad::app {

namespace {

constexpr int64_t kCheckExamples = 200;  // the extra attacks run on the first 200 examples of the attack subset

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * v);
  return buf;
}

// A PGD/BIM sweep attack at `eps` from the run's settings, then adjusted by the caller.
SweepAttack basic(const RunConfig& c, const std::string& name, double eps) {
  RunConfig one = c;
  one.attacks = name;
  return report_attacks(one, eps).front();
}

}  // namespace

std::vector<ObfuscationCheck> obfuscation_checks(Model& model, const Dataset& data, const RunConfig& c,
                                                 const std::vector<AttackRow>& rows, const PassOptions& pass,
                                                 const std::vector<AttackRow>& transfer) {
  // The sweep's robust accuracy per (attack, eps), its largest eps and the clean accuracy on the subset.
  std::map<std::string, std::map<double, double>> robust;
  double largest = 0, clean = -1, zero_share = 0;
  for (const AttackRow& r : rows) {
    if (r.attack.rfind("autoattack: ", 0) == 0 || r.attack == "gn" || r.attack == "cw") continue;
    robust[r.attack][r.eps] = r.result.robust_accuracy();
    largest = std::max(largest, r.eps);
    clean = r.result.clean_accuracy();
    zero_share = std::max(zero_share, r.result.zero_grad_fraction());
  }
  if (largest == 0) largest = parse_fraction_list(c.eps, "--eps").back();

  // The extra attacks, one table run: PGD at 0, BIM and 2×-step BIM at the largest eps, PGD at 1, then PGD at
  // the largest eps with BPTT, RGA and both ANN modes (cheap: one time step).
  std::vector<SweepAttack> extra;
  extra.push_back(basic(c, "pgd", 0.0));
  extra.push_back(basic(c, "bim", largest));
  SweepAttack more = basic(c, "bim", largest);
  more.basic.steps *= 2;
  extra.push_back(more);
  SweepAttack unbounded = basic(c, "pgd", 1.0);
  unbounded.basic.steps = 10;
  unbounded.basic.alpha = 0.2;
  extra.push_back(unbounded);
  SweepAttack bptt = basic(c, "pgd", largest);
  bptt.basic.grad = AttackGrad::bptt;
  extra.push_back(bptt);  // index 4
  // The other gradients, each where the model has it: RGA needs the neuron's leak τ (lif and if have one; other
  // registered neurons need SpikeOptions::rga_tau, which no flag sets), and a model that reads event frames has
  // no one-image ANN to run (Model::set_ann_mode).
  std::vector<std::pair<const char*, size_t>> others;  // name, row of x
  std::vector<std::pair<const char*, AttackGrad>> grads;
  if (neuron_has_rga_tau(model.config().neuron_spec.name)) grads.push_back({"RGA", AttackGrad::rga});
  // ANN mode runs one step of the analog image: neither event frames nor phase/Poisson spikes have one.
  if (!model.config().frame_input && model.config().encoding == InputEncoding::direct) {
    grads.push_back({"ANN-ReLU", AttackGrad::ann_relu});
    grads.push_back({"ANN-QCFS", AttackGrad::ann_qcfs});
  }
  for (const auto& [name, g] : grads) {
    SweepAttack other = basic(c, "pgd", largest);
    other.basic.grad = g;
    others.push_back({name, extra.size()});
    extra.push_back(other);
  }
  PassOptions p = pass;
  p.label = pass.label.empty() ? "obfuscation checks" : pass.label;
  const int64_t subset = std::min<int64_t>(c.attack_subset > 0 ? c.attack_subset : data.size(), kCheckExamples);
  const std::vector<AttackRow> x = attack_table(model, data, extra, subset, c.eval_batch, c.seed + 1, nullptr, p);

  std::vector<ObfuscationCheck> out;
  const RobustResult& zero = x[0].result;
  out.push_back({"eps = 0 equals clean", zero.adv_correct == zero.clean_correct,
                 "PGD at eps 0: " + pct(zero.robust_accuracy()) + ", clean " + pct(zero.clean_accuracy())});
  clean = zero.clean_accuracy();

  std::string rises;
  for (const auto& [attack, by_eps] : robust) {
    double previous = 2;
    for (const auto& [eps, acc] : by_eps) {  // ascending eps
      if (acc > previous + 1e-12)
        rises += (rises.empty() ? "" : "; ") + attack + " rises to " + pct(acc) + " at eps " + eps_text(eps);
      previous = acc;
    }
  }
  out.push_back({"monotone in eps", rises.empty(), rises.empty() ? "no attack's robust accuracy rises with eps" : rises});

  const double b1 = x[1].result.robust_accuracy(), b4 = x[2].result.robust_accuracy();
  out.push_back({"more steps", b4 <= b1, "BIM " + std::to_string(x[1].result.total) + " examples: " +
                                             std::to_string(extra[1].basic.steps) + " steps " + pct(b1) + ", " +
                                             std::to_string(extra[2].basic.steps) + " steps " + pct(b4)});

  const double unb = x[3].result.robust_accuracy();
  out.push_back({"unbounded", unb < 0.02, "PGD at eps 1, 10 steps of 0.2: " + pct(unb) + " (must be < 2%)"});

  if (robust.count("square")) {
    double best_white = 2;
    for (const auto& [attack, by_eps] : robust)
      if (attack != "square" && by_eps.count(largest)) best_white = std::min(best_white, by_eps.at(largest));
    const double sq = robust["square"].count(largest) ? robust["square"][largest] : 2;
    if (best_white <= 1 && sq <= 1)
      out.push_back({"black-box", sq >= best_white,
                     "Square " + pct(sq) + ", best gradient attack " + pct(best_white) + " at the largest eps"});
  }

  // Inside AutoAttack: what Square (no gradient) still breaks after the three gradient attacks. On a model
  // whose gradients are informative it adds next to nothing (Croce & Hein 2020 report tenths of a point).
  {
    std::map<double, double> before_square, after_square;
    for (const AttackRow& r : rows) {
      if (r.attack.rfind("autoattack: after ", 0) != 0) continue;
      if (r.attack == "autoattack: after square") {
        after_square[r.eps] = r.result.robust_accuracy();
      } else {
        before_square[r.eps] = r.result.robust_accuracy();  // the stage rows come in order: the last one before square
      }
    }
    std::string gaps;
    bool pass_all = true;
    for (const auto& [eps, after] : after_square) {
      if (!before_square.count(eps)) continue;
      const double drop = before_square[eps] - after;
      pass_all = pass_all && drop <= 0.01;
      gaps += (gaps.empty() ? "" : "; ") + std::string("eps ") + eps_text(eps) + ": gradient stages " +
              pct(before_square[eps]) + ", after Square " + pct(after);
    }
    if (!gaps.empty())
      out.push_back({"black-box inside AutoAttack", pass_all, gaps + " (Square may lower it by at most 1 point)"});
  }

  if (!transfer.empty()) {
    std::string stronger;
    for (size_t i = 0; i < transfer.size() && i < rows.size(); ++i)
      if (transfer[i].attack == rows[i].attack && transfer[i].result.robust_accuracy() < rows[i].result.robust_accuracy())
        stronger += (stronger.empty() ? "" : "; ") + rows[i].attack + " at eps " + eps_text(rows[i].eps) + ": transfer " +
                    pct(transfer[i].result.robust_accuracy()) + " < white-box " + pct(rows[i].result.robust_accuracy());
    out.push_back({"transfer", stronger.empty(),
                   stronger.empty() ? "no attack crafted on the source model is stronger than on this one" : stronger});
  }

  out.push_back({"zero gradients", zero_share < 0.05, pct(zero_share) + " of the examples have an exactly zero input gradient"});

  // A gradient that ignores the spiking dynamics should not beat the exact surrogate gradient by much; when it
  // does, BPTT's gradients are the weak link and the BPTT numbers overstate robustness.
  const double b = x[4].result.robust_accuracy();
  for (const auto& [name, row] : others) {
    const double acc = x[row].result.robust_accuracy();
    out.push_back({std::string("BPTT vs ") + name, acc >= b - 0.05,
                   "PGD at the largest eps: BPTT " + pct(b) + ", " + name + " " + pct(acc)});
  }
  return out;
}

std::string format_checks(const std::vector<ObfuscationCheck>& checks) {
  std::string out, failed;
  for (const ObfuscationCheck& k : checks) {
    out += "- " + std::string(k.pass ? "pass" : "**FAIL**") + ": " + k.name + " — " + k.detail + "\n";
    if (!k.pass) failed += (failed.empty() ? "" : ", ") + k.name;
  }
  out += failed.empty() ? "- verdict: no sign of gradient obfuscation in these checks\n"
                        : "- verdict: **POSSIBLY OBFUSCATED** (" + failed + "): the robust accuracies above may overstate robustness\n";
  return out;
}

}  // namespace spikegrad::app
