#include "models/trace.h"

namespace spikegrad {

const char* layer_kind_name(LayerRecord::Kind kind) {
  switch (kind) {
    case LayerRecord::input: return "input";
    case LayerRecord::conv: return "conv";
    case LayerRecord::batch_norm: return "batch_norm";
    case LayerRecord::neuron: return "neuron";
    case LayerRecord::max_pool: return "max_pool";
    case LayerRecord::avg_pool: return "avg_pool";
    case LayerRecord::adaptive_avg_pool: return "adaptive_avg_pool";
    case LayerRecord::linear: return "linear";
    case LayerRecord::merge: return "merge";
  }
  return "?";
}

void trace_layer(LayerTrace* trace, LayerRecord::Kind kind, const std::string& name, std::vector<Tensor> inputs,
                 const Tensor& output, const std::string& weight, int kernel, int stride, int padding,
                 const std::string& detail) {
  if (!trace) return;
  LayerRecord r;
  r.kind = kind;
  r.name = name;
  r.detail = detail;
  r.inputs = std::move(inputs);
  r.output = output;
  r.weight = weight;
  r.kernel = kernel;
  r.stride = stride;
  r.padding = padding;
  trace->add(std::move(r));
}

}  // namespace spikegrad
