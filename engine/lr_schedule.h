// Learning-rate schedules as pure functions of the epoch, so that a resumed run sets exactly the lr an
// uninterrupted run would have had: the trainer calls opt.set_lr(schedule.lr(epoch)) at the start of
// each epoch (PyTorch steps these schedulers once per epoch; epoch 0 gives base_lr).
#pragma once
#include <cstdint>

namespace spikegrad {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(int64_t epoch) const = 0;  // epoch >= 0
};

// torch.optim.lr_scheduler.CosineAnnealingLR in its closed form:
//   lr(e) = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / t_max)) / 2
// Past t_max the cosine simply continues (as PyTorch's schedule does), rising back towards base_lr.
class CosineSchedule final : public LrSchedule {
 public:
  CosineSchedule(double base_lr, int64_t t_max, double eta_min = 0.0);
  double lr(int64_t epoch) const override;

 private:
  double base_lr_;
  int64_t t_max_;
  double eta_min_;
};

// torch.optim.lr_scheduler.StepLR: lr(e) = base_lr * gamma^floor(e / step_size).
class StepSchedule final : public LrSchedule {
 public:
  StepSchedule(double base_lr, int64_t step_size, double gamma = 0.1);
  double lr(int64_t epoch) const override;

 private:
  double base_lr_;
  int64_t step_size_;
  double gamma_;
};

}  // namespace spikegrad
