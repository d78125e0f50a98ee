#include "losses/mine.h"

#include <algorithm>
#include <cmath>

#include "engine/strict_load.h"

namespace spikegrad {

namespace {

constexpr const char* kOptimizerPrefix = "optimizer.";
constexpr const char* kLogEmaName = "log_ema";

// A parameter as the tape sees it: itself (gradients accumulate into it) or a detached view of its storage.
Tensor as_used(const Tensor& p, bool live) { return live ? p : p.view(p.shape()); }

// log Σ_b exp t_b of t (B), shape (). There is no exp/log op; cross-entropy is −t_0 + logsumexp(t) on the row
// t with label 0, so logsumexp = CE + t_0, with t_0 read out by a product with the unit vector e_0. Both are
// differentiable and the CE kernel's max-shift keeps it finite for any t.
Tensor logsumexp(Tape& tape, const Tensor& t) {
  const int64_t B = t.size(0);
  const Tensor row = ops::reshape(tape, t, {1, B});
  const Tensor label0 = Tensor::zeros({1}, DType::I32, t.device());
  Tensor e0 = Tensor::zeros({1, B}, t.dtype(), Device::CPU);
  if (t.dtype() == DType::F64) e0.data<double>()[0] = 1.0;
  else e0.data<float>()[0] = 1.f;
  const Tensor t0 = ops::reshape(tape, ops::linear(tape, row, e0.to(t.device()), Tensor()), {});
  return ops::add(tape, ops::reshape(tape, ops::cross_entropy(tape, row, label0), {}), t0);
}

// log((1-r)·e^a + r·e^b) without overflow.
double log_mix(double log_a, double log_b, double r) {
  const double x = std::log1p(-r) + log_a, y = std::log(r) + log_b;
  const double hi = std::max(x, y);
  return hi + std::log(std::exp(x - hi) + std::exp(y - hi));
}

}  // namespace

Tensor mine_spatial_features(Tape& tape, const Tensor& spikes, int pool) {
  SG_CHECK(spikes.defined() && (spikes.ndim() == 5 || spikes.ndim() == 3),
           "mine features: the tap must be spikes (T,B,C,H,W) or (T,B,N), got "
               << (spikes.defined() ? shape_str(spikes.shape()) : "undefined"));
  SG_CHECK(pool >= 1, "mine features: --mine-pool must be >= 1, got " << pool);
  Tensor rates = ops::mean_time(tape, spikes);  // (B,C,H,W) or (B,N)
  if (rates.ndim() == 2) return rates;
  const int out_h = int(std::min<int64_t>(pool, rates.size(2))), out_w = int(std::min<int64_t>(pool, rates.size(3)));
  return ops::flatten(tape, ops::adaptive_avg_pool2d(tape, rates, out_h, out_w), 1);
}

MineEstimator::MineEstimator(MineOptions opt, Device device, DType dtype) : opt_(opt), device_(device), dtype_(dtype) {
  SG_CHECK(opt_.hidden >= 1, "mine: --mine-hidden must be >= 1, got " << opt_.hidden);
  SG_CHECK(opt_.pool >= 1, "mine: --mine-pool must be >= 1, got " << opt_.pool);
  SG_CHECK(opt_.ema_rate > 0 && opt_.ema_rate <= 1, "mine: --mine-ema must be in (0,1], got " << opt_.ema_rate);
  SG_CHECK(opt_.lr > 0 && std::isfinite(opt_.lr), "mine: --mine-lr must be > 0, got " << opt_.lr);
  SG_CHECK(dtype_ == DType::F32 || (dtype_ == DType::F64 && device_ == Device::CPU),
           "mine: the statistics network is float32 (float64 on the CPU only)");
}

void MineEstimator::build(int64_t x_dim, int64_t z_dim) {
  SG_CHECK(x_dim >= 1 && z_dim >= 1, "mine: feature widths must be >= 1, got dx=" << x_dim << ", dz=" << z_dim);
  Generator init(opt_.seed);
  const int64_t H = opt_.hidden;
  // nn.Linear's bounds: fc1 acts on the concatenation [x;z], so both of its weight blocks use fan_in dx+dz.
  auto uniform = [&](const Shape& shape, int64_t fan_in) {
    Tensor t = rand_uniform(shape, init, Device::CPU, DType::F64);
    const double bound = 1.0 / std::sqrt(double(fan_in));
    for (double* p = t.data<double>(), *e = p + t.numel(); p != e; ++p) *p = (2 * *p - 1) * bound;
    Tensor out = (dtype_ == DType::F64 ? t : t.to(dtype_)).to(device_);
    out.set_requires_grad(true);
    return out;
  };
  params_ = {{"fc1_x.weight", uniform({H, x_dim}, x_dim + z_dim)},
             {"fc1_z.weight", uniform({H, z_dim}, x_dim + z_dim)},
             {"fc1.bias", uniform({H}, x_dim + z_dim)},
             {"fc2.weight", uniform({H, H}, H)},
             {"fc2.bias", uniform({H}, H)},
             {"fc3.weight", uniform({1, H}, H)},
             {"fc3.bias", uniform({1}, H)}};
  AdamOptions ao;
  ao.lr = opt_.lr;
  optimizer_ = std::make_unique<Adam>(params_, ao);
}

void MineEstimator::check_batch(const Tensor& x, const Tensor& z) const {
  SG_CHECK(x.defined() && z.defined() && x.ndim() == 2 && z.ndim() == 2 && x.size(0) == z.size(0) && x.size(0) >= 2,
           "mine: features must be x (B,dx) and z (B,dz) with one B >= 2, got "
               << (x.defined() ? shape_str(x.shape()) : "undefined") << " and "
               << (z.defined() ? shape_str(z.shape()) : "undefined"));
  SG_CHECK(x.device() == device_ && z.device() == device_ && x.dtype() == dtype_ && z.dtype() == dtype_,
           "mine: features must be " << dtype_name(dtype_) << " on " << device_name(device_));
  if (built())
    SG_CHECK(params_[0].tensor.size(1) == x.size(1) && params_[1].tensor.size(1) == z.size(1),
             "mine: the statistics network takes dx=" << params_[0].tensor.size(1) << ", dz=" << params_[1].tensor.size(1)
                                                      << " features, got dx=" << x.size(1) << ", dz=" << z.size(1));
}

std::vector<int64_t> MineEstimator::draw_permutation(int64_t batch, Generator& gen) {
  std::vector<int64_t> perm(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) perm[size_t(i)] = i;
  for (int64_t i = batch - 1; i > 0; --i) {  // Fisher-Yates: one counter per swap
    const int64_t j = std::min<int64_t>(i, int64_t(gen.next_uniform() * double(i + 1)));
    std::swap(perm[size_t(i)], perm[size_t(j)]);
  }
  return perm;
}

Tensor MineEstimator::permutation_matrix(const std::vector<int64_t>& perm) const {
  const int64_t B = int64_t(perm.size());
  Tensor p = Tensor::zeros({B, B}, DType::F64, Device::CPU);
  for (int64_t b = 0; b < B; ++b) p.data<double>()[b * B + perm[size_t(b)]] = 1.0;
  return (dtype_ == DType::F64 ? p : p.to(dtype_)).to(device_);
}

std::pair<Tensor, Tensor> MineEstimator::statistics(Tape& tape, const Tensor& x, const Tensor& z, const Tensor& perm_matrix,
                                                    bool live) {
  check_batch(x, z);
  SG_CHECK(built(), "mine: the statistics network is not built yet");
  const int64_t B = x.size(0);
  auto p = [&](size_t i) { return as_used(params_[i].tensor, live); };
  const Tensor ax = ops::linear(tape, x, p(0), p(2));   // fc1 on [x;z] = fc1_x x + fc1_z z + bias
  const Tensor az = ops::linear(tape, z, p(1), Tensor());
  // (P az)[b] = az[π(b)]: linear(P, az^T) = P az.
  const Tensor az_shuffled = ops::linear(tape, perm_matrix, ops::swap_leading_dims(tape, az), Tensor());
  auto head = [&](const Tensor& h1) {
    const Tensor h2 = ops::relu(tape, ops::linear(tape, ops::relu(tape, h1), p(3), p(4)));
    return ops::reshape(tape, ops::linear(tape, h2, p(5), p(6)), {B});
  };
  return {head(ops::add(tape, ax, az)), head(ops::add(tape, ax, az_shuffled))};
}

Tensor MineEstimator::donsker_varadhan(Tape& tape, const Tensor& t_joint, const Tensor& t_marginal) {
  const double log_batch = std::log(double(t_marginal.size(0)));
  const Tensor log_mean_exp = ops::add_scalar(tape, logsumexp(tape, t_marginal), -log_batch);
  return ops::add(tape, ops::mean(tape, t_joint), ops::scale(tape, log_mean_exp, -1.0));
}

Tensor MineEstimator::corrected_objective(Tape& tape, const Tensor& t_joint, const Tensor& t_marginal, double log_ema) {
  const Tensor lse = logsumexp(tape, t_marginal);
  // m / ema with m = mean exp T_marginal = exp(lse − log B): a constant factor on the logsumexp's gradient.
  const double factor = std::exp(lse.item() - std::log(double(t_marginal.size(0))) - log_ema);
  return ops::add(tape, ops::mean(tape, t_joint), ops::scale(tape, lse, -factor));
}

Tensor MineEstimator::estimate(Tape& tape, const Tensor& x, const Tensor& z, Generator& permutations) {
  check_batch(x, z);
  if (!built()) build(x.size(1), z.size(1));
  const Tensor perm = permutation_matrix(draw_permutation(x.size(0), permutations));
  const auto [t_joint, t_marginal] = statistics(tape, x, z, perm, /*live=*/false);
  pending_x_ = x.view(x.shape());
  pending_z_ = z.view(z.shape());
  pending_perm_ = perm;
  return ops::scale(tape, donsker_varadhan(tape, t_joint, t_marginal), 1.0 / std::log(2.0));
}

double MineEstimator::update() {
  SG_CHECK(pending_x_.defined(), "mine: update() needs a batch from estimate() first");
  Tape tape;
  const auto [t_joint, t_marginal] = statistics(tape, pending_x_, pending_z_, pending_perm_, /*live=*/true);
  double log_mean_exp = 0, mean_joint = 0;
  {
    NoGradGuard ng;
    Tape none;
    log_mean_exp = logsumexp(none, t_marginal).item() - std::log(double(t_marginal.size(0)));
    mean_joint = ops::mean(none, t_joint).item();
  }
  SG_CHECK(std::isfinite(log_mean_exp) && std::isfinite(mean_joint),
           "mine: the statistics network's output is not finite (mean T joint " << mean_joint << ", log mean exp T marginal "
                                                                                << log_mean_exp << ")");
  log_ema_ = updates() == 0 ? log_mean_exp : log_mix(log_ema_, log_mean_exp, opt_.ema_rate);
  const Tensor objective = corrected_objective(tape, t_joint, t_marginal, log_ema_);
  tape.backward(ops::scale(tape, objective, -1.0));  // Adam descends; the network ascends the bound
  optimizer_->step();
  optimizer_->zero_grad();
  pending_x_ = pending_z_ = pending_perm_ = Tensor();
  return (mean_joint - log_mean_exp) / std::log(2.0);
}

NamedTensors MineEstimator::state() const {
  NamedTensors out;
  if (!built()) return out;
  out = params_;
  for (const NamedTensor& s : optimizer_->state()) out.push_back({kOptimizerPrefix + s.name, s.tensor});
  out.push_back({kLogEmaName, Tensor::scalar(log_ema_, DType::F64, Device::CPU)});
  return out;
}

std::map<std::string, double> MineEstimator::hyper_state() const {
  return built() ? optimizer_->hyper_state() : std::map<std::string, double>{};
}

void MineEstimator::load_state(const NamedTensors& state, const std::map<std::string, double>& hyper,
                               const std::string& what) {
  NamedTensors params, slots;
  Tensor log_ema;
  const size_t prefix = std::string(kOptimizerPrefix).size();
  for (const NamedTensor& t : state) {
    if (t.name == kLogEmaName) log_ema = t.tensor;
    else if (t.name.rfind(kOptimizerPrefix, 0) == 0) slots.push_back({t.name.substr(prefix), t.tensor});
    else params.push_back(t);
  }
  SG_CHECK(log_ema.defined() && log_ema.numel() == 1 && std::isfinite(log_ema.item()),
           what << ": the MINE state needs a finite scalar '" << kLogEmaName << "'");
  if (!built()) {
    auto width = [&](const char* name) -> int64_t {
      for (const NamedTensor& t : params)
        if (t.name == name && t.tensor.ndim() == 2) return t.tensor.size(1);
      SG_FAIL(what << ": the MINE state has no 2-D '" << name << "'");
    };
    build(width("fc1_x.weight"), width("fc1_z.weight"));
  }
  strict_copy(params_, params, what + " (MINE statistics network)");
  optimizer_->load_state(slots);
  optimizer_->load_hyper_state(hyper);
  log_ema_ = log_ema.item();
}

}  // namespace spikegrad
