// The processes of a data-parallel run (README "Scaling out"): who we are (rank of size), and the few
// collectives training needs, over MPI when the build found it and the process was started by mpirun.
//
// Launch and bootstrap are MPI's: `mpirun -np N spikegrad train ...` starts N processes; init_distributed()
// (called once by the CLI's main) joins them. A process started without a launcher, or a build without MPI,
// is the single-process world (rank 0 of 1): every collective is then the identity, with no copy and no
// arithmetic, so a one-process run computes exactly what it computed before distributed training existed.
//
// Determinism: a sum over ranks is MPI_SUM on MPI_COMM_WORLD. Open MPI's "tuned" collective component
// picks its algorithm from (communicator size, message size) alone and every algorithm adds in an order
// fixed by the ranks, so for a given N (and message size) the result is the same bit for bit on every rank
// and in every run; a different N may round differently (float addition is not associative).
//
// Timeouts: every collective is started non-blocking and polled against a deadline (set_timeout, the
// trainer's --collective-timeout). A rank that died or hangs makes the others fail with an Error naming the
// collective and the rank instead of waiting forever; the CLI then aborts the whole job (abort_job), since a
// peer may be blocked in a collective that will never complete.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/batch_norm_options.h"

namespace spikegrad::dist {

// A started sum whose result is not yet known (start_sum / test / wait). Move-only; the buffer it sums must
// stay alive and untouched until it completes.
class PendingSum {
 public:
  PendingSum();
  ~PendingSum();
  PendingSum(PendingSum&&) noexcept;
  PendingSum& operator=(PendingSum&&) noexcept;
  bool active() const;

 private:
  friend class Communicator;
  struct State;
  std::unique_ptr<State> state_;
};

class Communicator {
 public:
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }
  // The ranks on this machine (MPI_COMM_TYPE_SHARED): they share its cores (and, later, its GPUs).
  int local_size() const { return local_size_; }
  int local_rank() const { return local_rank_; }  // this rank's index among them (its GPU, with NCCL)
  // Seconds a collective may wait for the other ranks before it fails (> 0).
  void set_timeout(double seconds);
  double timeout() const { return timeout_seconds_; }

  // In place: values[0..n) <- their sum over all ranks (the same bits on every rank). `what` names the
  // collective in a timeout error ("the gradient bucket 3", "the epoch's metrics").
  void sum(double* values, int64_t n, const std::string& what) const;
  void sum(float* values, int64_t n, const std::string& what) const;
  // Non-blocking float sum, for gradient buckets overlapping backward. test() advances MPI's progress engine
  // and says whether the sum is done; wait() blocks (with the timeout). Sums must be started in the same
  // order on every rank.
  PendingSum start_sum(float* values, int64_t n, const std::string& what) const;
  bool test(PendingSum& pending) const;
  void wait(PendingSum& pending) const;
  // Every rank's value, in rank order.
  std::vector<uint64_t> gather(uint64_t value, const std::string& what) const;
  // Rank 0's text on every rank.
  std::string broadcast(const std::string& text_on_rank0, const std::string& what) const;
  // Rank 0 checked something only it can (e.g. the run folder): on rank 0 `error` is its message, empty when
  // all is well. Every rank returns rank 0's message, so all ranks stop together, with rank 0's reason.
  std::string agree_with_rank0(const std::string& error, const std::string& what) const;

  // Ends every process of the job (MPI_Abort) with this exit code; in the single-process world, returns.
  // Only the CLI's main calls it, after it reported an error, so peers do not wait out their timeouts.
  void abort_job(int code) const;

 private:
  friend Communicator& world();
  friend void init_distributed(int* argc, char*** argv);
  int rank_ = 0, size_ = 1, local_size_ = 1, local_rank_ = 0;
  double timeout_seconds_ = 300.0;
};

// Synchronised batch norm (--sync-bn) over a communicator: the statistics' sums over all ranks
// (ops::CrossReplicaSum's contract, engine/batch_norm_options.h). Device memory is staged through the host
// (a blocking copy each way), the MPI path; the sums are C or 2·C doubles per BN layer.
class BatchNormSum : public ops::CrossReplicaSum {
 public:
  explicit BatchNormSum(const Communicator& comm) : comm_(comm) {}
  void sum(double* values, int64_t n) const override;
  void sum_device(double* values, int64_t n) const override;

 private:
  const Communicator& comm_;
};

// The processes of this job: the single-process world until init_distributed joined an MPI job.
Communicator& world();
// Joins the MPI job when the process was started by an MPI launcher (Open MPI's OMPI_COMM_WORLD_SIZE, or
// PMI_SIZE / PMIX_RANK) and the build has MPI; otherwise leaves the single-process world (a build without MPI
// started as one of several processes throws instead). Call once, first thing in main;
// finalize_distributed() before a normal return.
void init_distributed(int* argc, char*** argv);
void finalize_distributed();
// True when this build can run multi-process (MPI was found at build time).
bool mpi_available();

}  // namespace spikegrad::dist
