// The settings of a batch-norm op (ops::batch_norm in engine/ops.h, and the fused BN + neuron ops of
// engine/ops_neuron.h), in a header of their own so that the neuron header needs nothing else from ops.h.
#pragma once
#include <cstdint>

namespace spikegrad::ops {

// Sums across the replicas (ranks) of data-parallel training: the hook that makes batch norm synchronised
// (--sync-bn), so that N ranks with B/N examples each compute the statistics one process with B computes.
// The engine has no communication library of its own; the trainer plugs in an implementation (MPI, NCCL)
// and an in-process fake simulates replicas in the tests (tests/test_sync_batch_norm.cpp).
//
// Contract:
//  - sum(values, n) replaces values[0..n) in place by their sum over all replicas; every replica gets the
//    same result, bit for bit (the implementation adds in a fixed replica order, so runs are reproducible).
//  - Every replica makes the same calls in the same order with the same n: batch norm's calls depend only
//    on the model's structure, the training flag and which inputs need gradients, which the replicas
//    share. A training forward makes three calls: sum(&count, 1) on the host for every tensor (the
//    replica's element count per channel, T·B·H·W, so replicas may hold different batch sizes), then
//    n = C per-channel Σx, then n = C per-channel Σ(x − mean)² (the two-pass variance: no E[x²] − E[x]²
//    cancellation). A training backward that needs dx makes one call, n = 2·C (per-channel Σdy, then
//    Σ(dy·xhat)). The weight and bias gradients stay per replica, as in PyTorch's SyncBatchNorm:
//    data-parallel training all-reduces parameter gradients itself.
//  - The per-channel sums go to sum() for CPU tensors and to sum_device() for CUDA tensors (device
//    memory). sum_device is called after the kernels that write `values` were queued on the default
//    stream and before the kernels that read the result are queued; it must order itself after the
//    former and be done (or be ordered on the default stream) before it returns: e.g. a blocking
//    cudaMemcpy to the host, the host all-reduce and a blocking cudaMemcpy back, or ncclAllReduce on the
//    default stream.
//  - Errors are the implementation's to report (throw or abort); the engine calls no other method.
class CrossReplicaSum {
 public:
  virtual ~CrossReplicaSum() = default;
  virtual void sum(double* values, int64_t n) const = 0;         // host memory
  virtual void sum_device(double* values, int64_t n) const = 0;  // CUDA device memory
};

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
  // Training-mode statistics over all replicas when set (synchronised batch norm; not owned, must outlive
  // the forward and backward that use it). Null: per-replica statistics, as PyTorch DDP without
  // SyncBatchNorm. Eval mode never calls it (the running buffers are the same on every replica).
  const CrossReplicaSum* cross_replica = nullptr;
};

}  // namespace spikegrad::ops
