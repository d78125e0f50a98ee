// Batches of a Dataset for training and evaluation, prepared by a small pool of background threads.
//
// Each batch: images float32 in [0,1] (pixel / 255, exactly torchvision's ToTensor), (B,C,H,W) -- or
// (B,T,C,H,W) when the dataset's samples are frame sequences (sample_layout().time_steps = T > 0): batch-major,
// so every consumer (attacks, evaluation) slices examples along dim 0; the model moves time to the front
// (ModelConfig::frame_input) -- and labels int32 (B), on the CPU. Normalisation is the model's
// first op, not the loader's, so attacks and the loader share one [0,1] pixel space.
//
// Order and randomness are pure functions of (seed, epoch, dataset index):
//   - the epoch's order is a Fisher-Yates permutation drawn from key derive_seed(seed, epoch, 'SHUF'),
//   - the sample at dataset row i gets the counters [i*D, i*D + D) of key derive_seed(seed, epoch, 'AUGM'),
//     with D = 3 (kAugmentDrawsPerSample) in memory and D = source->draws_per_sample() for a lazy dataset.
// Data-parallel training shards every batch, not the dataset: process r of N takes the examples
// [r·B/N, (r+1)·B/N) of each batch of that one order (B the global batch_size). So the N shards of a batch
// are exactly the batch one process would take (every example once per epoch, in the single-process order
// for N = 1), an example's augmentation is the same whatever N, and a checkpoint's position (in global
// batches) means the same for any N.
// So the batches do not depend on the number of threads, the batch size (beyond grouping) or timing, and
// LoaderState {seed, epoch, next_batch} is all a checkpoint needs: a loader restored from it yields exactly
// the batches an uninterrupted one would, augmentation included.
//
// Iteration: next(batch) returns true with the next batch of the current epoch, and false once at the
// end of each epoch, after which the following call starts the next epoch:
//     for (int64_t e = 0; e < epochs; ++e) while (loader.next(batch)) step(batch);
//
// Threading: `decode_threads` workers (started by the first next()) share the samples of the batches in
// flight -- each takes the next unclaimed sample of the oldest unfinished batch, so a batch's samples are
// spread over all workers and the next batch starts while the last samples of one finish. At most
// prefetch_batches + 1 batches exist beside the consumer's (up to prefetch_batches finished ones waiting);
// when all are started the workers sleep. The worker that completes a batch runs `worker_transform` on it,
// one call at a time (a mutex serialises them, so the transform needs no thread safety of its own). The
// destructor and restore() stop the workers promptly (they check between samples) and join them. An exception
// on a worker (from a sample or from `worker_transform`) is re-thrown by next() when the consumer reaches that
// batch, after the batches before it; the loader then keeps failing with it until restore() is called.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "datasets/augment.h"
#include "datasets/dataset.h"

namespace spikegrad {

struct Batch {
  Tensor images;                 // float32 (B,C,H,W) in [0,1]; (B,T,C,H,W) for frame sequences
  Tensor labels;                 // int32 (B)
  std::vector<int64_t> indices;  // dataset index of each sample (for per-sample bookkeeping and tests)
  int64_t epoch = 0;
  int64_t batch_index = 0;  // position within the epoch (of the global batches, when sharded)
};

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  // Drop the final partial batch. Training drops it: a tiny last batch gives noisy BatchNorm statistics
  // (a batch of 1 has zero variance) and a step whose size differs from all others. Evaluation keeps it:
  // every test/validation sample must be scored.
  bool drop_last = false;
  Augmentation augmentation;  // in-memory datasets: none unless asked for; must stay off for a lazy dataset
  // Lazy datasets: Train applies the source's training transform (e.g. RandomResizedCrop + flip), Evaluate its
  // fixed one. In-memory datasets ignore it (their augmentation is `augmentation`).
  SampleMode sample_mode = SampleMode::Evaluate;
  uint64_t seed = 0;
  int64_t prefetch_batches = 2;  // finished batches waiting, >= 1
  // Worker threads: kAutoThreads picks min(hardware threads, 8) for a lazy dataset (decoding JPEGs is the
  // work) and 1 in memory (a copy per sample; more threads would only contend); 0 = hardware threads.
  static constexpr int64_t kAutoThreads = -1;
  int64_t decode_threads = kAutoThreads;
  // Optional extra CPU-side work on each finished batch, run on the worker thread so it overlaps
  // with the consumer (e.g. Cutout). It must be a pure function of the batch (epoch and indices
  // included) for resume to stay exact.
  std::function<void(Batch&)> worker_transform;
  // This process's part of every batch (see the top): shard_rank in [0, shard_count), batch_size divisible by
  // shard_count, and drop_last on (every batch whole, so every shard has batch_size / shard_count examples).
  int64_t shard_rank = 0;
  int64_t shard_count = 1;

  // Shuffled, dataset's default augmentation, Train sample mode, drop_last.
  static LoaderOptions training(const Dataset& dataset, int64_t batch_size, uint64_t seed);
  // Dataset order, no augmentation, Evaluate sample mode, keeps the last partial batch.
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
  int64_t shard_size() const { return options_.batch_size / options_.shard_count; }  // examples per batch here
  int64_t num_samples() const { return dataset_.size(); }
  int64_t decode_threads() const { return threads_; }  // resolved from the option
  const Dataset& dataset() const { return dataset_; }
  LoaderState state() const { return {options_.seed, epoch_, next_batch_}; }
  // Continue from a saved state (seed included); discards prefetched batches and any worker error.
  void restore(const LoaderState& state);
  void set_epoch(int64_t epoch) { restore({options_.seed, epoch, 0}); }

  // The sample order of an epoch (dataset indices), as the worker uses it.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  // A batch started by the workers and not yet handed out; guarded by mutex_ except for the sample slots that
  // a worker has claimed, which only that worker writes.
  struct Slot {
    Batch batch;
    int64_t count = 0;    // samples in the batch
    int64_t claimed = 0;  // samples [0, claimed) are taken by some worker
    int64_t done = 0;     // samples finished (or abandoned after an error)
    bool ready = false;   // complete and transformed: the consumer may take it
    std::exception_ptr error;
  };

  bool has_work_locked() const;
  Slot* start_slot_locked();  // the next batch of the fill position, its labels and indices filled in
  // Produces samples [begin, end) of `slot` (no lock held); false when stop_ was raised part-way.
  bool produce_samples(Slot& slot, int64_t begin, int64_t end) const;
  void finish_slot(std::unique_lock<std::mutex>& lock, Slot& slot);
  void start_workers();
  void stop_workers();
  void worker_main();

  Dataset dataset_;
  LoaderOptions options_;
  int64_t threads_ = 1;
  int64_t batches_per_epoch_ = 0;
  int64_t epoch_ = 0, next_batch_ = 0;  // consumer position: what next() hands out next
  std::exception_ptr error_;            // the consumer's sticky failure, until restore()

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::mutex transform_mutex_;     // one worker_transform call at a time
  std::condition_variable ready_;  // the oldest slot became ready
  std::condition_variable work_;   // samples to claim, room for a new slot, or stop
  std::deque<std::unique_ptr<Slot>> slots_;  // in batch order, the oldest first
  int64_t fill_epoch_ = 0, fill_batch_ = 0;  // the next batch to start
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;  // epoch_order(order_epoch_)
  bool failed_ = false;         // a slot holds an error: start no more
  std::atomic<bool> stop_{false};
};

}  // namespace spikegrad
