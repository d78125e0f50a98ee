// GPU gradient averaging for data-parallel training: NCCL, bootstrapped over the MPI job (engine/distributed.h).
//
// Built only when CMake finds NCCL (the nvidia-nccl-cu13 wheel's include/ and lib/, or a CUDA toolkit copy) and
// the CUDA backend and MPI are on; elsewhere nccl_available() is false and the constructor throws. Untested on
// hardware so far: the machines that built it have no GPU (README "Scaling out").
//
// Design (as PyTorch DDP's NCCL backend):
//   - each rank drives the GPU local_rank % (visible devices), chosen before the process touches CUDA;
//   - rank 0 creates the ncclUniqueId and broadcasts it over MPI; every rank joins with ncclCommInitRank;
//   - a bucket's gradients are copied into one device buffer on the default stream (where backward queued them),
//     the NCCL stream waits for that copy through an event and averages in place (ncclAllReduce, ncclAvg: the
//     sum divided by N inside NCCL), so the reduction overlaps the rest of backward on the default stream;
//   - finish() makes the default stream wait for the NCCL stream and copies the averages back; the host waits
//     for the last average with the communicator's timeout, checking ncclCommGetAsyncError, and aborts the
//     NCCL communicator (then throws) when a peer is gone.
// NCCL's ring/tree reductions add in an order fixed by the ranks and the message size, so a run is
// reproducible for a given N and bucket layout (NCCL_ALGO/NCCL_PROTO left at their defaults on every rank).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/distributed.h"

namespace spikegrad::dist {

bool nccl_available();

// Selects this rank's GPU (cudaSetDevice(local_rank % devices)); an error when the machine has fewer GPUs
// than ranks. Call before the process does any CUDA work.
void select_local_gpu(const Communicator& comm);

// One gradient tensor's device memory (nullptr: the parameter got no gradient; it contributes zeros).
struct DeviceSlice {
  float* data = nullptr;
  int64_t numel = 0;
};

class NcclAverager {
 public:
  // Collective: every rank constructs it at the same point. bucket_numel: the float count of each bucket.
  NcclAverager(const Communicator& comm, const std::vector<int64_t>& bucket_numel);
  ~NcclAverager();
  NcclAverager(const NcclAverager&) = delete;
  NcclAverager& operator=(const NcclAverager&) = delete;

  // Queues bucket b's average: copy in (default stream), then ncclAllReduce(ncclAvg) on the NCCL stream.
  void start(size_t bucket, const std::vector<DeviceSlice>& grads);
  // The default stream waits for every started average and copies it back into `grads[b]`; the host waits
  // (with the timeout) until NCCL is done.
  void finish(const std::vector<std::vector<DeviceSlice>>& grads);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikegrad::dist
