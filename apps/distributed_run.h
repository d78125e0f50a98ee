// The parts of `spikegrad train` that exist because several processes train one model (README "Scaling
// out"): what a multi-rank run refuses, the check that every rank runs the same config from the same
// checkpoint, rank 0's checks shared with the others, and the per-step sums over the ranks.
//
// The rules a run under `mpirun -np N` follows (apps/train.cpp does them in this order):
//   - --batch B is the global batch: each rank takes B/N examples of every batch of the single-process order
//     (datasets/loader.h), so N = 1 is the old run exactly; B must be divisible by N.
//   - Every loss term is a mean over examples (CE, TET; TMI's KDE-MI is MI_b of each example's own rate time
//     series, averaged over b; the output entropy is H of each example's softmax, averaged), so the mean over
//     ranks of the per-rank means is the global batch's loss, and with --sync-bn N ranks compute what one
//     process computes. Not bitwise the same: --adv's PGD random start, which every rank draws for its own B/N
//     examples from the run's shared generator (so the ranks' draws coincide): the same distribution, other
//     numbers than one process draws.
//   - Rank 0 alone owns the run folder (lock, checks, config.json, metrics.csv, checkpoints, report.md) and
//     evaluates after each epoch; the others read last.safetensors on --resume and write nothing.
//   - A resume may use another N: the checkpoint's position is in global batches and its running sums are
//     global, so any N that divides B continues the same run (the sums over ranks may round differently).
//   - Errors: any rank's error ends the whole job (the CLI aborts it), so a rank never waits on a dead peer
//     for longer than --collective-timeout.
#pragma once
#include <functional>
#include <string>

#include "apps/checkpoint.h"
#include "apps/epoch_sums.h"
#include "apps/options.h"
#include "engine/distributed.h"

namespace spikegrad::app {

// What a run with comm.size() ranks cannot do, checked before the run folder is touched: --batch not divisible
// by N. The error names the flag and N. Single process: nothing to check.
void check_distributed_settings(const RunConfig& c, const dist::Communicator& comm);
// Several ranks on CUDA: NCCL must be built (else an error naming --device), and each rank takes its GPU
// (dist::select_local_gpu): call it before anything touches CUDA. Otherwise nothing happens.
void prepare_rank_device(bool on_cuda, const dist::Communicator& comm);

// Runs `check` on rank 0 only (the run folder's lock and checks) and makes every rank stop with rank 0's
// error if it failed. Single process: just runs it.
void on_rank0_then_agree(const dist::Communicator& comm, const std::string& what, const std::function<void()>& check);

// Every rank runs the same resolved config (less where and how it runs: paths, device, threads, progress) from
// the same checkpoint (or a new run). A mismatch is an error on every rank naming the ranks that differ from
// rank 0.
void check_ranks_agree(const RunConfig& c, const Checkpoint* resume_from, const dist::Communicator& comm);

// N ranks on one machine share its cores: unless OMP_NUM_THREADS says otherwise, each rank's OpenMP gets
// cores / (ranks on this machine), at least one. Single process: nothing changes.
void share_cores_between_ranks(const dist::Communicator& comm);

// --decode-threads for this rank: as given, except auto for a decoded (lazy) dataset with several ranks on the
// machine, which becomes min(8, cores / ranks here), at least 1 (auto alone would give every rank 8).
int64_t decode_threads_per_rank(int64_t requested, bool lazy, const dist::Communicator& comm);

// A step's totals summed over the ranks, and whether any rank received SIGINT/SIGTERM (so every rank stops
// after the same step). Single process: the totals unchanged, no arithmetic.
StepTotals sum_over_ranks(StepTotals local, bool& interrupted, const dist::Communicator& comm);
bool any_rank(bool flag, const std::string& what, const dist::Communicator& comm);

}  // namespace spikegrad::app
