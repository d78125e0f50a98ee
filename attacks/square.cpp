// Square Attack, L∞ (attacks/square.h).
#include "attacks/square.h"

#include <algorithm>
#include <cmath>

#include "attacks/logit_gradient.h"

namespace spikegrad {

namespace {

// Margins z_y − max_{i≠y} z_i of the mean logits at `x` (rows of B_sub examples), model in the caller's mode.
std::vector<double> margins_at(Model& model, const std::vector<float>& x, const Shape& shape, Device device,
                               const std::vector<int32_t>& labels) {
  NoGradGuard no_grad;
  Tape tape;
  const Tensor z = ops::mean_time(tape, model.forward(tape, Tensor::from_vector<float>(x, shape).to(device), TapKeep::none()).logits);
  const std::vector<float> zh = z.to_vector<float>();
  const int64_t k = z.size(1);
  std::vector<double> m(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = zh.data() + int64_t(i) * k;
    m[i] = double(row[labels[i]]) - double(row[attack_detail::best_other(row, k, labels[i])]);
  }
  return m;
}

}  // namespace

double square_p_at(double p_init, int query, int queries) {
  // The paper's thresholds for 10,000 queries, rescaled to the budget.
  const double at = double(query) / double(queries) * 10000.0;
  const double thresholds[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  double p = p_init;
  for (double t : thresholds)
    if (at > t) p /= 2;
  return p;
}

void check_square_config(const SquareConfig& c) {
  SG_CHECK(std::isfinite(c.eps) && c.eps >= 0 && c.eps <= 1,
           "square: eps must be in [0,1] (pixel units of [0,1] images), got " << c.eps);
  SG_CHECK(c.queries >= 1, "square: queries must be >= 1, got " << c.queries);
  SG_CHECK(std::isfinite(c.p_init) && c.p_init > 0 && c.p_init <= 1, "square: p_init must be in (0,1], got " << c.p_init);
}

SquareResult square_attack(Model& model, const Tensor& images, const Tensor& labels, const SquareConfig& cfg,
                           Generator& gen) {
  attack_detail::check_attack_inputs(model, images, labels, "square");
  check_square_config(cfg);
  SG_CHECK(model.config().num_classes >= 2, "square: the margin needs at least 2 classes");
  ModelModeGuard guard(model, std::nullopt);
  const attack_detail::HostBatch in(images, labels);
  // Windows live in the last two dims; every leading per-example dim counts as a channel, so event frames
  // (B,T,C,H,W) are searched as T·C channels (each frame's polarity planes get their own stripes).
  const int64_t b = in.size, d = in.per_example, h = in.shape[in.shape.size() - 2], w = in.shape.back(), c = d / (h * w);
  const std::vector<float>& x = in.x;
  const std::vector<int32_t>& y = in.y;
  const float eps = float(cfg.eps);
  auto at_sign = [&](int64_t e, float sign) { return std::clamp(x[size_t(e)] + eps * sign, 0.f, 1.f); };

  // The start: vertical stripes, a sign per (example, channel, column).
  std::vector<float> best(x.size());
  {
    const std::vector<float> u = rand_uniform({b, c, w}, gen).to_vector<float>();
    for (int64_t i = 0; i < b; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t col = 0; col < w; ++col) {
          const float sign = u[size_t((i * c + ch) * w + col)] < 0.5f ? -1.f : 1.f;
          for (int64_t row = 0; row < h; ++row) {
            const int64_t e = ((i * c + ch) * h + row) * w + col;
            best[size_t(e)] = at_sign(e, sign);
          }
        }
  }
  SquareResult r;
  r.margin = margins_at(model, best, in.shape, in.device, y);
  r.queries_used.assign(size_t(b), 1);
  r.fooled.assign(size_t(b), 0);
  for (int64_t i = 0; i < b; ++i) r.fooled[size_t(i)] = r.margin[size_t(i)] <= 0;

  std::vector<int64_t> active;
  for (int query = 1; query < cfg.queries; ++query) {
    active.clear();
    for (int64_t i = 0; i < b; ++i)
      if (!r.fooled[size_t(i)]) active.push_back(i);
    if (active.empty()) break;
    const int64_t n = int64_t(active.size());
    const double p = square_p_at(cfg.p_init, query, cfg.queries);
    const int64_t side = std::clamp<int64_t>(int64_t(std::lround(std::sqrt(p * double(d) / double(c)))), 1, std::min(h, w));
    // Per active example: the window's top-left corner (2 draws) and a sign per channel.
    const std::vector<float> u = rand_uniform({n, 2 + c}, gen).to_vector<float>();
    std::vector<float> candidates(static_cast<size_t>(n * d));
    std::vector<int32_t> sub_labels(static_cast<size_t>(n));
    for (int64_t a = 0; a < n; ++a) {
      const int64_t i = active[size_t(a)];
      sub_labels[size_t(a)] = y[size_t(i)];
      std::copy(best.begin() + i * d, best.begin() + (i + 1) * d, candidates.begin() + a * d);
      const float* draw = u.data() + a * (2 + c);
      const int64_t top = std::min<int64_t>(int64_t(draw[0] * float(h - side + 1)), h - side);
      const int64_t left = std::min<int64_t>(int64_t(draw[1] * float(w - side + 1)), w - side);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float sign = draw[2 + ch] < 0.5f ? -1.f : 1.f;
        for (int64_t row = top; row < top + side; ++row)
          for (int64_t col = left; col < left + side; ++col) {
            const int64_t e = (ch * h + row) * w + col;
            candidates[size_t(a * d + e)] = at_sign(i * d + e, sign);
          }
      }
    }
    Shape candidate_shape = in.shape;
    candidate_shape[0] = n;
    const std::vector<double> m = margins_at(model, candidates, candidate_shape, in.device, sub_labels);
    for (int64_t a = 0; a < n; ++a) {
      const size_t i = size_t(active[size_t(a)]);
      ++r.queries_used[i];
      if (m[size_t(a)] < r.margin[i] || m[size_t(a)] <= 0) {
        r.margin[i] = std::min(r.margin[i], m[size_t(a)]);
        std::copy(candidates.begin() + a * d, candidates.begin() + (a + 1) * d, best.begin() + int64_t(i) * d);
        r.fooled[i] = m[size_t(a)] <= 0;
      }
    }
  }
  r.adversarial = in.on_device(best);
  return r;
}

}  // namespace spikegrad
