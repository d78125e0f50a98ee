// Public ops of the neuron family (declared here to keep engine/ops.h readable; included by it).
//
// A spiking layer is ONE op over all time steps: x (T,B,...) time-major input current -> spikes of the same
// shape and dtype (0/1, or S(u) in smooth mode). BPTT runs inside the op (kernels/neurons/multistep.h), so a
// layer puts one node on the tape, not T. Every call starts from v = 0: no state survives between calls.
// Backward modes, chosen per call: full BPTT with a surrogate, or RGA (reference.md §5.3) for attacks.
// Memory kept for backward: BPTT 4 B per neuron per step (h), RGA 4 B per neuron (the time-mean of x).
// SpikeOptions and its enums: engine/spike_options.h. Running a neuron struct of one's own (spike_with):
// engine/ops_neuron_ext.h, the extension header, which brings in the kernels' neuron template.
#pragma once
#include <cstdint>

#include "engine/batch_norm_options.h"
#include "engine/spike_options.h"
#include "engine/tape.h"
#include "engine/tensor.h"

namespace spikegrad::ops {

// LIF or IF over x (T,B,...) float.
Tensor spike(Tape& tape, const Tensor& x, const SpikeOptions& opt = {});
// PLIF: LIF with a learnable decay sig(decay_logit); decay_logit is one element (shape () or (1)), like x
// (device, dtype), and gets a gradient in BPTT mode (none in RGA mode, whose backward has no decay in it).
// opt.neuron must be lif; opt.decay is not used; RGA needs opt.rga_tau set explicitly.
Tensor plif_spike(Tape& tape, const Tensor& x, const Tensor& decay_logit, const SpikeOptions& opt = {});

// ---- fused batch norm + LIF/IF ---------------------------------------------------------------------------
// batch_norm_spike(x, ...) computes spike(reshape(batch_norm(x, ...), {T, -1}), opt) reshaped to x's shape —
// a spiking layer's BN and neuron as ONE op: x is the conv output (T·B, C, H, W) or (T·B, C), time-major
// (T = time_steps must divide x.size(0)); opt.neuron is lif or if. Any other neuron struct: the same op as
// batch_norm_spike_with (engine/ops_neuron_fused.h), which every registered neuron's fused layer runs
// (engine/neuron_registry.h).
// Forward: the BN statistics (and the running-buffer update), then one kernel that normalises on the fly and
// runs the neuron, so the normalised tensor is never written or read (8 B per neuron per step less traffic).
// Saved for backward: x (the conv output, which the unfused BN keeps anyway) and 2·C statistics — the neuron's
// records h are NOT kept. Backward recomputes each neuron's records from x with the same forward step
// (bit-identical: same code, same inputs) into a small per-chunk (CPU) or per-thread (CUDA, T <= 16)
// buffer, runs the neuron's backward from it, then BN's backward. That saves 4 B per neuron per step for the
// whole time between forward and backward, and the records never travel through memory; the price is the
// neuron's forward arithmetic once more in backward. (RGA mode keeps its time-mean of the BN output as the
// unfused op does, and recomputes nothing.)
Tensor batch_norm_spike(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& bn,
                        int64_t time_steps, const SpikeOptions& opt = {});

}  // namespace spikegrad::ops
