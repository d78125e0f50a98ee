// The flags of the input encoding and the attack domain (--encoding, --attack-domain) and of the residual models'
// switches (--stem-pool, --sew-connect): their CLI binding and the rules between them and the attack flags.
#pragma once
#include "apps/options.h"

namespace spikegrad::app {

// train: --encoding, --stem-pool, --sew-connect (model settings, recorded in the checkpoint's config).
void add_encoding_options(CLI::App* app, RunConfig& c);
// train, eval, attack: --attack-domain.
void add_attack_domain_option(CLI::App* app, RunConfig& c);

// The values, then the rules (errors name the flags and say what to use instead):
//  - --attack-domain spikes needs --encoding phase|poisson (direct has no spike tensor to attack);
//  - --encoding phase|poisson with --attack-domain pixels: the pixel gradient through the encoder is identically
//    zero, so a gradient attack (--attacks other than gn and square), the obfuscation checks or --adv would
//    report fake robustness: refused;
//  - --encoding phase|poisson with --attack-grad ann-relu|ann-qcfs: ANN mode runs one step of the analog image.
void check_encoding_settings(const RunConfig& c);

// True when the attacks of this run perturb the encoded spikes (--attack-domain spikes).
bool spike_domain(const RunConfig& c);

}  // namespace spikegrad::app
