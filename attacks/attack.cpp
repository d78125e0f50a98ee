// FGSM, PGD, BIM and Gaussian noise (reference.md §5.2); the contract is in attacks/attack.h.
#include "attacks/attack.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "attacks/logit_gradient.h"
#include "models/encoding.h"

namespace spikegrad {

namespace {

struct KindName {
  AttackKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {
    {AttackKind::fgsm, "fgsm"}, {AttackKind::pgd, "pgd"}, {AttackKind::bim, "bim"}, {AttackKind::gn, "gn"}};

bool iterative(AttackKind kind) { return kind == AttackKind::pgd || kind == AttackKind::bim; }

// d loss / d x at x, assuming the caller holds a ModelModeGuard. The leaf is a fresh view of x, so the
// caller's tensor never gets requires_grad set and the tape sees a leaf even when x came off another tape.
Tensor loss_gradient(Model& model, const Tensor& x, const Tensor& labels, const char* op,
                     AttackLoss which = AttackLoss::ce) {
  SG_CHECK(grad_enabled(), op << ": gradients are disabled (called inside a NoGradGuard); the attack needs d loss/d input");
  attack_detail::check_gradient_reaches_input(model, x, op);
  if (which == AttackLoss::cw) {
    // d (max_{i≠y} z_i − z_y) / d x through the shared logit pass (host copies of the batch).
    const std::vector<int32_t> y = labels.to_vector<int32_t>();
    const attack_detail::LogitPass pass = attack_detail::logit_pass(
        model, x.to_vector<float>(), x.shape(), x.device(),
        [&](int64_t i, const float* z, int64_t k, double* gz) {
          const int32_t label = y[size_t(i)];
          const int64_t other = attack_detail::best_other(z, k, label);
          gz[other] = 1.0;
          gz[label] = -1.0;
        },
        op);
    return Tensor::from_vector<float>(pass.grad, x.shape()).to(x.device());
  }
  Tape tape;
  Tensor leaf = x.view(x.shape());
  leaf.set_requires_grad(true);
  ForwardResult out = model.forward(tape, leaf, TapKeep::none());
  Tensor loss = ops::cross_entropy(tape, ops::mean_time(tape, out.logits), labels);
  Tensor g = tape.grad(loss, {leaf})[0];
  SG_CHECK(g.defined() && g.shape() == x.shape(), op << ": the model's loss does not depend on its input");
  return g;
}

// clamp01(x + eps·noise); noise ~ N(0,1). No gradient is involved, so the model is not needed.
Tensor gaussian_noise(const Tensor& images, double eps, Generator& gen) {
  NoGradGuard no_grad;
  Tape tape;  // ops take a tape; nothing records on it under NoGradGuard
  Tensor noise = rand_normal(images.shape(), gen, images.device());
  return ops::clamp(tape, ops::add(tape, images, ops::scale(tape, noise, eps)), 0.0, 1.0);
}

// FGSM, PGD and BIM. `clean_gradient` (may be undefined) is the gradient at `images` when the caller has it.
Tensor gradient_attack(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& cfg, Generator& gen,
                       const Tensor& clean_gradient) {
  const char* op = attack_kind_name(cfg.kind);
  ModelModeGuard guard(model, cfg.grad);
  Tape tape;  // for the update arithmetic, which runs under NoGradGuard and never records
  auto gradient_at = [&](const Tensor& x, bool at_clean_point) {
    return at_clean_point && clean_gradient.defined() && cfg.loss == AttackLoss::ce
               ? clean_gradient
               : loss_gradient(model, x, labels, op, cfg.loss);
  };

  if (cfg.kind == AttackKind::fgsm) {
    Tensor g = gradient_at(images, true);
    NoGradGuard no_grad;
    return ops::clamp(tape, ops::add(tape, images, ops::scale(tape, ops::sign(g), cfg.eps)), 0.0, 1.0);
  }

  Tensor x = images;
  bool at_clean_point = true;
  if (cfg.kind == AttackKind::pgd && cfg.random_start) {
    NoGradGuard no_grad;
    Tensor u = rand_uniform(images.shape(), gen, images.device());  // [0,1) -> [-eps, eps)
    Tensor start = ops::add_scalar(tape, ops::scale(tape, u, 2.0 * cfg.eps), -cfg.eps);
    x = ops::clamp(tape, ops::add(tape, images, start), 0.0, 1.0);
    at_clean_point = false;
  }
  const Tensor minus_images = [&] {
    NoGradGuard no_grad;
    return ops::scale(tape, images, -1.0);
  }();
  for (int step = 0; step < cfg.steps; ++step) {
    Tensor g = gradient_at(x, at_clean_point);
    at_clean_point = false;
    NoGradGuard no_grad;
    x = ops::add(tape, x, ops::scale(tape, ops::sign(g), cfg.alpha));
    // Project onto the eps-ball around the clean images, then onto the valid pixel range.
    Tensor delta = ops::clamp(tape, ops::add(tape, x, minus_images), -cfg.eps, cfg.eps);
    x = ops::clamp(tape, ops::add(tape, images, delta), 0.0, 1.0);
  }
  return x;
}

}  // namespace

AttackConfig tmi_default(AttackKind kind) {
  AttackConfig c;
  c.kind = kind;
  c.eps = 4.0 / 255;
  c.alpha = 1.0 / 255;
  c.steps = 4;
  c.random_start = true;
  return c;
}

AttackConfig rat_preset(AttackKind kind) {
  AttackConfig c;
  c.kind = kind;
  c.eps = 8.0 / 255;  // also the GN std in the RAT/FEEL config
  c.alpha = 0.01;
  c.steps = 7;
  c.random_start = true;
  return c;
}

const char* attack_kind_name(AttackKind kind) {
  for (const auto& k : kKindNames)
    if (k.kind == kind) return k.name;
  SG_FAIL("attack_kind_name: unknown AttackKind value " << int(kind));
}

std::vector<std::string> attack_kind_names() {
  std::vector<std::string> names;
  for (const auto& k : kKindNames) names.push_back(k.name);
  return names;
}

AttackKind parse_attack_kind(const std::string& name) {
  for (const auto& k : kKindNames)
    if (name == k.name) return k.kind;
  std::string valid;
  for (const auto& k : kKindNames) valid += (valid.empty() ? "" : ", ") + std::string(k.name);
  SG_FAIL("unknown attack '" << name << "'; valid attacks: " << valid);
}

AttackLoss parse_attack_loss(const std::string& name) {
  if (name == "ce") return AttackLoss::ce;
  if (name == "cw") return AttackLoss::cw;
  SG_FAIL("unknown attack loss '" << name << "'; valid: ce, cw");
}

const char* attack_loss_name(AttackLoss loss) { return loss == AttackLoss::cw ? "cw" : "ce"; }

namespace {
constexpr struct {
  AttackGrad grad;
  const char* name;
} kGradNames[] = {{AttackGrad::bptt, "bptt"}, {AttackGrad::rga, "rga"}, {AttackGrad::ann_relu, "ann-relu"},
                  {AttackGrad::ann_qcfs, "ann-qcfs"}};
}  // namespace

std::vector<std::string> attack_grad_names() {
  std::vector<std::string> names;
  for (const auto& g : kGradNames) names.push_back(g.name);
  return names;
}

namespace {
std::string attack_grad_list() {  // "bptt, rga, ann-relu, ann-qcfs", for error messages
  std::string valid;
  for (const auto& g : kGradNames) valid += (valid.empty() ? "" : ", ") + std::string(g.name);
  return valid;
}
}  // namespace

AttackGrad parse_attack_grad(const std::string& name) {
  for (const auto& g : kGradNames)
    if (name == g.name) return g.grad;
  SG_FAIL("unknown attack gradient '" << name << "'; valid: " << attack_grad_list());
}

const char* attack_grad_name(AttackGrad grad) {
  for (const auto& g : kGradNames)
    if (grad == g.grad) return g.name;
  return "invalid";
}

void check_attack_grad(AttackGrad grad, const char* op) {
  for (const auto& g : kGradNames)
    if (grad == g.grad) return;
  SG_FAIL(op << ": grad must be one of " << attack_grad_list() << ", got " << int(grad));
}

AttackDomain parse_attack_domain(const std::string& name) {
  if (name == "pixels") return AttackDomain::pixels;
  if (name == "spikes") return AttackDomain::spikes;
  SG_FAIL("--attack-domain: unknown domain '" << name << "'; valid: pixels, spikes");
}

const char* attack_domain_name(AttackDomain domain) { return domain == AttackDomain::spikes ? "spikes" : "pixels"; }

Tensor attack_input(const Model& model, const Tensor& images, AttackDomain domain) {
  return domain == AttackDomain::spikes ? encode_spike_frames(model, images) : images;
}

int bim_default_steps(double eps) {
  SG_CHECK(std::isfinite(eps) && eps >= 0, "bim_default_steps: eps must be finite and >= 0, got " << eps);
  return int(std::min(eps * 255 + 4, 1.25 * eps * 255));
}

void check_attack_config(const AttackConfig& c) {
  const char* op = attack_kind_name(c.kind);
  // eps > 1 would cover the whole pixel range: almost surely a value in 0..255 units (8 instead of 8/255).
  SG_CHECK(std::isfinite(c.eps) && c.eps >= 0 && c.eps <= 1,
           op << ": eps must be in [0,1] (pixel units of [0,1] images, e.g. 8/255 = 0.0314), got " << c.eps);
  if (iterative(c.kind)) {
    SG_CHECK(c.steps >= 1, op << ": steps must be >= 1, got " << c.steps);
    SG_CHECK(std::isfinite(c.alpha) && c.alpha > 0, op << ": alpha (step size) must be finite and > 0, got " << c.alpha);
  }
  check_attack_grad(c.grad, op);
}

ModelModeGuard::ModelModeGuard(Model& model, std::optional<AttackGrad> grad)
    : model_(model),
      was_training_(model.training()),
      previous_backward_(model.spike_options().backward),
      previous_ann_(model.ann_mode()) {
  model_.train(false);
  if (!grad) return;
  check_attack_grad(*grad, "attack");
  model_.spike_options().backward = *grad == AttackGrad::rga ? ops::SpikeBackward::rga : ops::SpikeBackward::bptt;
  std::optional<AnnMode> ann;
  if (*grad == AttackGrad::ann_relu) ann = AnnMode{AnnActivation::relu};
  if (*grad == AttackGrad::ann_qcfs) ann = AnnMode{AnnActivation::qcfs};
  model_.set_ann_mode(ann);
}

ModelModeGuard::~ModelModeGuard() {
  model_.train(was_training_);
  model_.spike_options().backward = previous_backward_;
  model_.set_ann_mode(previous_ann_);
}

namespace attack_detail {

void check_images_in_unit_range(const Tensor& images, const char* op) {
  // (B,T,C,H,W) for models that read event frames; every attack treats an example as one flat vector.
  SG_CHECK(images.defined() && (images.ndim() == 4 || images.ndim() == 5),
           op << ": images must be (B,C,H,W) (or (B,T,C,H,W) frames), got "
              << (images.defined() ? shape_str(images.shape()) : "undefined"));
  SG_CHECK(images.dtype() == DType::F32, op << ": images must be float32, got " << dtype_name(images.dtype()));
  SG_CHECK(images.numel() > 0, op << ": images are empty, shape " << shape_str(images.shape()));
  // Pitfall 7: attacks and clamps assume [0,1] pixels with normalisation inside the model; NaN fails too.
  // On CUDA the batch stays on the device: the check is a kernel whose failure is thrown at the next
  // synchronisation (ops::check_range), not a copy of the batch to the host per call.
  ops::check_range(images, 0.0, 1.0, [op = std::string(op)](int64_t i, double v) {
    std::ostringstream o;
    o << op << ": images must lie in [0,1] (normalisation belongs inside the model), got " << float(v)
      << " at flat index " << i;
    return o.str();
  });
}

bool gradient_reaches_input(const Model& model, const Tensor& x) {
  const ModelConfig& c = model.config();
  return c.encoding == InputEncoding::direct || c.frame_input || !x.defined() || x.ndim() != 4;
}

void check_gradient_reaches_input(const Model& model, const Tensor& x, const char* op) {
  if (gradient_reaches_input(model, x)) return;
  const ModelConfig& c = model.config();
  SG_FAIL(op << ": --attack-domain pixels with --encoding " << encoding_name(c.encoding)
             << ": the encoder's spikes are piecewise constant in the pixels, so the pixel gradient is identically zero "
                "and every gradient attack would report fake robustness; use --attack-domain spikes (perturb the "
                "encoded spikes, as the released code does) or a gradient-free attack (gn, square)");
}

void check_attack_domain(const Model& model, const Tensor& images, AttackDomain domain, const char* op) {
  if (domain == AttackDomain::pixels) return;
  SG_CHECK(model.config().encoding != InputEncoding::direct && !model.config().frame_input,
           op << ": --attack-domain spikes needs a phase or Poisson model (--encoding phase|poisson); this one has "
              << (model.config().frame_input ? "event-frame input" : "--encoding direct") << ": use --attack-domain pixels");
  SG_CHECK(images.defined() && images.ndim() == 5,
           op << ": --attack-domain spikes attacks the encoded (B,T,C,H,W) spikes (attack_input(model, images, "
                 "AttackDomain::spikes)), got "
              << (images.defined() ? shape_str(images.shape()) : "undefined"));
}

void check_attack_inputs(const Model& model, const Tensor& images, const Tensor& labels, const char* op) {
  check_images_in_unit_range(images, op);
  SG_CHECK(images.device() == model.device(), op << ": images are on " << device_name(images.device())
                                                  << " but the model is on " << device_name(model.device()));
  SG_CHECK(labels.defined(), op << ": labels are undefined");
  SG_CHECK(labels.dtype() == DType::I32, op << ": labels must be int32, got " << dtype_name(labels.dtype()));
  SG_CHECK(labels.ndim() == 1 && labels.size(0) == images.size(0),
           op << ": labels must be (" << images.size(0) << ") to match images " << shape_str(images.shape()) << ", got "
              << shape_str(labels.shape()));
  SG_CHECK(labels.device() == images.device(), op << ": labels are on " << device_name(labels.device())
                                                  << " but images are on " << device_name(images.device()));
}

Tensor attack_with_clean_gradient(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config,
                                  Generator& gen, const Tensor& clean_gradient) {
  check_attack_config(config);
  const char* op = attack_kind_name(config.kind);
  check_attack_inputs(model, images, labels, op);
  check_attack_domain(model, images, config.domain, op);
  if (clean_gradient.defined())
    SG_CHECK(clean_gradient.shape() == images.shape() && clean_gradient.device() == images.device() &&
                 clean_gradient.dtype() == images.dtype(),
             op << ": clean_gradient " << clean_gradient << " must match images " << images);
  if (config.kind == AttackKind::gn) return gaussian_noise(images, config.eps, gen);
  check_gradient_reaches_input(model, images, op);  // before a clean_gradient of zeros could be reused
  return gradient_attack(model, images, labels, config, gen, clean_gradient);
}

}  // namespace attack_detail

Tensor input_gradient(Model& model, const Tensor& images, const Tensor& labels, AttackGrad grad) {
  attack_detail::check_attack_inputs(model, images, labels, "input_gradient");
  ModelModeGuard guard(model, grad);
  return loss_gradient(model, images, labels, "input_gradient");
}

Tensor attack(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config, Generator& gen) {
  return attack_detail::attack_with_clean_gradient(model, images, labels, config, gen, Tensor());
}

Tensor attack(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config) {
  Generator gen(config.seed);
  return attack(model, images, labels, config, gen);
}

}  // namespace spikegrad
