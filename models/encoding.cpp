#include "models/encoding.h"

#include "engine/ops_encoding.h"

namespace spikegrad {

namespace {
constexpr struct {
  InputEncoding encoding;
  const char* name;
} kEncodingNames[] = {{InputEncoding::direct, "direct"}, {InputEncoding::phase, "phase"}, {InputEncoding::poisson, "poisson"}};
}  // namespace

const char* encoding_name(InputEncoding encoding) {
  for (const auto& e : kEncodingNames)
    if (e.encoding == encoding) return e.name;
  SG_FAIL("encoding_name: unknown InputEncoding value " << int(encoding));
}

std::vector<std::string> encoding_names() {
  std::vector<std::string> names;
  for (const auto& e : kEncodingNames) names.push_back(e.name);
  return names;
}

InputEncoding parse_encoding(const std::string& name) {
  for (const auto& e : kEncodingNames)
    if (name == e.name) return e.encoding;
  SG_FAIL("--encoding: unknown encoding '" << name << "'; valid: direct, phase, poisson");
}

int encoded_input_levels(const ModelConfig& config) { return config.encoding == InputEncoding::direct ? 0 : 1; }

uint64_t poisson_seed(const ModelConfig& config) { return config.init_seed; }

Tensor encode_spikes(const ModelConfig& config, const Tensor& images, int64_t steps) {
  switch (config.encoding) {
    case InputEncoding::phase:
      return ops::phase_encode(images, steps);
    case InputEncoding::poisson:
      return ops::poisson_encode(images, steps, poisson_seed(config));
    case InputEncoding::direct:
      break;
  }
  SG_FAIL("encode_spikes: the " << encoding_name(config.encoding)
                                << " encoding has no spike encoder (direct repeats the normalised image inside the model)");
}

Tensor encode_spike_frames(const Model& model, const Tensor& images) {
  const ModelConfig& c = model.config();
  SG_CHECK(!c.frame_input, model.name() << ": --attack-domain spikes: this model reads event frames, which are its "
                                           "input already; attack them with --attack-domain pixels");
  SG_CHECK(c.encoding != InputEncoding::direct,
           model.name() << ": --attack-domain spikes needs a spike encoder (--encoding phase or poisson); with "
                           "--encoding direct the network's input is the analog image: use --attack-domain pixels");
  NoGradGuard no_grad;
  Tape tape;
  const Tensor spikes = encode_spikes(c, images, c.time_steps);  // (T,B,C,H,W)
  return ops::swap_leading_dims(tape, spikes);                    // (B,T,C,H,W), as frames travel
}

}  // namespace spikegrad
