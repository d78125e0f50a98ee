// The attacks of a sweep (apps/attack_sweep.h).
#include "apps/attack_sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "attacks/autoattack.h"

namespace spikegrad::app {

namespace {

const std::vector<std::string> kBasic = {"fgsm", "pgd", "bim", "gn"};

bool contains(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

}  // namespace

std::string eps_text(double v) {
  char buf[48];
  const double k = v * 255.0;
  if (std::abs(k - std::round(k)) < 1e-6) std::snprintf(buf, sizeof buf, "%g/255", std::round(k));
  else std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

SweepAttack::SweepAttack(const AttackConfig& a) : name(attack_kind_name(a.kind)), eps(a.eps), basic(a) {}

bool SweepAttack::is_basic() const { return contains(kBasic, name); }

const std::vector<std::string>& sweep_attack_names() {
  static const std::vector<std::string> names = {"fgsm",  "pgd",    "bim",    "gn",         "apgd-ce",
                                                 "apgd-t", "fab-t", "square", "autoattack", "cw"};
  return names;
}

std::vector<std::string> parse_attack_list(const std::string& text) {
  if (text == "none") return {};
  std::string valid;
  for (const std::string& n : sweep_attack_names()) valid += (valid.empty() ? "" : ", ") + n;
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    SG_CHECK(contains(sweep_attack_names(), name),
             "--attacks: unknown attack '" << name << "' in '" << text << "'; the attacks are " << valid << " (or none)");
    SG_CHECK(!contains(out, name), "--attacks: '" << name << "' is listed twice in '" << text << "'");
    out.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

double alpha_at(const std::string& alpha, double eps) {
  if (alpha.rfind("eps/", 0) == 0) {
    const double n = parse_fraction(alpha.substr(4), "--alpha");
    SG_CHECK(n > 0, "--alpha: eps/N needs N > 0, got '" << alpha << "'");
    return eps > 0 ? eps / n : 1.0 / 255;
  }
  return parse_fraction(alpha, "--alpha");
}

std::vector<SweepAttack> report_attacks(const RunConfig& c, double eps) {
  const AttackGrad grad = parse_attack_grad(c.attack_grad);
  const AttackDomain domain = parse_attack_domain(c.attack_domain);
  std::vector<SweepAttack> out;
  for (const std::string& name : parse_attack_list(c.attacks)) {
    SweepAttack s;
    s.name = name;
    s.eps = eps;
    s.domain = domain;
    s.encoding = c.encoding;
    if (s.is_basic()) {
      AttackConfig& a = s.basic;
      a.kind = parse_attack_kind(name);
      a.eps = a.kind == AttackKind::gn && !c.gn_std.empty() ? parse_fraction(c.gn_std, "--gn-std") : eps;
      s.eps = a.eps;
      a.alpha = alpha_at(c.alpha, eps);
      a.steps = int(c.steps);
      a.random_start = a.kind == AttackKind::pgd;
      a.grad = grad;
      a.seed = c.seed;
      a.loss = parse_attack_loss(c.attack_loss);
      a.domain = domain;
    } else if (name == "cw") {
      s.eps = 0;
      s.cw.c = c.cw_c;
      s.cw.kappa = c.cw_kappa;
      s.cw.steps = int(c.cw_steps);
      s.cw.lr = c.cw_lr;
      s.cw.grad = grad;
    } else {
      AutoAttackConfig& e = s.ensemble;
      e.eps = eps;
      e.apgd_iterations = int(c.apgd_iterations);
      e.fab_iterations = int(c.fab_iterations);
      e.square_queries = int(c.square_queries);
      e.target_classes = int(c.target_classes);
      e.grad = grad;
      if (name != "autoattack") e.stages = {name};
    }
    out.push_back(s);
  }
  return out;
}

std::string describe(const SweepAttack& s) {
  std::ostringstream o;
  if (s.is_basic()) {
    const AttackConfig& a = s.basic;
    if (a.kind == AttackKind::gn) o << "std " << eps_text(a.eps);
    else o << "eps " << eps_text(a.eps);
    if (a.kind == AttackKind::pgd || a.kind == AttackKind::bim)
      o << ", alpha " << eps_text(a.alpha) << ", " << a.steps << " steps" << (a.random_start ? ", random start" : "");
    if (a.kind != AttackKind::gn) o << ", " << attack_loss_name(a.loss) << " loss, grad " << attack_grad_name(a.grad);
  } else if (s.name == "cw") {
    o << "L2, c " << s.cw.c << ", kappa " << s.cw.kappa << ", " << s.cw.steps << " steps of Adam " << s.cw.lr
      << ", grad " << attack_grad_name(s.cw.grad);
  } else {
    const AutoAttackConfig& e = s.ensemble;
    o << "eps " << eps_text(e.eps);
    const bool all = s.name == "autoattack";
    if (all || s.name.rfind("apgd", 0) == 0) o << ", " << e.apgd_iterations << " APGD iterations";
    if (all || s.name == "fab-t") o << ", " << e.fab_iterations << " FAB iterations";
    if (all || s.name == "apgd-t" || s.name == "fab-t") o << ", " << e.target_classes << " target classes";
    if (all || s.name == "square") o << ", " << e.square_queries << " Square queries";
    o << ", grad " << attack_grad_name(e.grad);
  }
  // Spike-domain eps is in spike units, not comparable with pixel eps: every row of such a run says so.
  if (s.encoding != "direct")
    o << ", " << (s.domain == AttackDomain::spikes ? "spike" : "pixel") << " domain (" << s.encoding << " encoding)";
  return o.str();
}

std::string adversarial_name(const SweepAttack& s) {
  if (s.name == "cw") {
    std::ostringstream o;
    o << "cw/c=" << s.cw.c;
    return o.str();
  }
  return s.name + "/" + (s.name == "gn" ? "std=" : "eps=") + eps_text(s.eps);
}

RobustResult run_sweep_attack(Model& model, const Tensor& pixels, const Tensor& labels, const SweepAttack& s,
                              Generator& gen, Tensor* adv_out, AutoAttackResult* ensemble, Model* source) {
  // In the spike domain the attacked model encodes once (deterministically, models/encoding.h); every attack
  // below, and the source model of a transfer attack, then sees those spikes as the input to perturb.
  const Tensor images = attack_input(model, pixels, s.domain);
  if (s.is_basic() && source == nullptr) return evaluate_attack(model, images, labels, s.basic, gen, adv_out);
  Model& craft = source ? *source : model;
  Tensor adv;
  AttackGrad grad;
  if (s.is_basic()) {
    adv = attack(craft, images, labels, s.basic, gen);
    grad = s.basic.grad;
  } else if (s.name == "cw") {
    adv = cw_l2(craft, images, labels, s.cw).adversarial;
    grad = s.cw.grad;
  } else {
    const AutoAttackResult r = autoattack(craft, images, labels, s.ensemble, gen);
    adv = r.adversarial;
    grad = s.ensemble.grad;
    if (ensemble && source == nullptr) *ensemble += r;
  }
  if (adv_out) *adv_out = adv;
  return evaluate_adversarial(model, images, labels, adv, grad);
}

}  // namespace spikegrad::app
