// Input encoders (ModelConfig::encoding) and what they mean for attacks.
//
//   direct   the normalised analog image at every step (reference.md; the default, unchanged)
//   phase    bit-plane coding of the 8-bit pixel round(x·255), most significant bit first, no normalisation
//            (gradient_sparsity.md §3; kernels/encoding.h has the exact rule)
//   poisson  rate coding: a spike where a uniform draw is < x. The draws are Philox numbers under a key hashed
//            from the example's own pixels and poisson_seed(config) = the model's init_seed (--seed): the same
//            example gives the same spikes on every forward, on CPU and CUDA, in any batch — reproducible, and
//            deterministic inside an attack's clean pass (no EOT needed for a fixed input).
//
// Phase and Poisson spikes are piecewise constant in the pixels: their pixel gradient is 0 almost everywhere, so a
// gradient attack in pixel space sees nothing and would report fake robustness. Such models are attacked in
// the spike domain instead (--attack-domain spikes, gradient_sparsity.md §4.2): encode_spike_frames gives the
// (B,T,C,H,W) spikes, the attack perturbs them inside [0,1] and the ε-ball, and Model::forward takes a 5-D
// (B,T,C,H,W) input of such a model as already encoded (no normalisation, time moved to the front).
#pragma once
#include <string>
#include <vector>

#include "models/model.h"

namespace spikegrad {

// "direct" | "phase" | "poisson"; parse errors name --encoding and list the values.
const char* encoding_name(InputEncoding encoding);
InputEncoding parse_encoding(const std::string& name);
std::vector<std::string> encoding_names();

// Conv2dOptions::input_levels of the encoded input the first layer sees: 1 for phase and poisson (exactly 0/1
// spikes), 0 for direct (an analog image). Holds for images encoded by the model; a spike-domain attack's
// perturbed spike frames are analog in [0,1] (levels 0).
int encoded_input_levels(const ModelConfig& config);

// The Poisson encoder's seed: the model's init_seed, so a run's --seed fixes it (and a checkpoint carries it).
uint64_t poisson_seed(const ModelConfig& config);

// (B,C,H,W) images in [0,1] -> (T,B,C,H,W) time-major 0/1 spikes of a phase or Poisson encoder (an error for
// direct, which Model::forward does itself). No gradient reaches the images.
Tensor encode_spikes(const ModelConfig& config, const Tensor& images, int64_t steps);

// The spike-domain attack's input: (B,T,C,H,W) batch-major spikes of `model`'s encoder, T = time_steps, not
// requiring grad, on the images' device. Model::forward of the same model accepts it (and any (B,T,C,H,W) in [0,1]).
// Errors name --attack-domain for a direct-encoding or event-frame model.
Tensor encode_spike_frames(const Model& model, const Tensor& images);

}  // namespace spikegrad
