// TASA (temporal average spike activity) of every spiking layer on clean and on attacked test inputs: the
// TMI paper's Table 2 ("the TASA difference between original and adversarial images increases per layer").
//
// The paper's released code has no definition of TASA (spec/reference.md §6, flagged open). Ours, stated in
// every output: for spiking layer l (a tap: the spike tensor s_l of shape (T,B,...)),
//   r_l[b,t]   = mean over the layer's neurons (C,H,W or N) of s_l[t,b,...]   (the population firing rate the
//                TMI loss reduces each tap to, unscaled: a fraction of neurons firing, in [0,1])
//   TASA_l[t]  = mean over the analysed examples b of r_l[b,t]                (the per-time-step column)
//   TASA_l     = mean over t of TASA_l[t]                                     (the table's number)
//   diff_l     = |TASA_l(clean) − TASA_l(adversarial)|
// Clean and adversarial forwards both run with BN in eval mode (running statistics); the adversarial inputs
// come from attacks/ (PGD by default) in the run's attack domain, one Generator(seed) for the whole pass.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "attacks/attack.h"
#include "datasets/dataset.h"
#include "models/model.h"
#include "models/taps.h"

namespace spikegrad::app {

struct LayerTasa {
  std::string layer;
  std::vector<double> clean_t, adversarial_t;  // TASA_l[t], t = 0..T-1
  double clean = 0, adversarial = 0, abs_diff = 0;
};

struct TasaResult {
  std::vector<LayerTasa> layers;  // in tap (layer) order
  int64_t examples = 0;
  double clean_accuracy = 0, robust_accuracy = 0;  // percent, on the same examples, BN eval
};

// Sums over the batch of r_l[b,t] for every tap of one forward (kept with TapKeep::everything()):
// (tap name, (T) sums), in tap order. The building block of TASA, exposed for tests.
std::vector<std::pair<std::string, std::vector<double>>> rate_sums_per_step(const Taps& taps);

// Adds one batch's rate sums into `total` (empty: initialised from it); the layer names and T must match.
void accumulate_rate_sums(std::vector<std::pair<std::string, std::vector<double>>>& total,
                          const std::vector<std::pair<std::string, std::vector<double>>>& batch);

// The per-layer TASA from the clean and adversarial rate sums over `examples` examples.
std::vector<LayerTasa> tasa_from_sums(const std::vector<std::pair<std::string, std::vector<double>>>& clean,
                                      const std::vector<std::pair<std::string, std::vector<double>>>& adversarial,
                                      int64_t examples);

// TASA over the first `batches` test batches of `batch_size` examples, attacked with `attack` (its kind,
// eps, alpha, steps, domain; its seed starts the one Generator of the pass). The model's modes are restored.
TasaResult measure_tasa(Model& model, const Dataset& test, const AttackConfig& attack, int64_t batches,
                        int64_t batch_size);

// tasa.csv: layer, tasa_clean, tasa_adv, abs_diff, then clean_t0..clean_t{T-1}, adv_t0..adv_t{T-1}.
std::string tasa_csv(const TasaResult& r);
// The markdown section of analysis.md: the definition, the attack and its robust accuracy, one row per layer.
std::string tasa_markdown(const TasaResult& r, const std::string& attack_description);

}  // namespace spikegrad::app
