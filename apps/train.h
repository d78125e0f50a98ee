// `spikegrad train`: trains a model, writes runs/<name>/ (config.json, metrics.csv, best.safetensors,
// last.safetensors, report.md) and resumes exactly with --resume.
#pragma once
#include <cstdint>
#include <optional>

#include "apps/interrupt.h"
#include "apps/options.h"
#include "attacks/attack.h"
#include "engine/check.h"
#include "engine/distributed.h"
#include "losses/losses.h"

namespace spikegrad::app {

// run_train throws Interrupted (apps/interrupt.h) when SIGINT or SIGTERM arrived during training: the step
// in flight was finished and last.safetensors written at that point (mid-epoch: it holds the loader position
// and the epoch's running sums, so --resume continues exactly). what(): "interrupted at epoch E step S;
// continue with --resume" (E 1-based; S the steps of epoch E done). During the final report: "interrupted
// during the final report (<pass>); training is complete ...; write the report with --resume".

// Returns the run folder. Throws spikegrad::Error on bad input and on a non-finite loss (after which
// last.safetensors is the last good checkpoint), Interrupted on SIGINT/SIGTERM (the handlers are installed
// for the call's life only; the previous ones are restored on return; a second signal ends the process
// as the default disposition does).
// The run folder is locked for the call's life (a second run into it is an error naming the holder's
// pid); --name must be one folder name inside --runs-dir; every file is written through the checked
// writers of apps/run_folder.h, so a failed write is an error naming the file.
// Under `mpirun -np N` every rank calls it with the same flags: --batch is the global batch, each rank trains
// on its B/N examples of every batch, gradients are averaged over the ranks, and rank 0 alone writes the run
// folder and the report (the rules: apps/distributed_run.h; README "Scaling out"). Every rank returns the
// run folder.
// With --resume, `given` says which settings the user gave (config_for_resume, apps/options.h); a caller
// filling a whole RunConfig gives all of them.
std::string run_train(RunConfig config, const GivenSettings& given = GivenSettings());
// The same on the given processes instead of the job's (dist::world()): a default-constructed Communicator is
// a one-process world, which the MPI tests use for the single-process reference run inside a 2-rank job.
std::string run_train(RunConfig config, const GivenSettings& given, dist::Communicator& ranks);

// SNN-RAT adversarial training (reference.md §4.4), the parts run_train uses (public for tests):
// the attack that crafts each training minibatch from --adv* (BPTT gradients); none for --adv none.
std::optional<AttackConfig> training_attack(const RunConfig& c);
// One step's loss and the logits its accuracy is counted on. With `adv`, the batch is replaced by its
// adversarial version, crafted with BN in eval mode (attack() restores the model's modes) and the PGD start
// drawn from `gen`, the run's generator (so --resume redraws it exactly); mix = --adv-mix m > 0 adds the
// clean batch, every loss part being (1-m)·adversarial + m·clean. The logits are the adversarial batch's.
struct StepLoss {
  LossParts parts;
  Tensor logits;
};
StepLoss training_step_loss(Tape& tape, Model& model, const Tensor& images, const Tensor& labels, const LossConfig& lcfg,
                            const std::optional<AttackConfig>& adv, double mix, Generator& gen);

// Tests only: called inside each epoch's commit, after the metrics row is written and before
// last.safetensors is replaced (a throw there simulates a kill at that point).
extern void (*train_commit_hook)(const char* point, int64_t epoch);
// Tests only: called after each optimizer step, with the 0-based epoch and the steps of it done so far
// (raise(SIGINT) there interrupts the run deterministically after that step).
extern void (*train_step_hook)(int64_t epoch, int64_t steps_done);

}  // namespace spikegrad::app
