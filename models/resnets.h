// The residual spiking networks of models/resnets.cpp, as build functions: a test (or a tool) can build the
// same graph with its own GraphBuilder — e.g. with float64 parameters for finite-difference checks — and the
// model registry wraps them in a GraphModel.
#pragma once
#include <string>
#include <vector>

#include "models/graph.h"

namespace spikegrad {

// spiking_resnet18/34/50, sew_resnet18/34/50, resnet19, wrn16_4.
std::vector<std::string> residual_model_names();
// The build function of `name` for `config`; fails for an unknown name or a config the model rejects
// (--stem-pool / --sew-connect values).
GraphModel::BuildFn residual_model_build(const std::string& name, const ModelConfig& config);

}  // namespace spikegrad
