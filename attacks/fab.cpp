// FAB-T, L∞ (attacks/fab.h).
#include "attacks/fab.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "attacks/evaluate.h"
#include "attacks/logit_gradient.h"

namespace spikegrad {

std::vector<float> fab_project_linf(const float* p, const float* w, double c, int64_t n, bool* feasible) {
  std::vector<float> delta(static_cast<size_t>(n), 0.f);
  if (feasible) *feasible = true;
  if (c == 0) return delta;
  // With s = sign(c), every δ_i moves along s·sign(w_i) by min(ρ, room_i), room_i the box's room that way.
  const double s = c > 0 ? 1.0 : -1.0, target = std::abs(c);
  struct Coord {
    double room, weight;  // room towards the helpful side; |w_i|
    int64_t i;
  };
  std::vector<Coord> coords;
  coords.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (w[i] == 0) continue;
    const bool up = s * double(w[i]) > 0;
    coords.push_back({up ? 1.0 - double(p[i]) : double(p[i]), std::abs(double(w[i])), i});
  }
  std::sort(coords.begin(), coords.end(), [](const Coord& a, const Coord& b) { return a.room < b.room; });
  // F(ρ) = Σ weight·min(ρ, room) grows piecewise linearly; the smallest ρ with F(ρ) = |c|.
  double slope = 0, below = 0;  // Σ weight of rooms ≥ ρ; Σ weight·room of rooms < ρ
  for (const Coord& k : coords) slope += k.weight;
  double rho = std::numeric_limits<double>::infinity();
  for (const Coord& k : coords) {
    if (below + slope * k.room >= target) {
      rho = (target - below) / slope;
      break;
    }
    below += k.weight * k.room;
    slope -= k.weight;
  }
  if (std::isinf(rho) && feasible) *feasible = false;  // the box corner is the closest point
  for (const Coord& k : coords) {
    const double step = std::min(rho, k.room);
    delta[size_t(k.i)] = float(s * (w[k.i] > 0 ? 1.0 : -1.0) * step);
  }
  return delta;
}

void check_fab_config(const FabConfig& c, int64_t num_classes) {
  SG_CHECK(c.iterations >= 1, "fab: iterations must be >= 1, got " << c.iterations);
  SG_CHECK(num_classes >= 2, "fab: a targeted attack needs at least 2 classes, the model has " << num_classes);
  SG_CHECK(c.target_rank >= 2 && c.target_rank <= num_classes,
           "fab: target_rank must be in [2, " << num_classes << "] (rank 1 is the predicted class), got " << c.target_rank);
  SG_CHECK(std::isfinite(c.alpha_max) && c.alpha_max >= 0 && c.alpha_max <= 1, "fab: alpha_max must be in [0,1], got " << c.alpha_max);
  SG_CHECK(std::isfinite(c.eta) && c.eta >= 1, "fab: eta must be >= 1, got " << c.eta);
  SG_CHECK(std::isfinite(c.beta) && c.beta > 0 && c.beta <= 1, "fab: beta must be in (0,1], got " << c.beta);
  check_attack_grad(c.grad, "fab");
}

FabResult fab_targeted(Model& model, const Tensor& images, const Tensor& labels, const FabConfig& cfg) {
  attack_detail::check_attack_inputs(model, images, labels, "fab");
  check_fab_config(cfg, model.config().num_classes);
  ModelModeGuard guard(model, cfg.grad);
  const attack_detail::HostBatch in(images, labels);
  const int64_t b = in.size, d = in.per_example;
  const std::vector<float>& x = in.x;
  const std::vector<int32_t>& y = in.y;
  const std::vector<int32_t> t = attack_detail::classes_of_rank(model, images, cfg.target_rank);

  FabResult r;
  r.found.assign(static_cast<size_t>(b), 0);
  r.norm.assign(static_cast<size_t>(b), std::numeric_limits<double>::infinity());
  std::vector<float> best = x, cur = x;
  auto linf = [&](const std::vector<float>& v, int64_t i) {
    float m = 0;
    for (int64_t e = i * d; e < (i + 1) * d; ++e) m = std::max(m, std::abs(v[size_t(e)] - x[size_t(e)]));
    return double(m);
  };
  // g_b = z_t − z_y at each example's current point, its gradient w.r.t. the point, and whether the point is
  // misclassified (argmax ≠ y); evaluate(rows) refreshes them for those examples with one forward and one
  // backward over just their points (examples are independent: BN runs on its running statistics).
  std::vector<double> g(static_cast<size_t>(b));
  std::vector<uint8_t> wrong(static_cast<size_t>(b));
  std::vector<float> grad(x.size());
  // The current points of `rows`, as a (rows, C, H, W) batch on the host.
  Shape rows_shape = in.shape;
  auto gather = [&](const std::vector<int64_t>& rows) {
    std::vector<float> points(rows.size() * size_t(d));
    for (size_t j = 0; j < rows.size(); ++j)
      std::copy(cur.begin() + rows[j] * d, cur.begin() + (rows[j] + 1) * d, points.begin() + int64_t(j) * d);
    rows_shape[0] = int64_t(rows.size());
    return points;
  };
  auto evaluate = [&](const std::vector<int64_t>& rows) {
    const std::vector<float> points = gather(rows);
    const attack_detail::LogitPass pass = attack_detail::logit_pass(
        model, points, rows_shape, in.device,
        [&](int64_t j, const float* z, int64_t k, double* gz) {
          const size_t si = size_t(rows[size_t(j)]);
          g[si] = double(z[t[si]]) - double(z[y[si]]);
          gz[t[si]] += 1.0;
          gz[y[si]] -= 1.0;
          wrong[si] = attack_detail::first_max(z, k) != y[si];
        },
        "fab");
    for (size_t j = 0; j < rows.size(); ++j)
      std::copy(pass.grad.begin() + int64_t(j) * d, pass.grad.begin() + int64_t(j + 1) * d, grad.begin() + rows[j] * d);
  };
  std::vector<int64_t> active(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) active[size_t(i)] = i;
  evaluate(active);
  active.clear();
  for (int64_t i = 0; i < b; ++i) {
    if (wrong[size_t(i)]) {
      r.found[size_t(i)] = 1, r.norm[size_t(i)] = 0;  // misclassified already: nothing to do
    } else {
      active.push_back(i);
    }
  }

  for (int it = 0; it < cfg.iterations && !active.empty(); ++it) {
    for (int64_t i : active) {
      const size_t si = size_t(i);
      const float* w = grad.data() + i * d;
      const float* xi = cur.data() + i * d;
      const float* x0 = x.data() + i * d;
      // The boundary linearised at x⁽ⁱ⁾: w·v = w·x⁽ⁱ⁾ − g; from point p the step solves w·δ = w·x⁽ⁱ⁾ − g − w·p.
      double w_cur = 0, w_orig = 0;
      for (int64_t e = 0; e < d; ++e) {
        w_cur += double(w[e]) * double(xi[e]);
        w_orig += double(w[e]) * double(x0[e]);
      }
      const std::vector<float> step = fab_project_linf(xi, w, -g[si], d);
      const std::vector<float> step0 = fab_project_linf(x0, w, w_cur - g[si] - w_orig, d);
      double n1 = 0, n0 = 0;
      for (int64_t e = 0; e < d; ++e) {
        n1 = std::max(n1, std::abs(double(step[size_t(e)])));
        n0 = std::max(n0, std::abs(double(step0[size_t(e)])));
      }
      n1 = std::max(n1, 1e-8);
      n0 = std::max(n0, 1e-8);
      const float alpha = float(std::min(n1 / (n1 + n0), cfg.alpha_max)), eta = float(cfg.eta);
      for (int64_t e = 0; e < d; ++e)
        cur[size_t(i * d + e)] = std::clamp((1.f - alpha) * (xi[e] + eta * step[size_t(e)]) +
                                                alpha * (x0[e] + eta * step0[size_t(e)]),
                                            0.f, 1.f);
    }
    // Misclassified after the step? (a forward only over the searching examples; the gradient is taken after
    // moving back, at the point the next step starts from)
    const std::vector<float> stepped = gather(active);
    const std::vector<int32_t> pred =
        predict(model, Tensor::from_vector<float>(stepped, rows_shape).to(in.device)).to_vector<int32_t>();
    for (size_t j = 0; j < active.size(); ++j) {
      const int64_t i = active[j];
      const size_t si = size_t(i);
      if (pred[j] == y[si]) continue;
      const double n = linf(cur, i);
      if (n < r.norm[si]) {
        r.norm[si] = n;
        r.found[si] = 1;
        std::copy(cur.begin() + i * d, cur.begin() + (i + 1) * d, best.begin() + i * d);
      }
      // Back towards x: the next steps look for a smaller perturbation.
      for (int64_t e = i * d; e < (i + 1) * d; ++e)
        cur[size_t(e)] = x[size_t(e)] + float(cfg.beta) * (cur[size_t(e)] - x[size_t(e)]);
    }
    if (it + 1 < cfg.iterations) evaluate(active);
  }
  r.adversarial = in.on_device(best);
  return r;
}

}  // namespace spikegrad
