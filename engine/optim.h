// Optimizers (SGD, Adam, AdamW) with PyTorch's update rules, and global-norm gradient clipping.
//
// An optimizer holds the parameters by name (PyTorch-style: "features.0.weight") and, per parameter,
// its state slots (momentum_buffer; exp_avg and exp_avg_sq), each with the parameter's shape, dtype and
// device, plus a step counter. step() updates every parameter that has a gradient with one fused
// kernel (kernels/optim.h); parameters whose grad() is undefined are skipped and their step counters do
// not advance, as in PyTorch.
//
// Checkpoints: state() lists "<param>.<slot>" tensors (sharing storage with the live state) and
// "<param>.step" (int64 scalars on the cpu); load_state() copies a checkpoint back in and is strict.
// hyper_state() holds the scalars ("lr", "step_count") for the trainer's JSON metadata.
// The learning rate follows a schedule (engine/lr_schedule.h) that the trainer applies via set_lr.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/named_tensor.h"

namespace spikegrad {

template <class T> struct SgdScalars;   // kernels/optim.h
template <class T> struct AdamScalars;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Checks every existing gradient (same shape, dtype and device as its parameter) before touching
  // anything, then updates each parameter that has one.
  virtual void step();
  void zero_grad();  // drops the gradients (they are re-created by the next backward)

  double lr() const { return lr_; }
  void set_lr(double lr);
  int64_t step_count() const { return step_count_; }  // calls of step()
  const NamedTensors& params() const { return params_; }
  const std::string& name() const { return name_; }  // "SGD", "Adam", "AdamW"
  // CUDA: update all parameters in one launch (kernels/optim.h, multi-tensor; the default) or one launch per
  // parameter. The results are bit-identical; the switch exists for the benchmark and the test.
  void set_multi_tensor(bool on) { multi_tensor_ = on; }
  bool multi_tensor() const { return multi_tensor_; }

  NamedTensors state() const;
  // Copies `state` into the optimizer (tensors may live on any device). Every expected entry must be
  // present with the right shape and dtype and nothing else may be there; otherwise one error lists all
  // missing, unexpected and mismatched entries, and nothing is changed.
  void load_state(const NamedTensors& state);
  std::map<std::string, double> hyper_state() const;  // {"lr", "step_count"}
  void load_hyper_state(const std::map<std::string, double>& hyper);

 protected:
  // slot_names: the per-parameter state tensors, allocated as zeros like each parameter.
  Optimizer(std::string name, NamedTensors params, double lr, std::vector<std::string> slot_names);
  // Updates parameter i from gradient g (already checked) at the parameter's step t (1 on its first update).
  virtual void update(size_t i, const Tensor& p, const Tensor& g, int64_t t) = 0;
  // The CUDA float32 parameters `indices` (each with a gradient, steps already counted) in one go; returns
  // false when the optimizer has no multi-tensor path (step() then calls update for each).
  virtual bool update_many_cuda(const std::vector<size_t>& indices) {
    (void)indices;
    return false;
  }
  int64_t param_step(size_t i) const { return param_steps_[i]; }
  const Tensor& slot(size_t param, size_t slot) const { return slots_[param][slot]; }

 private:
  std::string name_;
  NamedTensors params_;
  std::vector<std::string> slot_names_;
  std::vector<std::vector<Tensor>> slots_;  // [param][slot]
  std::vector<int64_t> param_steps_;
  double lr_;
  int64_t step_count_ = 0;
  bool multi_tensor_ = true;
};

// torch.optim.SGD defaults. nesterov requires momentum > 0 and dampening == 0.
struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // L2: added to the gradient
  bool nesterov = false;
};

class SGD final : public Optimizer {
 public:
  explicit SGD(NamedTensors params, SgdOptions opt = {});
  const SgdOptions& options() const { return opt_; }  // opt_.lr is the initial lr; lr() is the current one

 protected:
  void update(size_t i, const Tensor& p, const Tensor& g, int64_t t) override;
  bool update_many_cuda(const std::vector<size_t>& indices) override;

 private:
  // The update's scalars for a parameter on its first step or a later one (both update paths use these).
  template <class T> SgdScalars<T> scalars(bool first_step) const;
  SgdOptions opt_;
};

// torch.optim.Adam defaults (amsgrad is not supported).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2: added to the gradient
};

// torch.optim.AdamW defaults: the same fields, decoupled weight decay 0.01.
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled: p *= 1 - lr * weight_decay before the Adam update
};

class Adam : public Optimizer {
 public:
  explicit Adam(NamedTensors params, AdamOptions opt = {});
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(std::string name, NamedTensors params, AdamOptions opt, bool decoupled);
  void update(size_t i, const Tensor& p, const Tensor& g, int64_t t) override;
  bool update_many_cuda(const std::vector<size_t>& indices) override;

 private:
  // The update's scalars at a parameter's step t, from double host arithmetic as PyTorch's Python floats
  // (both update paths use these, so they give the same bits).
  template <class T> AdamScalars<T> scalars(int64_t t) const;
  AdamOptions opt_;
  bool decoupled_;
};

class AdamW final : public Adam {
 public:
  explicit AdamW(NamedTensors params, AdamWOptions opt = {});
};

// The L2 norm of all existing gradients of `params` taken together (0 when none has a gradient). On
// CUDA it is reduced on the device, deterministically, with one host read at the end. All gradients
// must be on one device.
double global_grad_norm(const NamedTensors& params);

// torch.nn.utils.clip_grad_norm_: computes the global norm; when max_norm / (norm + 1e-6) < 1 every
// gradient is multiplied by that factor in place. Returns the norm before clipping. A non-finite norm
// is returned without touching the gradients (the caller reports it).
double clip_grad_norm(const NamedTensors& params, double max_norm);

}  // namespace spikegrad
