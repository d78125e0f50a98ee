// What the neuron registry (engine/neuron_registry.h) needs to know about a neuron struct beyond its math:
// the name --neuron selects it by, a help line, its own options and its learnable scalars. A registered neuron
// provides it as `static auto info()` returning NeuronInfo<S>, where S is the struct whose fields the options
// set (the neuron itself, or the charge of a one-state neuron, kernels/neurons/one_state.h).
//
// Options are double fields of S: --neuron-opt key=value writes the field; the default is the field's
// initial value in S{} (so it is written once), and a value outside `range` is an error naming the neuron,
// the key and the range. Learnable scalars (the neuron's kParams): one model parameter per spiking layer,
// named "<layer>.neuron.<param_name>" (SpikingJelly's ParametricLIFNode keeps its w as "<module>.w"), shape
// () for one scalar as SpikingJelly stores it, (kParams) for more; initial_params gives their values for the
// configured neuron (e.g. PLIF's w = -log(init_tau - 1)).
// Host-only code (std types): compiled in the registration's C++ pass and parsed, unused, by nvcc.
#pragma once
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace spikegrad::neurons {

// The values an option accepts: finite, between lo and hi, each end closed, open or unbounded (infinite).
struct OptionRange {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;

  static OptionRange any() { return {}; }
  static OptionRange at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
  static OptionRange above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, false}; }
  static OptionRange between(double lo, double hi) { return {lo, hi, false, false}; }

  bool contains(double v) const {
    return std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
  // "[0, 1]", "> 1", ">= 0", "any finite value": for help lines and errors.
  std::string describe() const {
    std::ostringstream os;
    const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
    if (has_lo && has_hi) os << (lo_open ? "(" : "[") << lo << ", " << hi << (hi_open ? ")" : "]");
    else if (has_lo) os << (lo_open ? "> " : ">= ") << lo;
    else if (has_hi) os << (hi_open ? "< " : "<= ") << hi;
    else os << "any finite value";
    return os.str();
  }
};

// One option of a neuron: --neuron-opt key=value sets S::*field.
template <class S> struct OptionField {
  using Member = double S::*;  // an alias: nvcc's host pass warns on the member-pointer declarator it rewrites
  std::string key;
  Member field;
  OptionRange range;
  std::string help;
};

template <class S> struct NeuronInfo {
  std::string name;  // what --neuron and configs name it by: lower case letters, digits and '_'
  std::string help;  // one line for --help
  std::vector<OptionField<S>> options = {};
  std::string param_name = {};                                       // empty: no learnable scalars
  std::function<std::vector<double>(const S&)> initial_params = {};  // kParams values
};

}  // namespace spikegrad::neurons
