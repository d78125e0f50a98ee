#include "apps/distributed_run.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <thread>

#include "datasets/loader.h"
#include "engine/check.h"
#include "engine/distributed_nccl.h"

namespace spikegrad::app {

void check_distributed_settings(const RunConfig& c, const dist::Communicator& comm) {
  if (!comm.distributed()) return;
  const int n = comm.size();
  SG_CHECK(c.batch % n == 0, "--batch " << c.batch << " is the global batch and must be divisible by the " << n
                                        << " ranks of this mpirun (each takes --batch / N examples)");
}

void prepare_rank_device(bool on_cuda, const dist::Communicator& comm) {
  if (!comm.distributed() || !on_cuda) return;
  const int n = comm.size();
  SG_CHECK(dist::nccl_available(),
           "--device cuda with " << n << " ranks: multi-process GPU training needs NCCL, which this build did not "
                                 << "find (README \"Scaling out\"); use --device cpu under mpirun");
  // Each rank drives its own GPU; chosen before the model or anything else touches CUDA.
  dist::select_local_gpu(comm);
}

void on_rank0_then_agree(const dist::Communicator& comm, const std::string& what, const std::function<void()>& check) {
  if (!comm.distributed()) {
    check();
    return;
  }
  std::exception_ptr failure;
  std::string message;
  if (comm.rank() == 0) {
    try {
      check();
    } catch (const std::exception& e) {
      failure = std::current_exception();
      message = e.what();
    }
  }
  const std::string verdict = comm.agree_with_rank0(message, what);
  if (failure) std::rethrow_exception(failure);
  SG_CHECK(verdict.empty(), "rank 0 stopped the run (" << what << "): " << verdict);
}

namespace {

uint64_t fnv1a(const std::string& text, uint64_t h = 1469598103934665603ull) {
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

void check_ranks_agree(const RunConfig& c, const Checkpoint* resume_from, const dist::Communicator& comm) {
  if (!comm.distributed()) return;
  // Where and how a rank runs may differ (config_for_resume's list); what it computes may not.
  nlohmann::json what = c.to_json();
  for (const char* key : {"device", "progress", "data_dir", "runs_dir", "name", "decode_threads", "dvs_cache_dir",
                          "val_labels", "collective_timeout"})
    what.erase(key);
  std::string fingerprint = what.dump();
  if (resume_from != nullptr) {
    const TrainProgress& p = resume_from->progress;
    fingerprint += "|checkpoint " + resume_from->config.to_json().dump() + " epochs " + std::to_string(p.epochs_done) +
                   " at " + std::to_string(p.loader.epoch) + ":" + std::to_string(p.loader.next_batch) + " generator " +
                   std::to_string(p.generator_seed) + ":" + std::to_string(p.generator_offset);
  } else {
    fingerprint += "|new run";
  }
  const std::vector<uint64_t> all = comm.gather(fnv1a(fingerprint), "the check that all ranks run one config");
  std::string differing;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  SG_CHECK(differing.empty(), "rank(s) " << differing << " of " << comm.size()
                                         << " run a different config or checkpoint than rank 0 (compared: every "
                                         << "setting but paths, device, threads and progress; the checkpoint's "
                                         << "config and position): give every rank the same flags and run folder");
}

void share_cores_between_ranks(const dist::Communicator& comm) {
  if (!comm.distributed() || std::getenv("OMP_NUM_THREADS") != nullptr) return;
  const int cores = std::max(1, int(std::thread::hardware_concurrency()));
  omp_set_num_threads(std::max(1, cores / std::max(1, comm.local_size())));
}

int64_t decode_threads_per_rank(int64_t requested, bool lazy, const dist::Communicator& comm) {
  if (!comm.distributed() || requested != LoaderOptions::kAutoThreads || !lazy) return requested;
  const int64_t cores = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()));
  return std::max<int64_t>(1, std::min<int64_t>(8, cores / std::max(1, comm.local_size())));
}

StepTotals sum_over_ranks(StepTotals local, bool& interrupted, const dist::Communicator& comm) {
  if (!comm.distributed()) return local;
  std::vector<double> values;
  for (const auto& part : local.parts) values.push_back(part.second);
  values.push_back(double(local.correct));
  values.push_back(double(local.seen));
  values.push_back(interrupted ? 1.0 : 0.0);
  comm.sum(values.data(), int64_t(values.size()), "the step's loss and accuracy");
  for (size_t i = 0; i < local.parts.size(); ++i) local.parts[i].second = values[i];
  const size_t k = local.parts.size();
  local.correct = int64_t(values[k]);
  local.seen = int64_t(values[k + 1]);
  interrupted = values[k + 2] > 0;
  return local;
}

bool any_rank(bool flag, const std::string& what, const dist::Communicator& comm) {
  if (!comm.distributed()) return flag;
  double value = flag ? 1.0 : 0.0;
  comm.sum(&value, 1, what);
  return value > 0;
}

}  // namespace spikegrad::app
