// SNN-RAT's orthogonal ("Parseval") retraction (reference.md §4.4), applied after every optimizer step:
//
//   W ← (1+β)·W − β·W·Wᵀ·W     for every conv and linear weight, W viewed as (out, in·k·k)
//
// which is one gradient step of size β on the orthogonality penalty ¼‖W·Wᵀ − I‖²_F (its gradient is
// W·Wᵀ·W − W). The product W·Wᵀ·W is computed with the engine's own ops as that gradient — the gradient
// of ¼·Σ(W·Wᵀ)² by the tape — so it runs on the CPU and on CUDA with the same code and no new kernel
// (ops::linear gives W·Wᵀ, its backward gives (W·Wᵀ)·W; three GEMMs instead of two).
//
// Which weights: every parameter of the model with >= 2 dimensions, in the model's parameter order — conv
// weights (out,in,k,k) and linear weights (out,in); BN scales and biases are 1-D and left alone.
// Sub-matrix rule (as the released code): a linear weight with out >= 200 rows is retracted on a random
// subset of ⌊0.3·out⌋ rows only (W_S ← (1+β)W_S − β·W_S·W_Sᵀ·W_S, the other rows unchanged); conv
// weights and linear weights with out < 200 on all rows.
// Random draws: the subset of a linear layer with out >= 200 rows takes exactly `out` counters of the
// generator (one uint32 key per row, next_u32); the rows with the ⌊0.3·out⌋ smallest keys (ties: lower
// row first) are chosen. Nothing else draws, so a run's generator offset after a step is a pure function of
// the step count and --resume stays exact.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "models/model.h"

namespace spikegrad {

struct RetractionRule {
  int64_t subset_min_rows = 200;  // linear weights with at least this many rows use a row subset
  double subset_fraction = 0.3;   // of ⌊fraction·out⌋ rows
};

// The rows a linear weight of `out` rows is retracted on, ascending (all rows when out < subset_min_rows,
// drawing nothing).
std::vector<int64_t> retraction_rows(int64_t out, Generator& gen, const RetractionRule& rule = {});

// In place on w (rows, cols), float32 or float64, any device: w ← (1+β)w − β·w·wᵀ·w. Needs grad mode on
// (the product is taken through the tape); records nothing on the caller's tapes.
void retract_matrix(const Tensor& w, double beta);

// The whole model, as described above, then project_convex_weights (the released code's convex_constraint
// after the retraction). beta > 0.
void orthogonal_retraction(Model& model, double beta, Generator& gen, const RetractionRule& rule = {});

// Every parameter named "*.convex.comb" (the WRN residual mixing, models/graph.h Merge::convex) replaced by its
// Euclidean projection onto the probability simplex {c >= 0, Σc = 1} (sort, shift by the mean excess of the
// largest entries, clip at 0: the released code's convex_constraint). Without --retraction the mixing
// weights train unconstrained, as they do in the released code without its "reg" mode.
void project_convex_weights(Model& model);
void project_simplex(std::vector<double>& v);  // in place

}  // namespace spikegrad
