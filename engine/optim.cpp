// Glue for the optimizers (kernels/optim.h): validation, per-parameter state, checkpoints, clipping.
#include "engine/optim.h"

#include <cmath>
#include <set>

#include "engine/op_util.h"
#include "engine/strict_load.h"
#include "kernels/elementwise.h"
#include "kernels/optim.h"

namespace spikegrad {

using detail::check_float;
using detail::dispatch_float;

namespace {

constexpr const char* kStepSlot = "step";

bool finite_nonneg(double x) { return std::isfinite(x) && x >= 0; }

void check_lr(const std::string& opt, double lr) {
  SG_CHECK(finite_nonneg(lr), opt << ": lr must be a finite number >= 0, got " << lr);
}

void check_beta(const std::string& opt, const char* what, double beta) {
  SG_CHECK(beta >= 0 && beta < 1, opt << ": " << what << " must be in [0, 1), got " << beta);
}

}  // namespace

// ---- Optimizer ---------------------------------------------------------------------------------

Optimizer::Optimizer(std::string name, NamedTensors params, double lr, std::vector<std::string> slot_names)
    : name_(std::move(name)), params_(std::move(params)), slot_names_(std::move(slot_names)), lr_(lr) {
  check_lr(name_, lr);
  SG_CHECK(!params_.empty(), name_ << ": got an empty parameter list");
  std::set<std::string> names;
  std::set<const TensorImpl*> tensors;
  for (const NamedTensor& nt : params_) {
    SG_CHECK(!nt.name.empty(), name_ << ": every parameter needs a name");
    SG_CHECK(names.insert(nt.name).second, name_ << ": parameter name '" << nt.name << "' appears twice");
    check_float(nt.tensor, name_.c_str(), nt.name.c_str());
    // Two names for one tensor would update it twice per step.
    SG_CHECK(tensors.insert(nt.tensor.impl()).second,
             name_ << ": parameter '" << nt.name << "' is the same tensor as an earlier parameter");
  }
  slots_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    for (size_t s = 0; s < slot_names_.size(); ++s) slots_[i].push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  }
  param_steps_.assign(params_.size(), 0);
}

void Optimizer::step() {
  for (const NamedTensor& nt : params_) {
    const Tensor& g = nt.tensor.grad();
    if (!g.defined()) continue;
    const std::string what = name_ + " step: grad of '" + nt.name + "'";
    detail::check_like(g, nt.tensor, what.c_str(), "grad", "parameter");
    detail::check_shape(g, nt.tensor.shape(), what.c_str(), "grad");
  }
  std::vector<size_t> cuda_group;  // float32 CUDA parameters, for the multi-tensor path
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (multi_tensor_ && p.is_cuda() && p.dtype() == DType::F32) {
      ++param_steps_[i];
      cuda_group.push_back(i);
      continue;
    }
    update(i, p, g, ++param_steps_[i]);
  }
  if (!cuda_group.empty() && !update_many_cuda(cuda_group))
    for (size_t i : cuda_group) update(i, params_[i].tensor, params_[i].tensor.grad(), param_steps_[i]);
  ++step_count_;
}

void Optimizer::zero_grad() {
  for (NamedTensor& nt : params_) nt.tensor.zero_grad();
}

void Optimizer::set_lr(double lr) {
  check_lr(name_, lr);
  lr_ = lr;
}

NamedTensors Optimizer::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (size_t s = 0; s < slot_names_.size(); ++s) out.push_back({params_[i].name + "." + slot_names_[s], slots_[i][s]});
    out.push_back({params_[i].name + "." + kStepSlot, Tensor::scalar(double(param_steps_[i]), DType::I64)});
  }
  return out;
}

void Optimizer::load_state(const NamedTensors& state) {
  // Step counters are checked first, so that a rejected state changes nothing; strict_copy then checks
  // names, shapes and dtypes of everything before it copies anything.
  NamedTensors destination = this->state();
  std::map<std::string, size_t> step_of;
  for (size_t i = 0; i < params_.size(); ++i) step_of[params_[i].name + "." + kStepSlot] = i;
  for (const NamedTensor& nt : state) {
    if (!step_of.count(nt.name) || !nt.tensor.defined() || nt.tensor.numel() != 1) continue;
    const double v = nt.tensor.item();
    SG_CHECK(v >= 0 && v == std::floor(v), name_ << " load_state: " << nt.name << " must be an integer >= 0, got " << v);
  }
  // state() gives the live slots (so copying fills them) and fresh step scalars, read back below.
  strict_copy(destination, state, name_ + " load_state");
  for (const NamedTensor& nt : destination) {
    auto it = step_of.find(nt.name);
    if (it != step_of.end()) param_steps_[it->second] = int64_t(nt.tensor.item());
  }
}

std::map<std::string, double> Optimizer::hyper_state() const {
  return {{"lr", lr_}, {"step_count", double(step_count_)}};
}

void Optimizer::load_hyper_state(const std::map<std::string, double>& hyper) {
  std::vector<std::string> problems;
  for (const char* key : {"lr", "step_count"})
    if (!hyper.count(key)) problems.push_back(std::string("missing '") + key + "'");
  for (const auto& kv : hyper)
    if (kv.first != "lr" && kv.first != "step_count") problems.push_back("unexpected '" + kv.first + "'");
  if (problems.empty()) {
    const double steps = hyper.at("step_count");
    if (!(finite_nonneg(steps) && steps == std::floor(steps)))
      problems.push_back("step_count must be an integer >= 0, got " + std::to_string(steps));
    if (!finite_nonneg(hyper.at("lr"))) problems.push_back("lr must be finite and >= 0, got " + std::to_string(hyper.at("lr")));
  }
  if (!problems.empty()) {
    std::string all;
    for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
    SG_FAIL(name_ << " load_hyper_state: " << all);
  }
  lr_ = hyper.at("lr");
  step_count_ = int64_t(hyper.at("step_count"));
}

// ---- SGD ---------------------------------------------------------------------------------------

namespace {
SgdOptions checked(SgdOptions o) {
  check_lr("SGD", o.lr);
  SG_CHECK(finite_nonneg(o.momentum), "SGD: momentum must be >= 0, got " << o.momentum);
  SG_CHECK(std::isfinite(o.dampening), "SGD: dampening must be finite, got " << o.dampening);
  SG_CHECK(finite_nonneg(o.weight_decay), "SGD: weight_decay must be >= 0, got " << o.weight_decay);
  SG_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
           "SGD: nesterov requires momentum > 0 and dampening == 0, got momentum=" << o.momentum
                                                                               << " dampening=" << o.dampening);
  return o;
}
std::vector<std::string> sgd_slots(const SgdOptions& o) {
  if (o.momentum == 0) return {};  // PyTorch keeps no buffer without momentum
  return {"momentum_buffer"};
}
}  // namespace

SGD::SGD(NamedTensors params, SgdOptions opt)
    : Optimizer("SGD", std::move(params), checked(opt).lr, sgd_slots(opt)), opt_(opt) {}

template <class T> SgdScalars<T> SGD::scalars(bool first_step) const {
  return SgdScalars<T>{T(lr()), T(opt_.momentum), T(opt_.dampening), T(opt_.weight_decay), opt_.nesterov, first_step};
}

void SGD::update(size_t i, const Tensor& p, const Tensor& g, int64_t t) {
  const Tensor buf = opt_.momentum != 0 ? slot(i, 0) : Tensor();
  const int64_t n = p.numel();
  if (p.is_cuda()) {
    SG_CUDA_CALL("SGD step", sgd_step_cuda(p.data<float>(), g.data<float>(), buf.defined() ? buf.data<float>() : nullptr,
                                           n, scalars<float>(t == 1)));
    return;
  }
  dispatch_float(p.dtype(), "SGD step", [&](auto z) {
    using T = decltype(z);
    sgd_step_cpu<T>(p.data<T>(), g.data<T>(), buf.defined() ? buf.data<T>() : nullptr, n, scalars<T>(t == 1));
  });
}

bool SGD::update_many_cuda(const std::vector<size_t>& indices) {
  std::vector<SgdTensorArgs> args;
  for (size_t i : indices) {
    const Tensor& p = params()[i].tensor;
    args.push_back({p.data<float>(), p.grad().data<float>(), opt_.momentum != 0 ? slot(i, 0).data<float>() : nullptr,
                    p.numel(), param_step(i) == 1});
  }
  SG_CUDA_CALL("SGD step", sgd_multi_step_cuda(args.data(), int(args.size()), scalars<float>(false)));
  return true;
}

// ---- Adam / AdamW ------------------------------------------------------------------------------

namespace {
AdamOptions checked(const std::string& name, AdamOptions o) {
  check_lr(name, o.lr);
  check_beta(name, "beta1", o.beta1);
  check_beta(name, "beta2", o.beta2);
  SG_CHECK(finite_nonneg(o.eps), name << ": eps must be >= 0, got " << o.eps);
  SG_CHECK(finite_nonneg(o.weight_decay), name << ": weight_decay must be >= 0, got " << o.weight_decay);
  return o;
}
}  // namespace

Adam::Adam(NamedTensors params, AdamOptions opt) : Adam("Adam", std::move(params), opt, false) {}

Adam::Adam(std::string name, NamedTensors params, AdamOptions opt, bool decoupled)
    : Optimizer(name, std::move(params), checked(name, opt).lr, {"exp_avg", "exp_avg_sq"}),
      opt_(opt),
      decoupled_(decoupled) {}

AdamW::AdamW(NamedTensors params, AdamWOptions o)
    : Adam("AdamW", std::move(params), AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}, true) {}

template <class T> AdamScalars<T> Adam::scalars(int64_t t) const {
  const double bc1 = 1.0 - std::pow(opt_.beta1, double(t));
  const double bc2 = 1.0 - std::pow(opt_.beta2, double(t));
  const double l2 = decoupled_ ? 0.0 : opt_.weight_decay;
  const double decay = decoupled_ ? 1.0 - lr() * opt_.weight_decay : 1.0;
  return AdamScalars<T>{T(opt_.beta1), T(opt_.beta2), T(opt_.eps), T(l2), T(decay), T(lr() / bc1), T(std::sqrt(bc2))};
}

void Adam::update(size_t i, const Tensor& p, const Tensor& g, int64_t t) {
  const Tensor& m = slot(i, 0);
  const Tensor& v = slot(i, 1);
  const int64_t n = p.numel();
  if (p.is_cuda()) {
    SG_CUDA_CALL(name().c_str(), adam_step_cuda(p.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(), n,
                                                scalars<float>(t)));
    return;
  }
  dispatch_float(p.dtype(), name().c_str(), [&](auto z) {
    using T = decltype(z);
    adam_step_cpu<T>(p.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), n, scalars<T>(t));
  });
}

bool Adam::update_many_cuda(const std::vector<size_t>& indices) {
  std::vector<AdamTensorArgs> args;
  for (size_t i : indices) {
    const Tensor& p = params()[i].tensor;
    const AdamScalars<float> own = scalars<float>(param_step(i));  // per tensor: its own step count
    args.push_back({p.data<float>(), p.grad().data<float>(), slot(i, 0).data<float>(), slot(i, 1).data<float>(),
                    p.numel(), own.step_size, own.bc2_sqrt});
  }
  // The shared fields (betas, eps, l2, decay) do not depend on t.
  SG_CUDA_CALL(name().c_str(), adam_multi_step_cuda(args.data(), int(args.size()), scalars<float>(1)));
  return true;
}

// ---- gradient norm and clipping ----------------------------------------------------------------

namespace {
// The defined gradients, checked to share one device.
std::vector<Tensor> existing_grads(const NamedTensors& params, const char* op) {
  std::vector<Tensor> grads;
  const std::string* first_name = nullptr;
  for (const NamedTensor& nt : params) {
    const Tensor& g = nt.tensor.grad();
    if (!g.defined()) continue;
    check_float(g, op, ("grad of '" + nt.name + "'").c_str());
    if (first_name)
      SG_CHECK(g.device() == grads.front().device(),
               op << ": all gradients must be on one device, but '" << *first_name << "' is on "
                  << device_name(grads.front().device()) << " and '" << nt.name << "' on " << device_name(g.device()));
    else
      first_name = &nt.name;
    grads.push_back(g);
  }
  return grads;
}

// One partial per block of every gradient, then one block sums them all: the only host read is the total.
double norm_cuda(const std::vector<Tensor>& grads) {
#ifdef SPIKEGRAD_CUDA
  int64_t count = 0;
  for (const Tensor& g : grads) count += sum_squares_partial_count(g.numel());
  Tensor partials = Tensor::empty({count + 1}, DType::F64, Device::CUDA);
  double* base = partials.data<double>();
  int64_t offset = 0;
  for (const Tensor& g : grads) {
    sum_squares_partials_cuda(g.data<float>(), g.numel(), base + offset);
    offset += sum_squares_partial_count(g.numel());
  }
  sum_partials_cuda(base, count, base + count);
  return std::sqrt(partials.slice0(count, count + 1).item());
#else
  require_cuda("global_grad_norm");  // unreachable: a CPU-only build has no CUDA tensors
  return 0.0;
#endif
}

double norm_of(const std::vector<Tensor>& grads) {
  if (grads.empty()) return 0.0;
  if (!grads.front().is_cuda()) {
    double total = 0;
    for (const Tensor& g : grads) {
      dispatch_float(g.dtype(), "global_grad_norm", [&](auto z) {
        using T = decltype(z);
        total += sum_squares_cpu<T>(g.data<T>(), g.numel());
      });
    }
    return std::sqrt(total);
  }
  return norm_cuda(grads);
}
}  // namespace

double global_grad_norm(const NamedTensors& params) {
  return norm_of(existing_grads(params, "global_grad_norm"));
}

double clip_grad_norm(const NamedTensors& params, double max_norm) {
  SG_CHECK(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got " << max_norm);
  const std::vector<Tensor> grads = existing_grads(params, "clip_grad_norm");
  const double norm = norm_of(grads);
  if (!std::isfinite(norm)) return norm;
  // PyTorch clamps the coefficient at 1 and always multiplies; skipping the multiply by 1 is the same.
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return norm;
  for (const Tensor& g : grads) {
    const int64_t n = g.numel();
    if (g.is_cuda()) {
      SG_CUDA_CALL("clip_grad_norm", scale_forward_cuda(g.data<float>(), float(coef), g.data<float>(), n));
      continue;
    }
    dispatch_float(g.dtype(), "clip_grad_norm", [&](auto z) {
      using T = decltype(z);
      scale_forward_cpu<T>(g.data<T>(), T(coef), g.data<T>(), n);  // in place: each element reads then writes itself
    });
  }
  return norm;
}

}  // namespace spikegrad
