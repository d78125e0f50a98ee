// Taps: the named intermediate spike tensors a model's forward exposes (TMI's X and Z, firing-rate
// reports). Each tap is a spike tensor (T,B,...) exactly as the layer produced it, still on the tape, so
// a loss built on it sends gradients back into the network. Insertion order is layer order.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/check.h"
#include "engine/named_tensor.h"

namespace spikegrad {

// Which taps a forward keeps referenced (each kept tap holds its layer's spikes alive until the result is
// destroyed, through the whole backward pass — for VGGSNN at B = 64, T = 4 that is 400 MiB of float spikes
// if all are kept). all: every tap (reports, evaluation). mi(x, z): only TMI's two, by name, "" meaning the
// default (first / last convolutional spiking layer). none: no tensor kept (names and shapes still listed).
struct TapKeep {
  bool all = true;
  bool x = false, z = false;  // when !all: keep X and/or Z
  std::string x_name, z_name;
  bool z_second = false;  // when !all: keep the second tap listed (the shallow Z')
  static TapKeep everything() { return {}; }
  static TapKeep mi(std::string x_name = "", std::string z_name = "") {
    return {false, true, true, std::move(x_name), std::move(z_name), false};
  }
  static TapKeep none() { return {false, false, false, "", "", false}; }
  // TMI's shallow-Z' ablation (losses/losses.h MiTaps::shallow): X as in mi(), Z = the second tap.
  static TapKeep mi_shallow(std::string x_name = "") {
    return {false, true, false, std::move(x_name), "", true};
  }
};

class Taps {
 public:
  void keep(TapKeep k) { keep_ = std::move(k); }

  // Called by models in layer order. Taps a TapKeep does not ask for are listed (name and shape) but their
  // tensor is not referenced. With z = default, the latest tap is held until the next one arrives.
  void add(const std::string& name, const Tensor& spikes) {
    SG_CHECK(!contains(name), "taps: duplicate tap name '" << name << "'");
    const bool first = listed_.empty();
    listed_.push_back({name, spikes.shape()});
    if (!keep_.all && keep_.z && keep_.z_name.empty()) drop(pending_last_);  // superseded as "last conv"
    pending_last_.clear();
    bool wanted = keep_.all || (keep_.x && (keep_.x_name.empty() ? first : name == keep_.x_name)) ||
                  (keep_.z && !keep_.z_name.empty() && name == keep_.z_name) ||
                  (keep_.z_second && listed_.size() == 2);
    if (!keep_.all && keep_.z && keep_.z_name.empty()) {
      if (!wanted) pending_last_ = name;
      wanted = true;
    }
    if (wanted) entries_.push_back({name, spikes});
  }
  bool contains(const std::string& name) const {
    for (const auto& e : listed_)
      if (e.first == name) return true;
    return false;
  }
  // The tap called `name`; the error lists the available names, or says it was not kept.
  const Tensor& get(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.name == name) return e.tensor;
    std::string known;
    for (const auto& e : listed_) known += (known.empty() ? "" : ", ") + e.first;
    SG_CHECK(!contains(name), "taps: tap '" << name << "' exists but this forward did not keep it (TapKeep); "
                                            << "pass TapKeep::everything() or name it in TapKeep::mi");
    SG_FAIL("taps: no tap named '" << name << "'; this model has [" << known << "]");
  }
  // The shape of any listed tap, kept or not.
  const Shape& shape(const std::string& name) const {
    for (const auto& e : listed_)
      if (e.first == name) return e.second;
    SG_FAIL("taps: no tap named '" << name << "'");
  }
  // The kept taps, in layer order.
  const NamedTensors& entries() const { return entries_; }
  // Every tap's name and shape, kept or not, in layer order.
  const std::vector<std::pair<std::string, Shape>>& listed() const { return listed_; }
  bool empty() const { return listed_.empty(); }
  // reference.md §1.1 defaults: X = the first spiking layer, Z = the last convolutional spiking layer.
  // Models name those two taps; these are the names they register them under.
  std::string first_name() const { return default_x_; }
  std::string last_conv_name() const { return default_z_; }
  void set_defaults(const std::string& x_name, const std::string& z_name) {
    default_x_ = x_name;
    default_z_ = z_name;
  }

 private:
  void drop(const std::string& name) {
    if (name.empty()) return;
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->name == name) {
        entries_.erase(it);
        return;
      }
  }

  TapKeep keep_;
  NamedTensors entries_;
  std::vector<std::pair<std::string, Shape>> listed_;
  std::string pending_last_;  // kept only as the default Z candidate
  std::string default_x_, default_z_;
};

}  // namespace spikegrad
