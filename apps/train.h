// `spikegrad train`: trains a model, writes runs/<name>/ (config.json, metrics.csv, best.safetensors,
// last.safetensors, report.md) and resumes exactly with --resume.
#pragma once
#include "apps/options.h"

namespace spikegrad::app {

// Returns the run folder. Throws spikegrad::Error on bad input and on a non-finite loss (after which
// last.safetensors is the last good checkpoint).
std::string run_train(RunConfig config);

}  // namespace spikegrad::app
