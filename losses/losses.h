// Training losses on a model's output (reference.md §1.4, §4.1-4.2): a base term -- cross-entropy on the
// mean over T of the logits, or TET -- plus the optional TMI term lambda * I(X;Z) (KDE mutual information
// between two taps' firing rates) and the optional output-entropy regulariser (the paper's -H baseline).
// Everything is composed from public ops, so gradients reach the logits and, through the taps, the network.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/ops.h"
#include "engine/ops_hist_mi.h"
#include "models/taps.h"

namespace spikegrad {

class MineEstimator;  // losses/mine.h

enum class LossBase { ce, tet };

// How I(X;Z) is estimated (README "MI estimators"): kde = TMI's kernel density estimate (the default),
// hist = the AIMIE-style plug-in histogram (ops::hist_mutual_information), mine = the MINE baseline
// (losses/mine.h).
enum class MiEstimator { kde, hist, mine };
const char* mi_estimator_name(MiEstimator e);  // "kde" | "hist" | "mine"
// Which spiking layers the MI term reads when mi_z is not named: deep = TMI's Z, the last convolutional
// spiking layer; shallow = the paper's Z' ablation, the second spiking-layer tap in layer order (the first
// spiking layer after X's). An explicit mi_z with shallow is an error (two answers to one question).
enum class MiTaps { deep, shallow };

struct LossConfig {
  LossBase base = LossBase::ce;
  // TET: (1 - tet_lambda) * mean_t CE(logits_t, y) + tet_lambda * mean((logits - tet_phi)^2).
  double tet_lambda = 0.05;
  double tet_phi = 1.0;
  // TMI: + mi_lambda * mean_b MI_b(rate(X), rate(Z)); 0 turns it off (and MI is then not computed unless
  // report_mi asks for its value, which is computed without recording on the tape).
  double mi_lambda = 0.05;
  std::string mi_x;  // tap names; empty: the model's defaults (first spiking layer / last conv spiking layer)
  std::string mi_z;
  ops::RateReduce mi_reduce = ops::RateReduce::Mean;  // Mean as the reference; ChannelMax for the ablation
  ops::KdeMiOptions mi;                               // rates are scaled to [0, mi.bins - 1] (255 by default)
  MiEstimator mi_estimator = MiEstimator::kde;
  MiTaps mi_taps = MiTaps::deep;
  ops::HistMiOptions mi_hist;  // hist: rates scaled to [0, mi_hist.bins - 1]
  // mine: the trainer's statistics network and the run generator its per-batch shuffles draw from (neither
  // owned; both required with MiEstimator::mine). The MI term is then its DV estimate in bits on the taps'
  // spatial features (losses/mine.h); mi_reduce does not apply.
  MineEstimator* mine = nullptr;
  Generator* mine_permutations = nullptr;
  bool report_mi = false;
  // Output entropy: + entropy_sign * entropy_weight * mean_b H(softmax(mean_t logits_b)); 0 turns it off.
  // entropy_sign = -1 rewards high entropy (the -H baseline).
  double entropy_weight = 0.0;
  double entropy_sign = -1.0;
};

struct LossParts {
  Tensor total;           // shape (): the scalar to run backward on
  std::string base_name;  // "ce" | "tet"
  Tensor base;            // the base term, shape ()
  Tensor mi;              // batch-mean MI in bits, unweighted; undefined when not computed
  Tensor entropy;         // batch-mean output entropy in nats, unweighted; undefined when off
  // ("loss", total), (base_name, base), ("mi_bits", mi), ("entropy", entropy): the defined ones, in this
  // order, the same for every step of a run with one config.
  std::vector<std::pair<std::string, Tensor>> named() const;
};

// logits (T,B,K) float, labels (B) int32, taps from the same forward.
// The taps compute_loss reads (for Model::forward's keep argument): X and Z when MI is on or reported,
// none otherwise.
TapKeep taps_needed(const LossConfig& cfg);
LossParts compute_loss(Tape& tape, const Tensor& logits, const Tensor& labels, const Taps& taps, const LossConfig& cfg);

// The pieces, usable on their own.
Tensor ce_mean_logits(Tape& tape, const Tensor& logits, const Tensor& labels);
Tensor tet_loss(Tape& tape, const Tensor& logits, const Tensor& labels, double lambda, double phi);
Tensor output_entropy(Tape& tape, const Tensor& logits);  // mean_b H(softmax(mean_t logits)), nats
// The (X, Z) tap names cfg's MI term reads: mi_x / mi_z when given, else the model's defaults, with Z the
// second tap under MiTaps::shallow (an error naming the taps when the model has fewer than 2).
std::pair<std::string, std::string> mi_tap_names(const Taps& taps, const LossConfig& cfg);
// Batch-mean I(X;Z) in bits with cfg's taps, reduction and estimator: the MI term of compute_loss.
Tensor mi_term(Tape& tape, const Taps& taps, const LossConfig& cfg);
// Batch-mean KDE MI between two taps (names resolved as in LossConfig).
Tensor tap_mutual_information(Tape& tape, const Taps& taps, const std::string& x_name, const std::string& z_name,
                              ops::RateReduce reduce = ops::RateReduce::Mean, const ops::KdeMiOptions& opt = {});

}  // namespace spikegrad
