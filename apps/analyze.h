// `spikegrad analyze --checkpoint X`: the gradient-sparsity diagnostics of /work/shared/spec/gradient_sparsity.md
// (§1.3, §2.1, §2.2) on the first --batches test batches of --eval-batch examples.
//
// Per batch, one forward with the layer trace on (models/trace.h) and one backward of the attack loss (cross
// entropy on the mean-over-T logits, mean over the batch) by BPTT through the model's surrogate, asking the tape
// for d loss / d(every record's inputs and output), d loss / d(each recorded weight) and d loss / d(images). From
// those: per layer the exact-zero fractions (overall and per time step), ||g_in||, s_eff, thresholded counts,
// the weight-gradient zeros with structural zeros apart, firing rates and KDE-MI (the TMI estimator, its defaults)
// between the FIRST neuron layer's rate sequence and each later neuron layer's (one pair per later layer); for the
// input the ratio R against K = 8 seeded random sign vectors with its bounds. Every number is the MEAN OVER THE
// ANALYSED BATCHES of its per-batch value; the accuracies are counts over all analysed examples.
//
// Choices (recorded in the output):
// - BN mode: eval (running statistics, the default) or train (batch statistics, as the released code attacks).
//   Train mode's forwards would update the running statistics; they are restored after every batch, so the
//   model (and the accuracies, always scored with BN eval) never sees them change.
// - Gradients: surrogate BPTT only. --attack-grad rga/ann-* is refused: RGA and ANN mode replace the very
//   gradients whose sparsity is being measured.
// - R is measured in the attack domain (--attack-domain, attacks/attack.h): pixels, the (B,C,H,W) images, or
//   spikes, a phase/Poisson model's encoded (B,T,C,H,W) spikes as the released code attacks. Pixels through a
//   phase/Poisson encoder would have an identically zero gradient: refused by the flag rules
//   (check_encoding_settings), and a zero gradient in any batch gives R = NaN, never 0. The encoded input's
//   gradient (the trace's `input` record) is reported whenever it is on the tape.
// - --tasa adds the TASA of every spiking layer on the same examples, clean and attacked (apps/tasa.h, where
//   the definition is), as tasa.csv and a table in analysis.md.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "apps/gradient_stats.h"
#include "apps/options.h"
#include "attacks/attack.h"
#include "datasets/dataset.h"
#include "models/model.h"

namespace spikegrad::app {

struct AnalyzeOptions {
  int64_t batches = 4;           // --batches: the first N test batches of --eval-batch examples
  std::string bn_mode = "eval";  // --bn-mode eval | train
  std::string out;               // --out: the output folder; empty: <checkpoint's folder>/analysis
  int random_signs = 8;          // K of R's random sign vectors
  bool tasa = false;                // --tasa: also TASA clean vs attacked (apps/tasa.h) -> tasa.csv
  std::string tasa_attack = "pgd";  // --tasa-attack fgsm | pgd | bim, at --eps with --alpha / --steps
};

// analyze's own flags (--checkpoint required, --batches, --eps (default 8/255), --bn-mode, --out, --attack-grad,
// --tasa with --tasa-attack, --alpha, --steps).
void add_analyze_options(CLI::App* app, RunConfig& c, AnalyzeOptions& options);
// Loads the checkpoint and its test split, analyses, prints the report and writes layers.csv, summary.csv and
// analysis.md into the output folder (with --tasa also tasa.csv, and its table in analysis.md).
void run_analyze(const RunConfig& flags, const AnalyzeOptions& options);

// One record of the trace; NaN where a value does not apply (no input, no weight, not a neuron) or where the
// tensor is not on the tape (no gradient reaches it).
struct LayerAnalysis {
  std::string name, kind, weight;
  Shape shape;  // the output's (S·B, ...) of the first batch
  double z_in = 0, z_out = 0, norm_in = 0, s_eff_in = 0;
  std::array<double, kGradientThresholds.size()> above_in{};
  std::vector<double> z_in_t, z_out_t;
  double z_w = 0, z_w_structural = 0, z_w_nonstructural = 0;
  double rate = 0, mi_bits = 0;  // neuron: mean spike of the output; KDE-MI (bits) with the first neuron layer
};

struct InputAnalysis {
  // d loss / d(encoded input): the trace's `input` record output, (S·B, C, H, W)
  double encoded_z = 0, encoded_norm = 0, encoded_s_eff = 0;
  std::vector<double> encoded_z_t;
  std::array<double, kGradientThresholds.size()> encoded_above{};
  // d loss / d(the attacked input): pixels (B,C,H,W) or spikes (B,T,C,H,W), and R in that domain
  double domain_z = 0, domain_norm = 0, domain_s_eff = 0, domain_dim = 0, domain_nonzeros = 0;
  double adversarial_increase = 0, random_increase = 0, ratio = 0, abs_ratio = 0;
  double bound_l0 = 0, bound_s_eff = 0;  // √(2·‖g‖₀), √(D·s_eff) of that gradient
};

struct AnalysisSettings {
  std::string bn_mode = "eval";
  double eps = 8.0 / 255;
  AttackDomain domain = AttackDomain::pixels;
  int random_signs = 8;
  uint64_t seed = 0;  // batch b draws its sign vectors from Generator(seed + b)
  int64_t batches = 4;
  int64_t batch_size = 256;
};

struct Analysis {
  std::vector<LayerAnalysis> layers;
  InputAnalysis input;
  int64_t batches = 0, examples = 0;
  double clean_accuracy = 0, fgsm_accuracy = 0;  // %, BN eval; FGSM = the x + ε·sign g point of R
  double mean_rate = 0;                          // over every neuron element of every analysed batch
  std::vector<std::string> notes;                // what could not be measured, and why
};

// The analysis itself; the model's modes, trace and buffers are as before when it returns (or throws).
Analysis analyze_model(Model& model, const Dataset& test, const AnalysisSettings& settings);

// What the report states besides the numbers.
struct AnalysisContext {
  std::string model, checkpoint, encoding, neuron, surrogate, eps_text;
  AnalysisSettings settings;
};
std::string analysis_markdown(const Analysis& a, const AnalysisContext& context);
std::string layers_csv(const Analysis& a);
std::string summary_csv(const Analysis& a, const AnalysisContext& context);

}  // namespace spikegrad::app
