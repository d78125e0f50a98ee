// `spikegrad train`: trains a model, writes runs/<name>/ (config.json, metrics.csv, best.safetensors,
// last.safetensors, report.md) and resumes exactly with --resume.
#pragma once
#include <cstdint>

#include "apps/options.h"

namespace spikegrad::app {

// Returns the run folder. Throws spikegrad::Error on bad input and on a non-finite loss (after which
// last.safetensors is the last good checkpoint).
// The run folder is locked for the call's life (a second run into it is an error naming the holder's
// pid); --name must be one folder name inside --runs-dir; every file is written through the checked
// writers of apps/run_folder.h, so a failed write is an error naming the file.
std::string run_train(RunConfig config);

// Tests only: called inside each epoch's commit, after the metrics row is written and before
// last.safetensors is replaced (a throw there simulates a kill at that point).
extern void (*train_commit_hook)(const char* point, int64_t epoch);

}  // namespace spikegrad::app
