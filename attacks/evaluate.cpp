// Batch evaluation under attack; the contract is in attacks/evaluate.h.
#include "attacks/evaluate.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace spikegrad {

namespace {
double ratio(int64_t num, int64_t den) {
  return den > 0 ? double(num) / double(den) : std::numeric_limits<double>::quiet_NaN();
}
}  // namespace

double RobustResult::clean_accuracy() const { return ratio(clean_correct, total); }
double RobustResult::robust_accuracy() const { return ratio(adv_correct, total); }
double RobustResult::attack_success_rate() const { return ratio(fooled, clean_correct); }
double RobustResult::zero_grad_fraction() const { return ratio(zero_grad, total); }

RobustResult& RobustResult::operator+=(const RobustResult& o) {
  total += o.total;
  clean_correct += o.clean_correct;
  adv_correct += o.adv_correct;
  fooled += o.fooled;
  zero_grad += o.zero_grad;
  return *this;
}

Tensor predict(Model& model, const Tensor& images) {
  attack_detail::check_images_in_unit_range(images, "predict");
  ModelModeGuard guard(model, std::nullopt);  // BN on running statistics: per-example, batch-independent
  NoGradGuard no_grad;
  Tape tape;
  Tensor mean_logits = ops::mean_time(tape, model.forward(tape, images, TapKeep::none()).logits);  // (B,K)
  // A NaN logit would make the argmax arbitrary and silently count as a prediction. A check, not a copy of
  // the logits: on CUDA it is thrown where the caller reads the predictions (ops::check_range).
  const int64_t classes = mean_logits.size(1);
  const double largest = std::numeric_limits<float>::max();
  ops::check_range(mean_logits, -largest, largest, [classes](int64_t i, double v) {
    std::ostringstream o;
    o << "predict: the model produced a non-finite logit " << float(v) << " (example " << i / classes << ", class "
      << i % classes << ")";
    return o.str();
  });
  return ops::argmax(mean_logits);
}

int64_t count_zero_gradient_examples(const Tensor& grad) {
  SG_CHECK(grad.defined() && grad.ndim() >= 1 && grad.size(0) > 0,
           "count_zero_gradient_examples: grad must be (B,...) with B >= 1, got "
               << (grad.defined() ? shape_str(grad.shape()) : "undefined"));
  SG_CHECK(grad.dtype() == DType::F32, "count_zero_gradient_examples: grad must be float32, got " << dtype_name(grad.dtype()));
  const std::vector<float> host = grad.to_vector<float>();
  const int64_t batch = grad.size(0), per = grad.numel() / batch;
  int64_t zero = 0;
  for (int64_t b = 0; b < batch; ++b) {
    bool all_zero = true;
    for (int64_t i = 0; i < per && all_zero; ++i) all_zero = host[size_t(b * per + i)] == 0.f;
    zero += all_zero ? 1 : 0;
  }
  return zero;
}

namespace {
// The zero-gradient diagnostic's gradient. Pixels of a phase/Poisson model (only gradient-free attacks may run
// there) have an identically zero gradient: every example counts as zero-gradient, as it truly is.
Tensor clean_input_gradient(Model& model, const Tensor& images, const Tensor& labels, AttackGrad grad) {
  if (!attack_detail::gradient_reaches_input(model, images)) return Tensor::full(images.shape(), 0.0, DType::F32, images.device());
  return input_gradient(model, images, labels, grad);
}

RobustResult count_results(Model& model, const Tensor& images, const Tensor& labels, const Tensor& adv,
                           const Tensor& clean_gradient) {
  // Everything the counts need (labels, both predictions, and the gradient for the zero-gradient diagnostic,
  // counted on the host) comes back in one transfer: on CUDA, one wait for the device per batch.
  const std::vector<Tensor> host = to_cpu({labels, predict(model, images), predict(model, adv), clean_gradient});
  const std::vector<int32_t> y = host[0].to_vector<int32_t>(), clean = host[1].to_vector<int32_t>(),
                             attacked = host[2].to_vector<int32_t>();
  RobustResult r;
  r.total = int64_t(y.size());
  for (size_t b = 0; b < y.size(); ++b) {
    const bool clean_ok = clean[b] == y[b], adv_ok = attacked[b] == y[b];
    r.clean_correct += clean_ok;
    r.adv_correct += adv_ok;
    r.fooled += clean_ok && !adv_ok;
  }
  r.zero_grad = count_zero_gradient_examples(host[3]);
  return r;
}
}  // namespace

RobustResult evaluate_adversarial(Model& model, const Tensor& images, const Tensor& labels, const Tensor& adv,
                                  AttackGrad grad) {
  attack_detail::check_attack_inputs(model, images, labels, "evaluate_adversarial");
  SG_CHECK(adv.shape() == images.shape() && adv.device() == images.device(),
           "evaluate_adversarial: adversarial images " << adv << " must match images " << images);
  return count_results(model, images, labels, adv, clean_input_gradient(model, images, labels, grad));
}

RobustResult evaluate_attack(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config,
                             Generator& gen, Tensor* adv_out) {
  check_attack_config(config);
  attack_detail::check_attack_inputs(model, images, labels, "evaluate_attack");
  // BN is in eval mode, so example b's loss term is the only one depending on images[b]: a zero slice of the
  // batch gradient means that example's own gradient is zero (the 1/B of the mean does not create zeros).
  const Tensor clean_gradient = clean_input_gradient(model, images, labels, config.grad);
  const Tensor adv = attack_detail::attack_with_clean_gradient(model, images, labels, config, gen, clean_gradient);

  RobustResult r = count_results(model, images, labels, adv, clean_gradient);
  if (adv_out) *adv_out = adv;
  return r;
}

}  // namespace spikegrad
