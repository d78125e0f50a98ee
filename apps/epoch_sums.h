// What a training epoch adds up step by step (the metrics row's loss parts, accuracy and example count), and
// how a mid-epoch checkpoint carries those running sums so a resumed epoch's row equals an uninterrupted one's.
// Under mpirun every step's totals are summed over the ranks before they are added (apps/train.cpp), so the
// sums are the global batch's on every rank and a mid-epoch checkpoint resumes with any number of ranks.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "apps/checkpoint.h"
#include "datasets/loader.h"
#include "losses/losses.h"

namespace spikegrad::app {

// What a step reports, read with one transfer from the device (to_cpu): on CUDA the step waits for the
// device once, not once per loss part plus once for the predictions.
struct StepValues {
  std::vector<std::pair<std::string, double>> parts;  // LossParts::named() order: ("loss", total) first
  Tensor predictions;                                 // int32 (B) on the CPU
  double loss() const { return parts.front().second; }
};
StepValues read_step(const LossParts& p, const Tensor& predictions);

// One step's contribution: each loss part times the step's examples, the correct predictions, the examples.
struct StepTotals {
  std::vector<std::pair<std::string, double>> parts;
  int64_t correct = 0, seen = 0;
  double mean_loss() const { return parts.front().second / double(seen); }
};
StepTotals step_totals(const StepValues& v, int64_t correct, int64_t batch);

struct EpochSums {
  std::vector<std::pair<std::string, double>> parts;
  int64_t correct = 0, seen = 0;
  void add(const StepTotals& t);
};

// A mid-epoch last.safetensors (written when training is interrupted) carries, besides the loader
// position the checkpoint format already holds (LoaderState.next_batch), the epoch's running sums. They ride
// in their own metadata key beside "spikegrad", tied to the loader position they belong to.
extern const char* const kEpochInProgressKey;
std::string epoch_sums_json(const EpochSums& s, const LoaderState& at);
EpochSums read_epoch_sums(const Checkpoint& ck);

}  // namespace spikegrad::app
