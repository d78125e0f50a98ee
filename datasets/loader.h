// Batches of a Dataset for training and evaluation, prepared by a background thread.
//
// Each batch: images float32 (B,C,H,W) in [0,1] (pixel / 255, exactly torchvision's ToTensor) and
// labels int32 (B), on the CPU. Normalisation is the model's first op, not the loader's, so attacks
// and the loader share one [0,1] pixel space.
//
// Order and randomness are pure functions of (seed, epoch, batch index):
//   - the epoch's order is a Fisher-Yates permutation drawn from key derive_seed(seed, epoch, 'SHUF'),
//   - sample i (dataset index) gets augmentation counters [3i, 3i+3) of key derive_seed(seed, epoch, 'AUGM').
// So LoaderState {seed, epoch, next_batch} is all a checkpoint needs: a loader restored from it yields
// exactly the batches an uninterrupted one would, augmentation included.
//
// Iteration: next(batch) returns true with the next batch of the current epoch, and false once at the
// end of each epoch, after which the following call starts the next epoch:
//     for (int64_t e = 0; e < epochs; ++e) while (loader.next(batch)) step(batch);
//
// Threading: one worker thread (started by the first next()) prepares up to `prefetch_batches`
// batches ahead, running on into the next epoch. The destructor and restore() stop it promptly
// (it checks between samples) and join it. An exception on the worker (including one from
// `worker_transform`) is re-thrown by next() after the batches completed before it; the loader then
// keeps failing with it until restore() is called.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "datasets/augment.h"
#include "datasets/dataset.h"

namespace spikegrad {

struct Batch {
  Tensor images;                 // float32 (B,C,H,W) in [0,1]
  Tensor labels;                 // int32 (B)
  std::vector<int64_t> indices;  // dataset index of each sample (for per-sample bookkeeping and tests)
  int64_t epoch = 0;
  int64_t batch_index = 0;  // position within the epoch
};

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  // Drop the final partial batch. Training drops it: a tiny last batch gives noisy BatchNorm statistics
  // (a batch of 1 has zero variance) and a step whose size differs from all others. Evaluation keeps it:
  // every test/validation sample must be scored.
  bool drop_last = false;
  Augmentation augmentation;  // none unless asked for
  uint64_t seed = 0;
  int64_t prefetch_batches = 2;  // queue depth, >= 1
  // Optional extra CPU-side work on each finished batch, run on the worker thread so it overlaps
  // with the consumer (e.g. Cutout). It must be a pure function of the batch (epoch and indices
  // included) for resume to stay exact.
  std::function<void(Batch&)> worker_transform;

  // Shuffled, dataset's default augmentation, drop_last.
  static LoaderOptions training(const Dataset& dataset, int64_t batch_size, uint64_t seed);
  // Dataset order, no augmentation, keeps the last partial batch.
  static LoaderOptions evaluation(int64_t batch_size);
};

struct LoaderState {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t next_batch = 0;  // batches of `epoch` already handed out
};

class Loader {
 public:
  // The dataset is shared, not copied (its tensors are reference-counted), and checked on entry.
  Loader(const Dataset& dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  bool next(Batch& batch);

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t num_samples() const { return dataset_.size(); }
  const Dataset& dataset() const { return dataset_; }
  LoaderState state() const { return {options_.seed, epoch_, next_batch_}; }
  // Continue from a saved state (seed included); discards prefetched batches and any worker error.
  void restore(const LoaderState& state);
  void set_epoch(int64_t epoch) { restore({options_.seed, epoch, 0}); }

  // The sample order of an epoch (dataset indices), as the worker uses it.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  // Fills `out` with batch `batch_index` of `epoch`; false when stop_ was raised part-way (polled
  // between samples, so shutdown never waits for a whole batch).
  bool build_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index, Batch& out) const;
  void start_worker();
  void stop_worker();
  void worker_main(int64_t epoch, int64_t batch_index);

  Dataset dataset_;
  LoaderOptions options_;
  int64_t batches_per_epoch_ = 0;
  int64_t epoch_ = 0, next_batch_ = 0;  // consumer position: what next() hands out next

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable ready_;  // a batch or an error is available
  std::condition_variable space_;  // the queue has room, or the worker must stop
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  std::atomic<bool> stop_{false};
};

}  // namespace spikegrad
