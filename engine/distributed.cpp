#include "engine/distributed.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "engine/check.h"
#include "engine/cuda_context.h"

#ifdef SPIKEGRAD_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only: Open MPI's deprecated C++ bindings warn under -Wextra
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace spikegrad::dist {

struct PendingSum::State {
#ifdef SPIKEGRAD_MPI
  MPI_Request request = MPI_REQUEST_NULL;
#endif
  std::string what;
  bool done = false;
};

PendingSum::PendingSum() = default;
PendingSum::~PendingSum() = default;
PendingSum::PendingSum(PendingSum&&) noexcept = default;
PendingSum& PendingSum::operator=(PendingSum&&) noexcept = default;
bool PendingSum::active() const { return state_ && !state_->done; }

Communicator& world() {
  static Communicator instance;
  return instance;
}

void Communicator::set_timeout(double seconds) {
  SG_CHECK(std::isfinite(seconds) && seconds > 0,
           "distributed: the collective timeout must be a finite number of seconds > 0, got " << seconds);
  timeout_seconds_ = seconds;
}

#ifdef SPIKEGRAD_MPI

bool mpi_available() { return true; }

namespace {

bool started_by_mpi_launcher() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

bool mpi_running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

void check_mpi(int code, const char* call, const std::string& what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  SG_FAIL("distributed: " << call << " for " << what << " failed: " << std::string(text, size_t(length)));
}

// Polls the request until it completes or the timeout passes. Spinning keeps the latency of small sums low;
// after the first few hundred polls it sleeps between them, so a rank waiting on a slow peer (two ranks on
// two cores) leaves the core to that peer.
void wait_with_timeout(MPI_Request* request, const Communicator& comm, const std::string& what) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::duration<double>(comm.timeout());
  for (int polls = 0;; ++polls) {
    int done = 0;
    check_mpi(MPI_Test(request, &done, MPI_STATUS_IGNORE), "MPI_Test", what);
    if (done) return;
    if (clock::now() > deadline)
      SG_FAIL("distributed: rank " << comm.rank() << " of " << comm.size() << ": " << what << " timed out after "
                                   << comm.timeout() << " s waiting for the other ranks (--collective-timeout): a "
                                   << "rank has died, hangs, or disagrees on the sequence of collectives");
    if (polls > 256) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

void init_distributed(int* argc, char*** argv) {
  if (!started_by_mpi_launcher() || mpi_running()) return;
  int provided = 0;
  // Only the main thread calls MPI (the loader's workers and OpenMP's threads never do).
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread", "joining the job");
  // Errors come back as codes, which check_mpi turns into an Error naming the call.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  Communicator& w = world();
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size_);
  MPI_Comm local;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local),
            "MPI_Comm_split_type", "counting the ranks of this machine");
  MPI_Comm_size(local, &w.local_size_);
  MPI_Comm_rank(local, &w.local_rank_);
  MPI_Comm_free(&local);
}

void finalize_distributed() {
  if (mpi_running()) MPI_Finalize();
}

void Communicator::sum(double* values, int64_t n, const std::string& what) const {
  if (!distributed() || n == 0) return;
  SG_CHECK(n > 0 && n <= INT32_MAX, "distributed: " << what << ": " << n << " values do not fit one MPI message");
  MPI_Request request;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values, int(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &request),
            "MPI_Iallreduce", what);
  wait_with_timeout(&request, *this, what);
}

void Communicator::sum(float* values, int64_t n, const std::string& what) const {
  PendingSum pending = start_sum(values, n, what);
  wait(pending);
}

PendingSum Communicator::start_sum(float* values, int64_t n, const std::string& what) const {
  PendingSum pending;
  pending.state_ = std::make_unique<PendingSum::State>();
  pending.state_->what = what;
  if (!distributed() || n == 0) {
    pending.state_->done = true;
    return pending;
  }
  SG_CHECK(n > 0 && n <= INT32_MAX, "distributed: " << what << ": " << n << " values do not fit one MPI message");
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &pending.state_->request),
            "MPI_Iallreduce", what);
  return pending;
}

bool Communicator::test(PendingSum& pending) const {
  if (!pending.active()) return true;
  int done = 0;
  check_mpi(MPI_Test(&pending.state_->request, &done, MPI_STATUS_IGNORE), "MPI_Test", pending.state_->what);
  pending.state_->done = done != 0;
  return pending.state_->done;
}

void Communicator::wait(PendingSum& pending) const {
  if (!pending.active()) return;
  wait_with_timeout(&pending.state_->request, *this, pending.state_->what);
  pending.state_->done = true;
}

std::vector<uint64_t> Communicator::gather(uint64_t value, const std::string& what) const {
  std::vector<uint64_t> all(size_t(size_), value);
  if (!distributed()) return all;
  MPI_Request request;
  check_mpi(MPI_Iallgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD, &request),
            "MPI_Iallgather", what);
  wait_with_timeout(&request, *this, what);
  return all;
}

std::string Communicator::broadcast(const std::string& text_on_rank0, const std::string& what) const {
  if (!distributed()) return text_on_rank0;
  uint64_t length = rank_ == 0 ? text_on_rank0.size() : 0;
  MPI_Request request;
  check_mpi(MPI_Ibcast(&length, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, &request), "MPI_Ibcast", what);
  wait_with_timeout(&request, *this, what);
  SG_CHECK(length <= INT32_MAX, "distributed: " << what << ": " << length << " bytes do not fit one MPI message");
  std::string text = rank_ == 0 ? text_on_rank0 : std::string(size_t(length), '\0');
  if (length == 0) return text;
  check_mpi(MPI_Ibcast(text.data(), int(length), MPI_CHAR, 0, MPI_COMM_WORLD, &request), "MPI_Ibcast", what);
  wait_with_timeout(&request, *this, what);
  return text;
}

void Communicator::abort_job(int code) const {
  if (distributed() && mpi_running()) MPI_Abort(MPI_COMM_WORLD, code);
}

#else  // no MPI in this build: the single-process world only

bool mpi_available() { return false; }

// Started by mpirun with several processes, a build without MPI would run N independent copies of the job
// into one run folder: refuse instead.
void init_distributed(int*, char***) {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* value = std::getenv(var);
    SG_CHECK(value == nullptr || std::atoi(value) <= 1,
             "started by an MPI launcher with " << value << " processes (" << var << "), but this build has no MPI: "
                                                << "install libopenmpi-dev (scripts/setup_deps.sh) and rebuild, or run "
                                                << "one process without mpirun");
  }
}
void finalize_distributed() {}

void Communicator::sum(double*, int64_t, const std::string&) const {}
void Communicator::sum(float*, int64_t, const std::string&) const {}
PendingSum Communicator::start_sum(float*, int64_t, const std::string& what) const {
  PendingSum pending;
  pending.state_ = std::make_unique<PendingSum::State>();
  pending.state_->what = what;
  pending.state_->done = true;
  return pending;
}
bool Communicator::test(PendingSum&) const { return true; }
void Communicator::wait(PendingSum&) const {}
std::vector<uint64_t> Communicator::gather(uint64_t value, const std::string&) const { return {value}; }
std::string Communicator::broadcast(const std::string& text_on_rank0, const std::string&) const {
  return text_on_rank0;
}
void Communicator::abort_job(int) const {}

#endif

std::string Communicator::agree_with_rank0(const std::string& error, const std::string& what) const {
  // An empty string cannot be told from "no message" by length alone: prefix a marker.
  const std::string verdict = broadcast(error.empty() ? std::string("ok") : "error:" + error, what);
  return verdict == "ok" ? std::string() : verdict.substr(6);
}

void BatchNormSum::sum(double* values, int64_t n) const { comm_.sum(values, n, "the batch-norm statistics (--sync-bn)"); }

void BatchNormSum::sum_device(double* values, int64_t n) const {
  std::vector<double> host(static_cast<size_t>(n));
  // copy_bytes to the host waits for the kernels that wrote `values`; the copy back is blocking too.
  copy_bytes(host.data(), Device::CPU, values, Device::CUDA, size_t(n) * sizeof(double));
  sum(host.data(), n);
  copy_bytes(values, Device::CUDA, host.data(), Device::CPU, size_t(n) * sizeof(double));
}

}  // namespace spikegrad::dist
