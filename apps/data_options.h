// The dataset flags beyond --dataset and --data-dir: how the JPEG datasets are cropped and decoded, how CIFAR10-DVS
// is turned into frames and split, and how many threads the loader decodes with; and their translation into the
// readers' options (datasets/registry.h DatasetOptions).
//
// What a flag changes decides where it lives: flags that change the examples the model sees (sizes, recipe,
// split, frames) are train-only and recorded in the run's config, so eval/attack and --resume read them from the
// checkpoint; flags that only say where the data is or how fast it is read (--decode-threads, --dvs-cache-dir,
// --val-labels) are accepted by every command and may change on --resume.
#pragma once
#include <CLI/CLI.hpp>

#include "apps/options.h"
#include "datasets/registry.h"

namespace spikegrad::app {

void add_dataset_options(CLI::App* app, RunConfig& c);        // train
void add_data_location_options(CLI::App* app, RunConfig& c);  // every command

// Range and choice checks that need no data (called by validate()); errors name the flag.
void check_dataset_settings(const RunConfig& c);

DatasetOptions dataset_options(const RunConfig& c);

}  // namespace spikegrad::app
