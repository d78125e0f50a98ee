// Named tensors: how parameters, buffers and optimizer state are listed, with PyTorch-style names
// ("features.0.weight", "features.1.running_mean", ...) so checkpoints map onto PyTorch modules.
#pragma once
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace spikegrad {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};
using NamedTensors = std::vector<NamedTensor>;

}  // namespace spikegrad
