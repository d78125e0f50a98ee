// Carlini–Wagner L2 (attacks/cw.h).
#include "attacks/cw.h"

#include <algorithm>
#include <cmath>

#include "attacks/logit_gradient.h"

namespace spikegrad {

void check_cw_config(const CwConfig& c) {
  SG_CHECK(std::isfinite(c.c) && c.c > 0, "cw: c must be finite and > 0, got " << c.c);
  SG_CHECK(std::isfinite(c.kappa) && c.kappa >= 0, "cw: kappa must be finite and >= 0, got " << c.kappa);
  SG_CHECK(c.steps >= 1, "cw: steps must be >= 1, got " << c.steps);
  SG_CHECK(std::isfinite(c.lr) && c.lr > 0, "cw: lr must be finite and > 0, got " << c.lr);
  check_attack_grad(c.grad, "cw");
}

CwResult cw_l2(Model& model, const Tensor& images, const Tensor& labels, const CwConfig& cfg) {
  attack_detail::check_attack_inputs(model, images, labels, "cw");
  check_cw_config(cfg);
  SG_CHECK(model.config().num_classes >= 2, "cw: the margin needs at least 2 classes");
  ModelModeGuard guard(model, cfg.grad);
  const attack_detail::HostBatch in(images, labels);
  const int64_t b = in.size, d = in.per_example, n = b * d;
  const std::vector<float>& x = in.x;
  const std::vector<int32_t>& y = in.y;

  // w = atanh(2x − 1), with x pulled inside (0,1) so that pixels at 0 or 1 start finite.
  std::vector<double> w(static_cast<size_t>(n)), m(static_cast<size_t>(n), 0.0), v(static_cast<size_t>(n), 0.0);
  for (int64_t e = 0; e < n; ++e) w[size_t(e)] = std::atanh(std::clamp(2.0 * double(x[size_t(e)]) - 1.0, -1 + 1e-6, 1 - 1e-6));
  std::vector<float> point(static_cast<size_t>(n)), best = x;
  CwResult r;
  r.fooled.assign(size_t(b), 0);
  r.l2.assign(size_t(b), 0.0);
  std::vector<double> best_l2(static_cast<size_t>(b), INFINITY), margin(static_cast<size_t>(b));
  std::vector<uint8_t> wrong(static_cast<size_t>(b));
  double previous = INFINITY;
  const int check_every = std::max(cfg.steps / 10, 1);
  const double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  for (int step = 1; step <= cfg.steps; ++step) {
    for (int64_t e = 0; e < n; ++e) point[size_t(e)] = float((std::tanh(w[size_t(e)]) + 1.0) / 2.0);
    // d/dz of c·max(z_y − max_{i≠y} z_i, −κ): zero once the margin is below −κ.
    const attack_detail::LogitPass pass = attack_detail::logit_pass(
        model, point, in.shape, in.device,
        [&](int64_t i, const float* z, int64_t k, double* gz) {
          const int32_t label = y[size_t(i)];
          const int64_t other = attack_detail::best_other(z, k, label);
          margin[size_t(i)] = double(z[label]) - double(z[other]);
          wrong[size_t(i)] = attack_detail::first_max(z, k) != label;
          if (margin[size_t(i)] > -cfg.kappa) {
            gz[label] = cfg.c;
            gz[other] = -cfg.c;
          }
        },
        "cw");
    double objective = 0;
    for (int64_t i = 0; i < b; ++i) {
      double l2sq = 0;
      for (int64_t e = i * d; e < (i + 1) * d; ++e) {
        const double diff = double(point[size_t(e)]) - double(x[size_t(e)]);
        l2sq += diff * diff;
      }
      objective += l2sq + cfg.c * std::max(margin[size_t(i)], -cfg.kappa);
      const double l2 = std::sqrt(l2sq);
      if (wrong[size_t(i)] && l2 < best_l2[size_t(i)]) {
        best_l2[size_t(i)] = l2;
        r.fooled[size_t(i)] = 1;
        r.l2[size_t(i)] = l2;
        std::copy(point.begin() + i * d, point.begin() + (i + 1) * d, best.begin() + i * d);
      }
    }
    r.steps_run = step;
    if (step % check_every == 0) {
      if (objective > previous) break;
      previous = objective;
    }
    // Adam on w: d/dw = (2(x_adv − x) + d margin-term/d x_adv) · (1 − tanh²(w))/2.
    const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
    for (int64_t e = 0; e < n; ++e) {
      const double t = std::tanh(w[size_t(e)]);
      const double g = (2.0 * (double(point[size_t(e)]) - double(x[size_t(e)])) + double(pass.grad[size_t(e)])) *
                       (1.0 - t * t) / 2.0;
      m[size_t(e)] = beta1 * m[size_t(e)] + (1 - beta1) * g;
      v[size_t(e)] = beta2 * v[size_t(e)] + (1 - beta2) * g * g;
      w[size_t(e)] -= cfg.lr * (m[size_t(e)] / bc1) / (std::sqrt(v[size_t(e)] / bc2) + adam_eps);
    }
  }
  r.adversarial = in.on_device(best);
  return r;
}

}  // namespace spikegrad
