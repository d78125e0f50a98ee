// The flags of the I(X;Z) term's estimator and its ablations (--mi-estimator kde|hist|mine, --mi-hist-bins,
// --mine-*, --mi-reduce, --mi-taps): their CLI binding and their checks (losses/losses.h, losses/mine.h).
#pragma once
#include "apps/options.h"

namespace spikegrad::app {

// train: the estimator, its settings and the ablation switches (recorded in the checkpoint's config).
void add_mi_estimator_options(CLI::App* app, RunConfig& c);
// The values and the rules between them (config files reach here without the CLI's checks).
void check_mi_settings(const RunConfig& c);

}  // namespace spikegrad::app
