// Taps: the named intermediate spike tensors a model's forward exposes (TMI's X and Z, firing-rate
// reports). Each tap is a spike tensor (T,B,...) exactly as the layer produced it, still on the tape, so
// a loss built on it sends gradients back into the network. Insertion order is layer order.
#pragma once
#include <string>
#include <vector>

#include "engine/check.h"
#include "engine/named_tensor.h"

namespace spikegrad {

class Taps {
 public:
  void add(const std::string& name, const Tensor& spikes) {
    SG_CHECK(!contains(name), "taps: duplicate tap name '" << name << "'");
    entries_.push_back({name, spikes});
  }
  bool contains(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.name == name) return true;
    return false;
  }
  // The tap called `name`; the error lists the available names.
  const Tensor& get(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.name == name) return e.tensor;
    std::string known;
    for (const auto& e : entries_) known += (known.empty() ? "" : ", ") + e.name;
    SG_FAIL("taps: no tap named '" << name << "'; this model has [" << known << "]");
  }
  const NamedTensors& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  // reference.md §1.1 defaults: X = the first spiking layer, Z = the last convolutional spiking layer.
  // Models name those two taps; these are the names they register them under.
  std::string first_name() const { return default_x_; }
  std::string last_conv_name() const { return default_z_; }
  void set_defaults(const std::string& x_name, const std::string& z_name) {
    default_x_ = x_name;
    default_z_ = z_name;
  }

 private:
  NamedTensors entries_;
  std::string default_x_, default_z_;
};

}  // namespace spikegrad
