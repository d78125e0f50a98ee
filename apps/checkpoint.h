// Training checkpoints: one safetensors file holding the model's parameters and buffers under their
// PyTorch-style names (so `torch.nn.Module.load_state_dict` takes them after dropping the
// "optimizer." and "mine." entries), the optimizer state under "optimizer.<param>.<slot>", and the run's JSON
// metadata ("spikegrad" key): config, completed epochs, best epoch, optimizer scalars, loader and RNG
// state — everything --resume needs to continue exactly. Written atomically by save_safetensors.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/options.h"
#include "datasets/loader.h"
#include "engine/optim.h"
#include "engine/safetensors.h"
#include "losses/mine.h"
#include "models/model.h"

namespace spikegrad::app {

struct TrainProgress {
  int64_t epochs_done = 0;
  int64_t best_epoch = -1;  // 1-based epoch of the best checkpoint; -1: none yet
  double best_accuracy = -1;
  uint64_t generator_seed = 0, generator_offset = 0;  // the trainer's Generator
  LoaderState loader;
};

// `extra_metadata`: further safetensors metadata keys beside "spikegrad" (e.g. the trainer's running sums
// of an interrupted epoch), written in the same atomic save.
// `mine` (--mi-estimator mine, once its network is built): its state under "mine.<name>" (parameters,
// "mine.optimizer.<param>.<slot>", "mine.log_ema") and its optimizer's scalars in the metadata's "mine" key.
void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer, const RunConfig& config,
                     const TrainProgress& progress, const std::map<std::string, std::string>& extra_metadata = {},
                     const MineEstimator* mine = nullptr);

struct Checkpoint {
  std::string path;
  RunConfig config;
  TrainProgress progress;
  nlohmann::json metadata;
  SafetensorsFile file;
};
// Reads and validates the file and its metadata; errors name the path. The recorded config's named
// choices (neuron, reset, loss, ...) must be values the CLI accepts: an edited checkpoint naming an
// unknown one is an error naming the value, never a fallback to a default.
Checkpoint read_checkpoint(const std::string& path);
// Strict: a checkpoint of another model, or any missing/unexpected/mis-shaped tensor, is an error
// listing the differences; nothing is copied unless everything matches.
void restore_model(Model& model, const Checkpoint& ckpt);
void restore_optimizer(Optimizer& optimizer, const Checkpoint& ckpt);
// The "mine.*" state into `mine`, strictly. A checkpoint without it (saved before the network was built at the
// first step) leaves `mine` unbuilt, as a new run's is.
void restore_mine(MineEstimator& mine, const Checkpoint& ckpt);

// Every parameter and buffer of the model is finite, and every BatchNorm running variance (a tensor
// whose name ends in "running_var") is >= 0; otherwise an Error "<what>: <tensor> has a non-finite value
// nan at index 7 (3 of 64 values)" / "... has a negative value -0.5 at index 7 ...". `what` says whose
// state it is ("checkpoint runs/x/best.safetensors", "after epoch 3"). Integer tensors are skipped.
// Each floating tensor is copied to the host once (CUDA) and scanned there. restore_model calls it on the
// restored state (eval, attack, --resume); the trainer calls it after each epoch.
void check_model_state(const Model& model, const std::string& what);

}  // namespace spikegrad::app
