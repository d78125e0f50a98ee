// A layer-by-layer record of one forward, for diagnostics (`spikegrad analyze`): every module's input and
// output tensor as it ran, still on the tape, so the analyzer can ask the tape for d loss / d(input) and
// d loss / d(output) of each module in one backward (Tape::grad with all of them as `wrt`).
//
// A model records into a LayerTrace only when one is set (Model::set_trace); training never sets one. While a
// trace is set, models run BN and the neuron as separate ops (not the fused BN + neuron op, whose values and
// gradients are the same, tested), so that the BN output exists as a tensor of its own.
//
// Names are the PyTorch module paths of the layer ("layer1.0.conv1", "features.3.bn", "layer2.0.sn2"), the
// names the analyzer reports and the prefixes of the layer's parameters. Tensors are time-major with time
// and batch merged, (S·B, ...), S = the forward's steps (T, or 1 in ANN mode).
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace spikegrad {

struct LayerRecord {
  enum Kind { input, conv, batch_norm, neuron, max_pool, avg_pool, adaptive_avg_pool, linear, merge };
  Kind kind = input;
  std::string name;    // module path; "input" for the encoded network input
  std::string detail;  // merge: "add" | "and" | "iand" | "convex"; empty otherwise
  std::vector<Tensor> inputs;  // one per operand (a merge has two); the encoded input record has none
  Tensor output;
  std::string weight;  // conv / linear / batch_norm: the weight parameter's name ("layer1.0.conv1.weight")
  // conv and pools: the geometry, for structural zeros (weight taps that only ever see padding)
  int kernel = 0, stride = 1, padding = 0;
};

class LayerTrace {
 public:
  void add(LayerRecord record) { records_.push_back(std::move(record)); }
  const std::vector<LayerRecord>& records() const { return records_; }
  void clear() { records_.clear(); }

 private:
  std::vector<LayerRecord> records_;
};

const char* layer_kind_name(LayerRecord::Kind kind);

// Appends a record to `trace`; does nothing when trace is null (the forward of every training step).
void trace_layer(LayerTrace* trace, LayerRecord::Kind kind, const std::string& name, std::vector<Tensor> inputs,
                 const Tensor& output, const std::string& weight = "", int kernel = 0, int stride = 1,
                 int padding = 0, const std::string& detail = "");

}  // namespace spikegrad
