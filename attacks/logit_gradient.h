// The pass APGD and FAB share: the mean over T of the logits at a batch of points held on the host, and the
// input gradient of Σ_b f_b(z_b) for per-example functions f_b of those logits, whose gradient w.r.t. z_b
// the caller computes on the host (a loss, a logit difference). One forward and one vector-Jacobian product
// through the model, in whatever mode the caller's ModelModeGuard set.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "models/model.h"

namespace spikegrad::attack_detail {

// A batch copied to the host for the per-example bookkeeping of APGD, FAB, CW, Square and AutoAttack.
struct HostBatch {
  HostBatch(const Tensor& images, const Tensor& labels);
  Shape shape;                  // (B,C,H,W)
  Device device;                // where the images came from and results go back
  int64_t size = 0, per_example = 0;  // B and C·H·W
  std::vector<float> x;         // the images
  std::vector<int32_t> y;       // the labels
  Tensor on_device(const std::vector<float>& values) const;  // values (B·D) as (B,C,H,W) on `device`
};

struct LogitPass {
  std::vector<float> logits;  // (B,K) mean over T
  std::vector<float> grad;    // (B·D) d Σ_b f_b / d x
  int64_t classes = 0;
};

// row_grad(b, z_b, K, gz_b): fill the K entries of gz_b = d f_b / d z_b (zeroed before the call).
LogitPass logit_pass(Model& model, const std::vector<float>& x, const Shape& shape, Device device,
                     const std::function<void(int64_t, const float*, int64_t, double*)>& row_grad, const char* op);

// Index of the largest of the K values (the first on ties), as argmax does.
int64_t first_max(const float* z, int64_t k);
// The class other than `label` with the largest logit (the first on ties): the margin's competitor.
int64_t best_other(const float* z, int64_t k, int32_t label);
// The K classes sorted by logit, high to low (ties: lower index first, a fixed order).
std::vector<int64_t> ranked_classes(const float* z, int64_t k);
// The classes of rank `rank` (1 = the top) by the mean logits at `images`, one per example: the targets of
// APGD-T and FAB-T. Runs one forward without gradients; the caller's ModelModeGuard sets the mode.
std::vector<int32_t> classes_of_rank(Model& model, const Tensor& images, int rank);

}  // namespace spikegrad::attack_detail
