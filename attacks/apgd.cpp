// APGD (attacks/apgd.h): the paper's algorithm with per-example step sizes and checkpoints.
#include "attacks/apgd.h"

#include <algorithm>
#include <cmath>

#include "attacks/logit_gradient.h"

namespace spikegrad {

namespace {

// Loss, predictions and input gradient at one batch of points, in attack conditions (the caller's guard).
struct PointValues {
  std::vector<double> loss;      // (B)
  std::vector<uint8_t> correct;  // (B): argmax of the mean logits (first maximum) equals the label
  std::vector<float> grad;       // (B·D) d loss_b / d x_b
};

PointValues values_at(Model& model, const std::vector<float>& x, const attack_detail::HostBatch& in,
                      const std::vector<int32_t>& targets, const ApgdConfig& cfg) {
  const Shape& shape = in.shape;
  const std::vector<int32_t>& labels = in.y;
  PointValues v;
  v.loss.resize(static_cast<size_t>(shape[0]));
  v.correct.resize(static_cast<size_t>(shape[0]));
  attack_detail::LogitPass pass = attack_detail::logit_pass(
      model, x, shape, in.device,
      [&](int64_t i, const float* z, int64_t k, double* gz) {
        v.loss[size_t(i)] = apgd_row_loss(cfg.loss, z, k, labels[size_t(i)], targets[size_t(i)], gz);
        v.correct[size_t(i)] = attack_detail::first_max(z, k) == labels[size_t(i)];
      },
      "apgd");
  v.grad = std::move(pass.grad);
  return v;
}

}  // namespace

const char* apgd_loss_name(ApgdLoss loss) {
  switch (loss) {
    case ApgdLoss::ce: return "ce";
    case ApgdLoss::dlr: return "dlr";
    case ApgdLoss::dlr_targeted: return "dlr-targeted";
  }
  SG_FAIL("apgd: unknown loss value " << int(loss));
}

std::vector<int> apgd_checkpoints(int iterations) {
  SG_CHECK(iterations >= 1, "apgd: iterations must be >= 1, got " << iterations);
  std::vector<int> w{0};
  double before = 0, p = 0.22;
  while (true) {
    const int at = int(std::ceil(p * iterations - 1e-9));  // the 1e-9: 0.22·100 is 22.000000000000004
    if (at >= iterations) break;
    if (at > w.back()) w.push_back(at);
    const double next = p + std::max(p - before - 0.03, 0.06);
    before = p;
    p = next;
  }
  return w;
}

double apgd_row_loss(ApgdLoss loss, const float* z, int64_t k, int32_t label, int32_t target, double* gz) {
  SG_CHECK(label >= 0 && label < k, "apgd: label " << label << " outside [0," << k << ")");
  std::fill(gz, gz + k, 0.0);
  if (loss == ApgdLoss::ce) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, double(z[j]));
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += std::exp(double(z[j]) - mx);
    for (int64_t j = 0; j < k; ++j) gz[j] = std::exp(double(z[j]) - mx) / s;
    gz[label] -= 1.0;
    return mx + std::log(s) - double(z[label]);
  }
  const std::vector<int64_t> r = attack_detail::ranked_classes(z, k);
  if (loss == ApgdLoss::dlr) {
    SG_CHECK(k >= 3, "apgd: the DLR loss needs at least 3 classes (it divides by z_π1 − z_π3), the model has " << k);
    // max over i ≠ y: the top class, or the second when the top one is y.
    const int64_t other = r[0] == label ? r[1] : r[0];
    const double den = double(z[r[0]]) - double(z[r[2]]) + 1e-12;
    const double num = double(z[label]) - double(z[other]);
    gz[label] += -1.0 / den;
    gz[other] += 1.0 / den;
    gz[r[0]] += num / (den * den);
    gz[r[2]] -= num / (den * den);
    return -num / den;
  }
  SG_CHECK(k >= 4, "apgd: the targeted DLR loss needs at least 4 classes (it divides by z_π1 − (z_π3 + z_π4)/2), "
                   "the model has " << k);
  SG_CHECK(target >= 0 && target < k, "apgd: target class " << target << " outside [0," << k << ")");
  const double den = double(z[r[0]]) - 0.5 * (double(z[r[2]]) + double(z[r[3]])) + 1e-12;
  const double num = double(z[label]) - double(z[target]);
  gz[label] += -1.0 / den;
  gz[target] += 1.0 / den;
  gz[r[0]] += num / (den * den);
  gz[r[2]] -= 0.5 * num / (den * den);
  gz[r[3]] -= 0.5 * num / (den * den);
  return -num / den;
}

void check_apgd_config(const ApgdConfig& c, int64_t num_classes) {
  SG_CHECK(std::isfinite(c.eps) && c.eps >= 0 && c.eps <= 1,
           "apgd: eps must be in [0,1] (pixel units of [0,1] images), got " << c.eps);
  SG_CHECK(c.iterations >= 1, "apgd: iterations must be >= 1, got " << c.iterations);
  SG_CHECK(std::isfinite(c.momentum) && c.momentum > 0 && c.momentum <= 1, "apgd: momentum must be in (0,1], got " << c.momentum);
  SG_CHECK(std::isfinite(c.rho) && c.rho > 0 && c.rho <= 1, "apgd: rho must be in (0,1], got " << c.rho);
  check_attack_grad(c.grad, "apgd");
  if (c.loss == ApgdLoss::dlr)
    SG_CHECK(num_classes >= 3, "apgd: the DLR loss needs at least 3 classes, the model has " << num_classes);
  if (c.loss == ApgdLoss::dlr_targeted) {
    SG_CHECK(num_classes >= 4, "apgd: the targeted DLR loss needs at least 4 classes, the model has " << num_classes);
    SG_CHECK(c.target_rank >= 2 && c.target_rank <= num_classes,
             "apgd: target_rank must be in [2, " << num_classes << "] (rank 1 is the predicted class), got " << c.target_rank);
  }
}

ApgdResult apgd(Model& model, const Tensor& images, const Tensor& labels, const ApgdConfig& cfg, Generator& gen) {
  attack_detail::check_attack_inputs(model, images, labels, "apgd");
  check_apgd_config(cfg, model.config().num_classes);
  ModelModeGuard guard(model, cfg.grad);
  const attack_detail::HostBatch in(images, labels);
  const Shape& shape = in.shape;
  const int64_t b = in.size, d = in.per_example;
  const std::vector<float>& x = in.x;
  const float eps = float(cfg.eps);

  // Targets (dlr_targeted): the class of the requested rank at the clean images.
  std::vector<int32_t> targets(static_cast<size_t>(b), 0);
  if (cfg.loss == ApgdLoss::dlr_targeted) targets = attack_detail::classes_of_rank(model, images, cfg.target_rank);

  // P: onto the ε-ball around x, then onto [0,1], element by element.
  auto project = [&](int64_t e, float v) { return std::clamp(std::clamp(v, x[size_t(e)] - eps, x[size_t(e)] + eps), 0.f, 1.f); };

  // The start: x + ε·t/‖t‖∞ per example, t uniform in [-1,1).
  std::vector<float> cur(x.size());
  {
    const std::vector<float> u = rand_uniform(shape, gen).to_vector<float>();
    for (int64_t i = 0; i < b; ++i) {
      float norm = 0;
      for (int64_t e = i * d; e < (i + 1) * d; ++e) norm = std::max(norm, std::abs(2.f * u[size_t(e)] - 1.f));
      for (int64_t e = i * d; e < (i + 1) * d; ++e)
        cur[size_t(e)] = std::clamp(x[size_t(e)] + eps * (2.f * u[size_t(e)] - 1.f) / std::max(norm, 1e-12f), 0.f, 1.f);
    }
  }
  PointValues at = values_at(model, cur, in, targets, cfg);
  std::vector<float> best = cur, best_grad = at.grad, first_fooled = cur, prev = cur;
  std::vector<double> best_loss = at.loss, step(static_cast<size_t>(b), 2.0 * cfg.eps);
  std::vector<uint8_t> fooled(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) fooled[size_t(i)] = !at.correct[size_t(i)];
  std::vector<float> grad = at.grad;

  const std::vector<int> checkpoints = apgd_checkpoints(cfg.iterations);
  size_t next_check = 1;
  std::vector<int> increases(static_cast<size_t>(b), 0);  // steps since the last checkpoint where the loss rose
  std::vector<double> last_loss = at.loss, best_at_last_check = best_loss;
  // Condition 2 needs η not halved at the last checkpoint; before the first one it counts as halved.
  std::vector<uint8_t> halved_at_last_check(static_cast<size_t>(b), 1);
  std::vector<float> next(x.size());
  for (int it = 0; it < cfg.iterations; ++it) {
    const float a = it == 0 ? 1.f : float(cfg.momentum);
    for (int64_t i = 0; i < b; ++i) {
      const float eta = float(step[size_t(i)]);
      for (int64_t e = i * d; e < (i + 1) * d; ++e) {
        const float g = grad[size_t(e)];
        const float sgn = g > 0 ? 1.f : (g < 0 ? -1.f : 0.f);
        const float z = project(e, cur[size_t(e)] + eta * sgn);
        next[size_t(e)] = project(e, cur[size_t(e)] + a * (z - cur[size_t(e)]) + (1.f - a) * (cur[size_t(e)] - prev[size_t(e)]));
      }
    }
    prev.swap(cur);
    cur.swap(next);
    at = values_at(model, cur, in, targets, cfg);
    grad = at.grad;
    for (int64_t i = 0; i < b; ++i) {
      const size_t si = size_t(i);
      const auto slice = [&](std::vector<float>& dst, const std::vector<float>& src) {
        std::copy(src.begin() + i * d, src.begin() + (i + 1) * d, dst.begin() + i * d);
      };
      if (!fooled[si] && !at.correct[si]) {
        fooled[si] = 1;
        slice(first_fooled, cur);
      }
      if (at.loss[si] > last_loss[si]) ++increases[si];
      last_loss[si] = at.loss[si];
      if (at.loss[si] > best_loss[si]) {
        best_loss[si] = at.loss[si];
        slice(best, cur);
        slice(best_grad, grad);
      }
    }
    // At a checkpoint: halve η and restart from the best point where progress stalled.
    if (next_check < checkpoints.size() && it + 1 == checkpoints[next_check]) {
      const int span = checkpoints[next_check] - checkpoints[next_check - 1];
      for (int64_t i = 0; i < b; ++i) {
        const size_t si = size_t(i);
        const bool oscillating = double(increases[si]) <= cfg.rho * double(span);
        const bool stalled = !halved_at_last_check[si] && best_at_last_check[si] >= best_loss[si];
        halved_at_last_check[si] = oscillating || stalled;
        best_at_last_check[si] = best_loss[si];
        increases[si] = 0;
        if (!halved_at_last_check[si]) continue;
        step[si] /= 2;
        std::copy(best.begin() + i * d, best.begin() + (i + 1) * d, cur.begin() + i * d);
        std::copy(best_grad.begin() + i * d, best_grad.begin() + (i + 1) * d, grad.begin() + i * d);
        // The momentum term restarts too: the next step starts from the best point without memory.
        std::copy(best.begin() + i * d, best.begin() + (i + 1) * d, prev.begin() + i * d);
      }
      ++next_check;
    }
  }

  ApgdResult r;
  std::vector<float> out(x.size());
  for (int64_t i = 0; i < b; ++i) {
    const std::vector<float>& src = fooled[size_t(i)] ? first_fooled : best;
    std::copy(src.begin() + i * d, src.begin() + (i + 1) * d, out.begin() + i * d);
  }
  r.adversarial = in.on_device(out);
  r.fooled = fooled;
  r.best_loss = best_loss;
  return r;
}

}  // namespace spikegrad
