// Turning a RunConfig into the objects of a run: device, datasets (train / validation / test), model,
// optimizer and schedule. Shared by train, eval and attack so all three build the same thing.
#pragma once
#include <memory>

#include "apps/options.h"
#include "datasets/dataset.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "models/model.h"

namespace spikegrad::app {

Device resolve_device(const std::string& name);  // "cuda" without a device is an error naming --device

struct Data {
  Dataset train, validation, test;
};
// The training split minus a seeded validation hold-out (then --train-subset), and the test split
// (then --test-subset).
Data load_data(const RunConfig& c, bool need_train);

std::unique_ptr<Model> build_model(const RunConfig& c, const Dataset& shape_source, Device device);
std::unique_ptr<Optimizer> build_optimizer(const RunConfig& c, const Model& model);
std::unique_ptr<LrSchedule> build_schedule(const RunConfig& c);  // nullptr for "none"

}  // namespace spikegrad::app
