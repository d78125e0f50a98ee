// Data-parallel gradient averaging: the parameters' gradients summed over the ranks in buckets, each bucket's
// sum started during backward as soon as all its gradients are final, then divided by N.
//
// Buckets: the parameters in reverse registration order (backward finalises the last layers first), packed
// greedily up to `bucket_bytes` (a parameter larger than that is a bucket of its own), as PyTorch DDP does.
// The packing depends only on the parameter list, so it is the same on every rank. A bucket is started only
// after every bucket before it, so the ranks issue the same collectives in the same order whatever order
// their gradients become final in; with the fixed MPI reduction order (engine/distributed.h) a run is
// reproducible bit for bit for a given N.
//
// Overlap: gradient_final() is the tape's hook (Tape::backward(loss, hook)). MPI progresses a non-blocking
// sum only inside MPI calls (Open MPI has no progress thread by default), so each hook call also polls the
// buckets in flight; backward's remaining nodes then run while the bucket's messages travel.
//
// Averaging: each rank's loss is the mean over its B/N examples, so the mean over ranks of their gradients
// is the gradient of the mean over all B examples: --lr means what it means in one process with batch B.
//
// Devices: CPU gradients are summed with MPI (Communicator::start_sum) and divided by N here; CUDA gradients
// are averaged by NCCL on the GPU (engine/distributed_nccl.h; builds with NCCL only). In the single-process
// world nothing is copied or scaled.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/distributed.h"
#include "engine/distributed_nccl.h"
#include "engine/named_tensor.h"
#include "engine/tensor.h"

namespace spikegrad::dist {

// What DDP defaults to: big enough that per-message latency is amortised, small enough to start early.
constexpr int64_t kDefaultBucketBytes = int64_t(25) << 20;

class GradientAverager {
 public:
  // params: float32 tensors (their .grad() is averaged). The communicator must outlive this object.
  GradientAverager(const Communicator& comm, const NamedTensors& params, int64_t bucket_bytes = kDefaultBucketBytes);

  // The tape's hook: `leaf`'s .grad() is final. Leaves that are not parameters are ignored.
  void gradient_final(const Tensor& leaf);
  // After backward: starts the buckets not yet started (a parameter backward did not reach contributes
  // zeros), waits for all, and writes the averages into the .grad() of every parameter that has one.
  void finish();

  int64_t num_buckets() const { return int64_t(buckets_.size()); }
  // Buckets whose sum has been started this step (tests: the overlap starts them during backward).
  int64_t buckets_started() const { return int64_t(next_to_start_); }
  // Parameter names of bucket b, in packing order (tests, and the report of the bucket layout).
  std::vector<std::string> bucket_names(int64_t b) const;

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t numel = 0;
    std::vector<float> values;   // the flattened gradients while summed
    int64_t ready = 0;           // parameters whose gradient is final
    PendingSum pending;
    bool started = false;
  };
  void start_ready_buckets(bool force);
  void start(size_t b);
  void reset_step();
  std::vector<DeviceSlice> device_slices(const Bucket& bucket) const;

  const Communicator& comm_;
  NamedTensors params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<uint64_t, size_t> bucket_of_;  // parameter tensor id -> bucket
  std::vector<bool> final_;                         // per parameter, this step
  std::unique_ptr<NcclAverager> nccl_;              // CUDA parameters with several ranks
  size_t next_to_start_ = 0;
};

}  // namespace spikegrad::dist
