#include "losses/losses.h"

#include <cmath>

#include "losses/mine.h"

namespace spikegrad {

namespace {

void check_logits(const Tensor& logits, const Tensor& labels, const char* op) {
  SG_CHECK(logits.defined() && logits.ndim() == 3,
           op << ": logits must be (T,B,K), got " << (logits.defined() ? shape_str(logits.shape()) : "undefined"));
  SG_CHECK(labels.defined() && labels.ndim() == 1 && labels.size(0) == logits.size(1),
           op << ": labels must be (B) with B = " << logits.size(1) << ", got "
              << (labels.defined() ? shape_str(labels.shape()) : "undefined"));
}

// labels (B) -> (T*B): row t*B+b of the flattened (T*B,K) logits belongs to sample b.
Tensor repeat_labels(const Tensor& labels, int64_t T) {
  const int64_t B = labels.size(0);
  Tensor rep = Tensor::empty({T * B}, labels.dtype(), labels.device());
  for (int64_t t = 0; t < T; ++t) rep.slice0(t * B, (t + 1) * B).copy_from(labels);
  return rep;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> LossParts::named() const {
  std::vector<std::pair<std::string, Tensor>> out{{"loss", total}, {base_name, base}};
  if (mi.defined()) out.push_back({"mi_bits", mi});
  if (entropy.defined()) out.push_back({"entropy", entropy});
  return out;
}

Tensor ce_mean_logits(Tape& tape, const Tensor& logits, const Tensor& labels) {
  check_logits(logits, labels, "ce_mean_logits");
  return ops::cross_entropy(tape, ops::mean_time(tape, logits), labels);
}

Tensor tet_loss(Tape& tape, const Tensor& logits, const Tensor& labels, double lambda, double phi) {
  check_logits(logits, labels, "tet_loss");
  SG_CHECK(lambda >= 0 && lambda <= 1, "tet_loss: lambda must be in [0,1], got " << lambda);
  SG_CHECK(std::isfinite(phi), "tet_loss: phi must be finite, got " << phi);
  const int64_t T = logits.size(0), B = logits.size(1), K = logits.size(2);
  // Each time step contributes B rows, so the mean over all T*B rows is mean_t of the per-step CE.
  Tensor ce = ops::cross_entropy(tape, ops::reshape(tape, logits, {T * B, K}), repeat_labels(labels, T));
  if (lambda == 0) return ce;
  Tensor d = ops::add_scalar(tape, logits, -phi);
  Tensor mse = ops::mean(tape, ops::mul(tape, d, d));
  return ops::add(tape, ops::scale(tape, ce, 1.0 - lambda), ops::scale(tape, mse, lambda));
}

Tensor output_entropy(Tape& tape, const Tensor& logits) {
  SG_CHECK(logits.defined() && logits.ndim() == 3,
           "output_entropy: logits must be (T,B,K), got " << (logits.defined() ? shape_str(logits.shape()) : "undefined"));
  return ops::mean(tape, ops::softmax_entropy(tape, ops::mean_time(tape, logits)));
}

Tensor tap_mutual_information(Tape& tape, const Taps& taps, const std::string& x_name, const std::string& z_name,
                              ops::RateReduce reduce, const ops::KdeMiOptions& opt) {
  const std::string xn = x_name.empty() ? taps.first_name() : x_name;
  const std::string zn = z_name.empty() ? taps.last_conv_name() : z_name;
  const double scale = double(opt.bins - 1);  // reference: 256 bins, rates x255
  Tensor x = ops::firing_rate(tape, taps.get(xn), reduce, scale);
  Tensor z = ops::firing_rate(tape, taps.get(zn), reduce, scale);
  return ops::kde_mutual_information(tape, x, z, opt);
}

const char* mi_estimator_name(MiEstimator e) {
  switch (e) {
    case MiEstimator::kde: return "kde";
    case MiEstimator::hist: return "hist";
    case MiEstimator::mine: return "mine";
  }
  return "?";
}

std::pair<std::string, std::string> mi_tap_names(const Taps& taps, const LossConfig& cfg) {
  const std::string xn = cfg.mi_x.empty() ? taps.first_name() : cfg.mi_x;
  if (cfg.mi_taps == MiTaps::deep) return {xn, cfg.mi_z.empty() ? taps.last_conv_name() : cfg.mi_z};
  SG_CHECK(cfg.mi_z.empty(), "loss: --mi-taps shallow chooses Z itself (the second spiking layer); drop --mi-z '"
                                 << cfg.mi_z << "' or use --mi-taps deep");
  const auto& listed = taps.listed();
  SG_CHECK(listed.size() >= 2, "loss: --mi-taps shallow needs a model with at least 2 spiking-layer taps, this one has "
                                   << listed.size());
  return {xn, listed[1].first};
}

Tensor mi_term(Tape& tape, const Taps& taps, const LossConfig& cfg) {
  const auto [xn, zn] = mi_tap_names(taps, cfg);
  switch (cfg.mi_estimator) {
    case MiEstimator::kde: return tap_mutual_information(tape, taps, xn, zn, cfg.mi_reduce, cfg.mi);
    case MiEstimator::hist: {
      const double scale = double(cfg.mi_hist.bins - 1);  // rates onto the bin centres 0..bins-1
      Tensor x = ops::firing_rate(tape, taps.get(xn), cfg.mi_reduce, scale);
      Tensor z = ops::firing_rate(tape, taps.get(zn), cfg.mi_reduce, scale);
      return ops::hist_mutual_information(tape, x, z, cfg.mi_hist);
    }
    case MiEstimator::mine: {
      SG_CHECK(cfg.mine && cfg.mine_permutations,
               "loss: --mi-estimator mine needs the trainer's MINE statistics network and generator");
      const int pool = cfg.mine->options().pool;
      return cfg.mine->estimate(tape, mine_spatial_features(tape, taps.get(xn), pool),
                                mine_spatial_features(tape, taps.get(zn), pool), *cfg.mine_permutations);
    }
    default: break;
  }
  SG_FAIL("loss: MI estimator '" << mi_estimator_name(cfg.mi_estimator) << "' is not available in compute_loss");
}

TapKeep taps_needed(const LossConfig& cfg) {
  if (cfg.mi_lambda == 0 && !cfg.report_mi) return TapKeep::none();
  return cfg.mi_taps == MiTaps::shallow ? TapKeep::mi_shallow(cfg.mi_x) : TapKeep::mi(cfg.mi_x, cfg.mi_z);
}

LossParts compute_loss(Tape& tape, const Tensor& logits, const Tensor& labels, const Taps& taps, const LossConfig& cfg) {
  SG_CHECK(std::isfinite(cfg.mi_lambda), "compute_loss: mi_lambda must be finite, got " << cfg.mi_lambda);
  SG_CHECK(std::isfinite(cfg.entropy_weight), "compute_loss: entropy_weight must be finite, got " << cfg.entropy_weight);
  SG_CHECK(cfg.entropy_sign == 1.0 || cfg.entropy_sign == -1.0,
           "compute_loss: entropy_sign must be +1 or -1, got " << cfg.entropy_sign);
  LossParts p;
  if (cfg.base == LossBase::tet) {
    p.base_name = "tet";
    p.base = tet_loss(tape, logits, labels, cfg.tet_lambda, cfg.tet_phi);
  } else {
    p.base_name = "ce";
    p.base = ce_mean_logits(tape, logits, labels);
  }
  p.total = p.base;
  if (cfg.mi_lambda != 0) {
    p.mi = mi_term(tape, taps, cfg);
    p.total = ops::add(tape, p.total, ops::scale(tape, p.mi, cfg.mi_lambda));
  } else if (cfg.report_mi) {
    NoGradGuard ng;  // for the log only: nothing recorded, no gradient
    p.mi = mi_term(tape, taps, cfg);
  }
  if (cfg.entropy_weight != 0) {
    p.entropy = output_entropy(tape, logits);
    p.total = ops::add(tape, p.total, ops::scale(tape, p.entropy, cfg.entropy_sign * cfg.entropy_weight));
  }
  return p;
}

}  // namespace spikegrad
