#include "engine/lr_schedule.h"

#include <cmath>

#include "engine/check.h"

namespace spikegrad {

namespace {
constexpr double kPi = 3.14159265358979323846;

void check_epoch(const char* schedule, int64_t epoch) {
  SG_CHECK(epoch >= 0, schedule << ": epoch must be >= 0, got " << epoch);
}
}  // namespace

CosineSchedule::CosineSchedule(double base_lr, int64_t t_max, double eta_min)
    : base_lr_(base_lr), t_max_(t_max), eta_min_(eta_min) {
  SG_CHECK(std::isfinite(base_lr) && base_lr >= 0, "CosineSchedule: base_lr must be finite and >= 0, got " << base_lr);
  SG_CHECK(t_max > 0, "CosineSchedule: t_max must be > 0, got " << t_max);
  SG_CHECK(std::isfinite(eta_min) && eta_min >= 0, "CosineSchedule: eta_min must be finite and >= 0, got " << eta_min);
}

double CosineSchedule::lr(int64_t epoch) const {
  check_epoch("CosineSchedule", epoch);
  return eta_min_ + (base_lr_ - eta_min_) * (1.0 + std::cos(kPi * double(epoch) / double(t_max_))) / 2.0;
}

StepSchedule::StepSchedule(double base_lr, int64_t step_size, double gamma)
    : base_lr_(base_lr), step_size_(step_size), gamma_(gamma) {
  SG_CHECK(std::isfinite(base_lr) && base_lr >= 0, "StepSchedule: base_lr must be finite and >= 0, got " << base_lr);
  SG_CHECK(step_size > 0, "StepSchedule: step_size must be > 0, got " << step_size);
  SG_CHECK(std::isfinite(gamma) && gamma >= 0, "StepSchedule: gamma must be finite and >= 0, got " << gamma);
}

double StepSchedule::lr(int64_t epoch) const {
  check_epoch("StepSchedule", epoch);
  return base_lr_ * std::pow(gamma_, double(epoch / step_size_));
}

}  // namespace spikegrad
