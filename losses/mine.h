// MINE (Belghazi et al., ICML 2018): the mutual-information baseline the TMI paper compares against
// ("MI calculated using SNN spatial features"). reference.md §1.5 leaves its definition open; the choices
// made here are these, and the README's "MI estimators" paragraph repeats them.
//
// Features (mine_spatial_features): a tap's spikes (T,B,C,H,W) averaged over time, then average-pooled to
// (C, min(p,H), min(p,W)) by PyTorch's adaptive average pooling and flattened: (B, C·p·p) firing rates in
// [0,1]. A tap (T,B,N) gives its time-averaged (B,N). Spatial, not temporal: time is averaged away first,
// which is exactly the contrast the paper draws with its temporal (per-example, over T) KDE MI.
//
// Statistics network T_θ(x,z) = fc3(relu(fc2(relu(fc1([x;z]))))), widths (dx+dz) -> H -> H -> 1. fc1 on the
// concatenation is held as two weight blocks, fc1_x.weight (H,dx) and fc1_z.weight (H,dz), so no
// concatenation op is needed and the shuffled z costs one permutation of fc1_z's output (B,H).
// Initialisation: PyTorch's nn.Linear bounds U(±1/sqrt(fan_in)), fan_in of fc1 = dx+dz, from a generator of
// the estimator's own seeded with MineOptions::seed, so it does not depend on when it is built.
//
// The Donsker-Varadhan bound on a batch of B pairs (x_b, z_b), with a permutation π drawn per batch:
//   DV = mean_b T(x_b, z_b) − log( mean_b exp T(x_b, z_π(b)) )        (nats; reported in bits, / ln 2)
// Marginal samples are the batch's z shuffled by π (Fisher-Yates from the given counter-based generator, so
// a resumed run draws the same π); a shuffle may keep a few pairs together, as MINE's does.
//
// Updates. The SNN side gets DV (in bits) as a differentiable function of x and z with the statistics network
// held constant (its parameters enter as detached views), so L = L_base + λ·Î_MINE sends gradients only into
// the SNN. The statistics network ascends DV with MINE's bias-corrected gradient: with m = mean_b exp T(x_b,
// z_π(b)) and the moving average ema ← (1−r)·ema + r·m (first batch: ema = m; r = ema_rate, 0.01 as the paper),
//   ∇ = mean_b ∇T(x_b,z_b) − mean_b exp T(x_b,z_π(b)) ∇T(x_b,z_π(b)) / ema,
// the gradient of the surrogate  mean_b T_joint − (m / ema)·logsumexp_b T_marginal  (m / ema a constant),
// since ∇ logsumexp = Σ exp T ∇T / Σ exp T. ema is kept as log ema (no overflow for large T).
// One trainer step: estimate() on the SNN tape (SNN forward, backward, optimizer step), then update(): one
// Adam step (its own optimizer, lr MineOptions::lr) of the statistics network on the same batch's detached
// features and the same π. (With --adv-mix the loss is computed on the adversarial and the clean batch; the
// update uses the last one estimated, the clean batch.)
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "engine/named_tensor.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/rng.h"

namespace spikegrad {

struct MineOptions {
  int64_t hidden = 64;      // width H of both hidden layers (--mine-hidden)
  int pool = 4;             // spatial pooling to at most pool x pool per channel (--mine-pool)
  double ema_rate = 0.01;   // r of the moving average of mean exp T on marginal samples (--mine-ema)
  double lr = 1e-4;         // Adam learning rate of the statistics network (--mine-lr; the paper's 1e-4)
  uint64_t seed = 0;        // initialisation of the statistics network
};

// (T,B,C,H,W) spikes -> (B, C·min(p,H)·min(p,W)) rates; (T,B,N) -> (B,N). Differentiable.
Tensor mine_spatial_features(Tape& tape, const Tensor& spikes, int pool);

class MineEstimator {
 public:
  // The network is built on the first estimate() (or load_state()), when the feature widths are known.
  MineEstimator(MineOptions opt, Device device, DType dtype = DType::F32);

  // DV estimate in bits of I(X;Z) on the batch, x (B,dx), z (B,dz) on the estimator's device and dtype,
  // differentiable w.r.t. x and z only. Draws π from `permutations` (B−1 counters) and keeps the detached
  // x, z and π for the next update().
  Tensor estimate(Tape& tape, const Tensor& x, const Tensor& z, Generator& permutations);
  // One bias-corrected Adam ascent step on the batch of the last estimate(); returns that batch's DV in bits
  // before the step. The moving average is updated first, as MINE's code does.
  double update();

  // The pieces, for tests. π as a (B,B) permutation matrix P, P[b, π(b)] = 1.
  static std::vector<int64_t> draw_permutation(int64_t batch, Generator& gen);
  Tensor permutation_matrix(const std::vector<int64_t>& perm) const;
  // T on the joint pairs and on the shuffled pairs, each (B). live: through the parameters themselves
  // (gradients reach them) or through detached views (gradients reach x and z only).
  std::pair<Tensor, Tensor> statistics(Tape& tape, const Tensor& x, const Tensor& z, const Tensor& perm_matrix,
                                       bool live);
  // DV in nats (shape ()) from the two outputs of statistics().
  static Tensor donsker_varadhan(Tape& tape, const Tensor& t_joint, const Tensor& t_marginal);
  // The surrogate whose gradient is MINE's corrected gradient, given log ema (see the top of this file).
  static Tensor corrected_objective(Tape& tape, const Tensor& t_joint, const Tensor& t_marginal, double log_ema);

  bool built() const { return !params_.empty(); }
  const NamedTensors& params() const { return params_; }
  double log_ema() const { return log_ema_; }
  int64_t updates() const { return optimizer_ ? optimizer_->step_count() : 0; }
  const MineOptions& options() const { return opt_; }

  // Checkpoint state: the parameters ("fc1_x.weight", ...), "optimizer.<param>.<slot>" and "log_ema"
  // (float64 scalar on the CPU); empty before the network is built. load_state builds the network from the
  // tensors' shapes when it is not built yet, then copies strictly (names, shapes, dtypes), with
  // the optimizer's scalars (lr, step_count) from `hyper`.
  NamedTensors state() const;
  std::map<std::string, double> hyper_state() const;
  void load_state(const NamedTensors& state, const std::map<std::string, double>& hyper, const std::string& what);

 private:
  void build(int64_t x_dim, int64_t z_dim);
  void check_batch(const Tensor& x, const Tensor& z) const;

  MineOptions opt_;
  Device device_;
  DType dtype_;
  NamedTensors params_;  // fc1_x.weight, fc1_z.weight, fc1.bias, fc2.weight, fc2.bias, fc3.weight, fc3.bias
  std::unique_ptr<Adam> optimizer_;
  double log_ema_ = 0;  // meaningful once updates() > 0
  // The batch of the last estimate(), detached, for update().
  Tensor pending_x_, pending_z_, pending_perm_;
};

}  // namespace spikegrad
