// Evaluation shared by train (the final report), `spikegrad eval` and `spikegrad attack`: clean accuracy,
// the attack table (robust accuracy and attack success rate, each named), temporal statistics (mean
// MI(X;Z) and per-layer firing rates), per-example logits and adversarial inputs.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "apps/attack_sweep.h"
#include "apps/checkpoint.h"
#include "apps/options.h"
#include "attacks/attack.h"
#include "attacks/evaluate.h"
#include "datasets/dataset.h"
#include "models/model.h"

namespace spikegrad::app {

class InterruptGuard;

// How a pass over a dataset shows itself and stops: a progress bar (apps/progress.h) labelled `label` when
// `progress` is on (eval/attack's --progress, the final report), and, with `interrupts` given, a SIGINT or
// SIGTERM it received ends the pass after the batch in flight by throwing Interrupted("interrupted during
// <label>"). Without it the pass runs to its end (the trainer's per-epoch scoring: the epoch commits first).
struct PassOptions {
  std::string label;
  bool progress = false;
  const InterruptGuard* interrupts = nullptr;
};

// Correct predictions (argmax of mean_t logits) in a batch; mean_logits (B,K), labels (B).
int64_t count_correct(const Tensor& mean_logits, const Tensor& labels);
// How many of the (B) int32 predictions equal the labels. Both are copied to the host if they are not
// there: pass the batch's CPU labels rather than their uploaded copy, which would be copied back.
int64_t count_matches(const Tensor& predictions, const Tensor& labels);
// Percent correct over a dataset, model in eval mode (its mode is restored).
double clean_accuracy(Model& model, const Dataset& data, int64_t batch, const PassOptions& pass = {});

struct AttackRow {
  std::string attack;    // "fgsm", "pgd", …, "autoattack", and "autoattack: after apgd-ce" for its stages
  std::string settings;  // human-readable parameters
  double eps = 0;
  RobustResult result;   // robust accuracy and attack success rate, each named (attacks/evaluate.h)
  std::vector<std::string> notes;  // diagnostics printed under the table (AutoAttack's ties, skipped stages)
};

// Attacks the first `subset` examples of `data` with every attack; adv_out (optional) receives the
// adversarial inputs of each attack (CPU, (N,C,H,W)), in the order of `attacks`. pass: one progress bar over
// the whole sweep, every batch of every attack (label "attack" when empty). AutoAttack adds a row per stage.
// With `source`, every attack is crafted on the source model and scored on `model` (a transfer attack; the
// settings column says so).
std::vector<AttackRow> attack_table(Model& model, const Dataset& data, const std::vector<SweepAttack>& attacks,
                                    int64_t subset, int64_t batch, uint64_t seed, std::vector<Tensor>* adv_out,
                                    const PassOptions& pass = {}, Model* source = nullptr);

// The splits a run trains on and is scored on must hold images of one shape (C,H,W) and one class count:
// a test split of another size used to fail only when the first epoch was scored. `context` names the data
// (e.g. "fashion-mnist in /path"). An empty split (e.g. --val-size 0) is skipped.
void check_splits_match(const Dataset& train, const Dataset& validation, const Dataset& test, const std::string& context);


struct TemporalStats {
  double mean_mi = 0;                                        // bits, default taps (X, Z)
  std::vector<std::pair<std::string, double>> firing_rates;  // per tap, mean over examples and T
};
TemporalStats temporal_stats(Model& model, const Dataset& data, int64_t batch, const RunConfig& c,
                             const PassOptions& pass = {});

// Mean logits (N,K) of every example, for --save-logits.
Tensor all_mean_logits(Model& model, const Dataset& data, int64_t batch, const PassOptions& pass = {});

std::string format_table(const std::vector<AttackRow>& rows);
// The text of report.md: clean accuracy on the whole test split, the attack table on the attack subset,
// temporal statistics, and how the best epoch was selected. The trainer writes it into the run folder
// through its checked writer and prints it. Each pass shows progress when c.progress; `interrupts` (the
// trainer's guard) makes a signal end the report after the batch in flight (Interrupted).
// results_csv (optional) receives the report's numbers in machine-readable form: results_csv_text's rows (the
// run folder's results.csv, which scripts/reproduce.sh reads).
std::string report_text(Model& model, const RunConfig& c, const Dataset& test, const TrainProgress& best,
                        const InterruptGuard* interrupts = nullptr, std::string* results_csv = nullptr);

// results.csv: a header, then one row for the clean accuracy (attack "clean", on `clean_examples` test
// examples) and one per attack row of the report's table:
//   attack,eps,examples,accuracy_pct,attack_success_pct,zero_input_gradient_pct,mean_kde_mi_bits
// eps as the table writes it ("4/255"); mean_kde_mi_bits (the test split's mean KDE MI(X;Z)) on the clean row
// only. No field holds a comma, so `awk -F,` reads it.
std::string results_csv_text(double clean_pct, int64_t clean_examples, const std::vector<AttackRow>& rows,
                             double mean_kde_mi_bits);

}  // namespace spikegrad::app
