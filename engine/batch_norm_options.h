// The settings of a batch-norm op (ops::batch_norm in engine/ops.h, and the fused BN + neuron ops of
// engine/ops_neuron.h), in a header of their own so that the neuron header needs nothing else from ops.h.
#pragma once

namespace spikegrad::ops {

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
};

}  // namespace spikegrad::ops
