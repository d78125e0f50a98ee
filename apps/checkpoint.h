// Training checkpoints: one safetensors file holding the model's parameters and buffers under their
// PyTorch-style names (so `torch.nn.Module.load_state_dict` takes them after dropping the
// "optimizer." entries), the optimizer state under "optimizer.<param>.<slot>", and the run's JSON
// metadata ("spikegrad" key): config, completed epochs, best epoch, optimizer scalars, loader and RNG
// state — everything --resume needs to continue exactly. Written atomically by save_safetensors.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "apps/options.h"
#include "datasets/loader.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "models/model.h"

namespace spikegrad::app {

struct TrainProgress {
  int64_t epochs_done = 0;
  int64_t best_epoch = -1;  // 1-based epoch of the best checkpoint; -1: none yet
  double best_accuracy = -1;
  uint64_t generator_seed = 0, generator_offset = 0;  // the trainer's Generator
  LoaderState loader;
};

void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer, const RunConfig& config,
                     const TrainProgress& progress);

struct Checkpoint {
  std::string path;
  RunConfig config;
  TrainProgress progress;
  nlohmann::json metadata;
  SafetensorsFile file;
};
// Reads and validates the file and its metadata; errors name the path.
Checkpoint read_checkpoint(const std::string& path);
// Strict: a checkpoint of another model, or any missing/unexpected/mis-shaped tensor, is an error
// listing the differences; nothing is copied unless everything matches.
void restore_model(Model& model, const Checkpoint& ckpt);
void restore_optimizer(Optimizer& optimizer, const Checkpoint& ckpt);

}  // namespace spikegrad::app
