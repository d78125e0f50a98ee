// SNN-RAT's orthogonal retraction; the contract is in models/retraction.h.
#include "models/retraction.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/check.h"
#include "engine/ops.h"

namespace spikegrad {

namespace {

// w·wᵀ·w for w (R,C): the gradient of ¼·Σ(w·wᵀ)² with respect to w.
Tensor gram_times(const Tensor& w) {
  SG_CHECK(grad_enabled(), "orthogonal_retraction: gradients are disabled (called inside a NoGradGuard); the "
                           "retraction takes W·Wᵀ·W through the tape");
  Tape tape;
  Tensor leaf = w.view(w.shape());  // a fresh leaf on the same storage: the parameter's own state is untouched
  leaf.set_requires_grad(true);
  Tensor gram = ops::linear(tape, leaf, leaf, Tensor());  // w·wᵀ (R,R)
  Tensor penalty = ops::scale(tape, ops::sum(tape, ops::mul(tape, gram, gram)), 0.25);
  return tape.grad(penalty, {leaf})[0];
}

// Copies rows `rows` (ascending) of src (R,C) into dst (rows.size(),C), or back (to_src), one copy per run
// of consecutive rows.
void copy_rows(const Tensor& matrix, const Tensor& packed, const std::vector<int64_t>& rows, bool into_packed) {
  size_t i = 0;
  while (i < rows.size()) {
    size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    Tensor m = matrix.slice0(rows[i], rows[j - 1] + 1), p = packed.slice0(int64_t(i), int64_t(j));
    if (into_packed)
      p.copy_from(m);
    else
      m.copy_from(p);
    i = j;
  }
}

}  // namespace

std::vector<int64_t> retraction_rows(int64_t out, Generator& gen, const RetractionRule& rule) {
  SG_CHECK(out >= 1, "retraction_rows: out must be >= 1, got " << out);
  std::vector<int64_t> rows(static_cast<size_t>(out));
  std::iota(rows.begin(), rows.end(), int64_t(0));
  if (out < rule.subset_min_rows) return rows;
  std::vector<uint32_t> key(static_cast<size_t>(out));
  for (auto& k : key) k = gen.next_u32();
  std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) { return key[size_t(a)] < key[size_t(b)]; });
  const int64_t keep = int64_t(double(out) * rule.subset_fraction);  // Python's int(out * 0.3)
  rows.resize(size_t(std::max<int64_t>(keep, 0)));
  std::sort(rows.begin(), rows.end());
  return rows;
}

void retract_matrix(const Tensor& w, double beta) {
  SG_CHECK(w.defined() && w.ndim() == 2 && w.numel() > 0,
           "retract_matrix: w must be a non-empty (rows, cols) matrix, got " << (w.defined() ? shape_str(w.shape()) : "undefined"));
  SG_CHECK(std::isfinite(beta) && beta >= 0, "retract_matrix: beta must be finite and >= 0, got " << beta);
  const Tensor wwtw = gram_times(w);
  NoGradGuard no_grad;
  Tape none;
  const Tensor updated = ops::add(none, ops::scale(none, w, 1.0 + beta), ops::scale(none, wwtw, -beta));
  Tensor target = w;
  target.copy_from(updated);
}

void orthogonal_retraction(Model& model, double beta, Generator& gen, const RetractionRule& rule) {
  SG_CHECK(std::isfinite(beta) && beta > 0, "orthogonal_retraction: beta must be finite and > 0, got " << beta);
  for (const NamedTensor& p : model.parameters()) {
    const Tensor& w = p.tensor;
    if (w.ndim() < 2) continue;  // BN scale/shift, biases
    const Tensor matrix = w.view({w.size(0), -1});
    if (w.ndim() == 2 && w.size(0) >= rule.subset_min_rows) {
      const std::vector<int64_t> rows = retraction_rows(w.size(0), gen, rule);
      if (rows.empty()) continue;
      Tensor packed = Tensor::empty({int64_t(rows.size()), matrix.size(1)}, w.dtype(), w.device());
      copy_rows(matrix, packed, rows, true);
      retract_matrix(packed, beta);
      copy_rows(matrix, packed, rows, false);
    } else {
      retract_matrix(matrix, beta);
    }
  }
  project_convex_weights(model);
}

void project_simplex(std::vector<double>& v) {
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  // The largest k with sorted[k-1] > (Σ_{j<k} sorted[j] − 1)/k; then shift by that mean excess and clip at 0.
  double sum = 0, shift = 0;
  for (size_t k = 1; k <= sorted.size(); ++k) {
    sum += sorted[k - 1];
    const double candidate = (sum - 1.0) / double(k);
    if (sorted[k - 1] > candidate) shift = candidate;
  }
  for (double& x : v) x = std::max(0.0, x - shift);
}

void project_convex_weights(Model& model) {
  const std::string suffix = ".convex.comb";
  for (const auto& p : model.parameters()) {
    const std::string& n = p.name;
    if (n.size() < suffix.size() || n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const Tensor host = p.tensor.to(Device::CPU).to(DType::F64);
    std::vector<double> v = host.to_vector<double>();
    project_simplex(v);
    Tensor target = p.tensor;  // a handle on the parameter's storage
    target.copy_from(Tensor::from_vector(v, p.tensor.shape()).to(p.tensor.dtype()).to(p.tensor.device()));
  }
}

}  // namespace spikegrad
