#include "apps/gradient_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/check.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace spikegrad::app {

double GradientStats::zero_fraction() const { return numel > 0 ? double(zeros) / double(numel) : 0.0; }

std::vector<double> GradientStats::zero_fraction_per_step() const {
  std::vector<double> out(step_numel.size());
  for (size_t t = 0; t < out.size(); ++t)
    out[t] = step_numel[t] > 0 ? double(step_zeros[t]) / double(step_numel[t]) : 0.0;
  return out;
}

double GradientStats::norm() const { return std::sqrt(l2_squared); }

double GradientStats::effective_support() const {
  if (l2_squared <= 0 || numel == 0) return 0.0;
  return l1 * l1 / l2_squared / double(numel);
}

double GradientStats::fraction_above(size_t threshold_index) const {
  SG_CHECK(threshold_index < kGradientThresholds.size(), "gradient_stats: threshold index "
                                                             << threshold_index << " out of range ("
                                                             << kGradientThresholds.size() << ")");
  return numel > 0 ? double(above[threshold_index]) / double(numel) : 0.0;
}

GradientStats gradient_stats(const std::vector<Tensor>& parts, int64_t steps) {
  SG_CHECK(steps >= 1, "gradient_stats: steps must be >= 1, got " << steps);
  std::vector<std::vector<float>> host;
  bool splits = true;
  for (const Tensor& p : parts) {
    SG_CHECK(p.defined() && p.dtype() == DType::F32, "gradient_stats: every part must be a defined float32 tensor");
    host.push_back(p.to_vector<float>());
    splits = splits && p.ndim() >= 1 && p.size(0) % steps == 0;
  }
  GradientStats s;
  if (splits) s.step_numel.assign(size_t(steps), 0), s.step_zeros.assign(size_t(steps), 0);
  // Pass 1: counts, norms and the maximum the thresholds are relative to.
  for (const std::vector<float>& v : host) {
    const size_t block = v.size() / size_t(steps);  // elements per time step (time-major)
    for (size_t i = 0; i < v.size(); ++i) {
      const double a = std::fabs(double(v[i]));
      const bool zero = v[i] == 0.0f;
      s.zeros += zero;
      if (splits && block > 0) {
        s.step_numel[i / block] += 1;
        s.step_zeros[i / block] += zero;
      }
      s.l1 += a;
      s.l2_squared += a * a;
      s.max_abs = std::max(s.max_abs, a);
    }
    s.numel += int64_t(v.size());
  }
  // Pass 2: the thresholded counts. With g = 0 nothing is above any threshold.
  if (s.max_abs > 0)
    for (const std::vector<float>& v : host)
      for (float x : v)
        for (size_t k = 0; k < kGradientThresholds.size(); ++k)
          s.above[k] += std::fabs(double(x)) > kGradientThresholds[k] * s.max_abs;
  return s;
}

std::vector<bool> conv_taps_seeing_data(int kernel, int stride, int padding, int64_t in_h, int64_t in_w) {
  SG_CHECK(kernel >= 1 && stride >= 1 && padding >= 0 && in_h >= 1 && in_w >= 1,
           "conv_taps_seeing_data: expected kernel >= 1, stride >= 1, padding >= 0 and a non-empty input, got kernel "
               << kernel << ", stride " << stride << ", padding " << padding << ", input " << in_h << "x" << in_w);
  // Along one axis of size n: does offset r of the kernel ever land inside [0, n)?
  auto sees = [&](int r, int64_t n) {
    const int64_t outputs = (n + 2 * padding - kernel) / stride + 1;
    for (int64_t i = 0; i < outputs; ++i) {
      const int64_t at = i * stride - padding + r;
      if (at >= 0 && at < n) return true;
    }
    return false;
  };
  std::vector<bool> taps(size_t(kernel) * size_t(kernel));
  for (int r = 0; r < kernel; ++r)
    for (int c = 0; c < kernel; ++c) taps[size_t(r) * size_t(kernel) + size_t(c)] = sees(r, in_h) && sees(c, in_w);
  return taps;
}

double WeightZeros::zero_fraction() const { return numel > 0 ? double(zeros) / double(numel) : 0.0; }
double WeightZeros::structural_fraction() const { return numel > 0 ? double(structural) / double(numel) : 0.0; }
double WeightZeros::nonstructural_zero_fraction() const {
  const int64_t seeing = numel - structural;
  return seeing > 0 ? double(nonstructural_zeros) / double(seeing) : 0.0;
}

WeightZeros weight_zeros(const Tensor& grad, const std::vector<bool>& taps) {
  SG_CHECK(grad.defined() && grad.dtype() == DType::F32,
           "weight_zeros: the weight gradient must be a defined float32 tensor");
  SG_CHECK(taps.empty() || grad.numel() % int64_t(taps.size()) == 0,
           "weight_zeros: a gradient of " << grad.numel() << " elements is not rows of " << taps.size() << " taps");
  const std::vector<float> g = grad.to_vector<float>();
  WeightZeros w;
  w.numel = int64_t(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const bool zero = g[i] == 0.0f;
    w.zeros += zero;
    if (!taps.empty() && !taps[i % taps.size()])
      ++w.structural;
    else
      w.nonstructural_zeros += zero;
  }
  return w;
}

Tensor signed_step(const Tensor& x, const Tensor& direction, double eps) {
  SG_CHECK(x.shape() == direction.shape(), "signed_step: direction " << shape_str(direction.shape())
                                                                     << " must have the shape of x "
                                                                     << shape_str(x.shape()));
  NoGradGuard no_grad;
  Tape tape;  // nothing records under NoGradGuard
  return ops::clamp(tape, ops::add(tape, x, ops::scale(tape, ops::sign(direction), eps)), 0.0, 1.0);
}

std::vector<Tensor> random_sign_vectors(const Shape& shape, int k, uint64_t seed, Device device) {
  SG_CHECK(k >= 1, "random_sign_vectors: k must be >= 1, got " << k);
  Generator gen(seed);
  std::vector<Tensor> out;
  for (int j = 0; j < k; ++j) {
    // Drawn on the CPU and mapped there, so no draw can land on sign(0) = 0.
    std::vector<float> u = rand_uniform(shape, gen).to_vector<float>();
    for (float& v : u) v = v < 0.5f ? -1.0f : 1.0f;
    out.push_back(Tensor::from_vector(u, shape).to(device));
  }
  return out;
}

SignRatio sign_ratio(double loss_clean, double loss_adversarial, const std::vector<double>& loss_random) {
  SG_CHECK(!loss_random.empty(), "sign_ratio: needs at least one random-sign loss");
  SignRatio r;
  r.adversarial_increase = loss_adversarial - loss_clean;
  for (double l : loss_random) {
    r.random_increase += (l - loss_clean) / double(loss_random.size());
    r.random_abs_increase += std::fabs(l - loss_clean) / double(loss_random.size());
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.ratio = r.random_increase != 0 ? r.adversarial_increase / r.random_increase : nan;
  r.abs_ratio = r.random_abs_increase != 0 ? r.adversarial_increase / r.random_abs_increase : nan;
  return r;
}

}  // namespace spikegrad::app
