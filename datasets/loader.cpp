#include "datasets/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace spikegrad {
namespace {

// Purpose tags for derive_seed: the shuffle and the augmentation of one (seed, epoch) are independent streams.
constexpr uint64_t kShuffleTag = 0x53485546;  // 'SHUF'
constexpr uint64_t kAugmentTag = 0x4155474D;  // 'AUGM'
constexpr int64_t kMaxPrefetch = 64;
constexpr int64_t kMaxThreads = 256;
// Auto thread count for lazy datasets: beyond ~8 decoders a GPU step is rarely the bottleneck any more, and more
// threads would compete with the training process's own OpenMP threads.
constexpr int64_t kAutoLazyThreads = 8;

int64_t hardware_threads() { return std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency())); }

int64_t resolve_threads(int64_t requested, bool lazy) {
  if (requested == LoaderOptions::kAutoThreads) return lazy ? std::min(hardware_threads(), kAutoLazyThreads) : 1;
  if (requested == 0) return hardware_threads();
  return requested;
}

}  // namespace

LoaderOptions LoaderOptions::training(const Dataset& dataset, int64_t batch_size, uint64_t seed) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = true;
  o.drop_last = true;
  o.augmentation = default_augmentation(dataset.name);
  o.sample_mode = SampleMode::Train;
  o.seed = seed;
  return o;
}

LoaderOptions LoaderOptions::evaluation(int64_t batch_size) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = false;
  o.drop_last = false;
  o.sample_mode = SampleMode::Evaluate;
  return o;
}

Loader::Loader(const Dataset& dataset, LoaderOptions options) : dataset_(dataset), options_(std::move(options)) {
  check_dataset(dataset_, "loader: dataset '" + dataset_.name + "'");
  SG_CHECK(options_.batch_size >= 1, "loader: batch_size must be >= 1, got " << options_.batch_size);
  SG_CHECK(options_.prefetch_batches >= 1 && options_.prefetch_batches <= kMaxPrefetch,
           "loader: prefetch_batches must be in [1, " << kMaxPrefetch << "], got " << options_.prefetch_batches);
  SG_CHECK(options_.augmentation.crop_padding >= 0,
           "loader: augmentation crop_padding must be >= 0, got " << options_.augmentation.crop_padding);
  SG_CHECK(
      !dataset_.lazy() || !options_.augmentation.enabled(),
      "loader: dataset '" << dataset_.name << "' is decoded on demand: its training transform is chosen with "
                          << "sample_mode = Train; crop_padding/flip augmentation applies to in-memory images only");
  SG_CHECK(options_.decode_threads == LoaderOptions::kAutoThreads ||
               (options_.decode_threads >= 0 && options_.decode_threads <= kMaxThreads),
           "loader: decode_threads must be in [0, " << kMaxThreads << "] (0 = hardware threads) or "
                                                    << LoaderOptions::kAutoThreads << " (auto), got "
                                                    << options_.decode_threads);
  SG_CHECK(options_.shard_count >= 1 && options_.shard_rank >= 0 && options_.shard_rank < options_.shard_count,
           "loader: shard_rank must be in [0, shard_count), got " << options_.shard_rank << " of "
                                                                  << options_.shard_count);
  SG_CHECK(options_.shard_count == 1 || (options_.drop_last && options_.batch_size % options_.shard_count == 0),
           "loader: a batch shared by " << options_.shard_count << " processes must be whole (drop_last) and "
                                        << "divisible by their number, got batch_size " << options_.batch_size);
  threads_ = resolve_threads(options_.decode_threads, dataset_.lazy());
  const int64_t n = dataset_.size();
  batches_per_epoch_ =
      options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

Loader::~Loader() { stop_workers(); }

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_.size();
  if (!options_.shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t(0));
    return order;
  }
  Generator gen(derive_seed(options_.seed, uint64_t(epoch), kShuffleTag));
  return random_permutation(n, gen);
}

bool Loader::has_work_locked() const {
  for (const std::unique_ptr<Slot>& slot : slots_)
    if (slot->claimed < slot->count) return true;
  return !failed_ && batches_per_epoch_ > 0 && int64_t(slots_.size()) <= options_.prefetch_batches;
}

Loader::Slot* Loader::start_slot_locked() {
  if (fill_batch_ == batches_per_epoch_) {  // run on into the next epoch, as next() will
    ++fill_epoch_;
    fill_batch_ = 0;
  }
  if (order_epoch_ != fill_epoch_) {
    order_ = epoch_order(fill_epoch_);
    order_epoch_ = fill_epoch_;
  }
  auto slot = std::make_unique<Slot>();
  Batch& b = slot->batch;
  const int64_t begin = fill_batch_ * options_.batch_size + options_.shard_rank * shard_size();
  slot->count = std::min(shard_size(), dataset_.size() - begin);
  const SampleLayout layout = dataset_.sample_layout();
  if (layout.time_steps > 0) {
    b.images =
        Tensor::empty({slot->count, layout.time_steps, layout.channels, layout.height, layout.width}, DType::F32);
  } else {
    b.images = Tensor::empty({slot->count, layout.channels, layout.height, layout.width}, DType::F32);
  }
  b.labels = Tensor::empty({slot->count}, DType::I32);
  b.indices.assign(order_.begin() + begin, order_.begin() + begin + slot->count);
  b.epoch = fill_epoch_;
  b.batch_index = fill_batch_;
  const int32_t* labels = dataset_.labels.data<int32_t>();
  int32_t* dst_labels = b.labels.data<int32_t>();
  for (int64_t k = 0; k < slot->count; ++k) dst_labels[k] = labels[b.indices[size_t(k)]];
  ++fill_batch_;
  slots_.push_back(std::move(slot));
  return slots_.back().get();
}

bool Loader::produce_samples(Slot& slot, int64_t begin, int64_t end) const {
  const Batch& out = slot.batch;
  const uint64_t augment_key = derive_seed(options_.seed, uint64_t(out.epoch), kAugmentTag);
  float* dst_images = out.images.data<float>();
  if (!dataset_.lazy()) {
    const int64_t c = dataset_.channels(), h = dataset_.height(), w = dataset_.width();
    const size_t sample_bytes = size_t(c * h * w);
    const uint8_t* images = dataset_.images.data<uint8_t>();
    const Augmentation& aug = options_.augmentation;
    Generator augment_gen(augment_key);
    std::vector<uint8_t> augmented(aug.enabled() ? sample_bytes : 0);
    for (int64_t k = begin; k < end; ++k) {
      if (stop_.load(std::memory_order_relaxed)) return false;
      const int64_t i = out.indices[size_t(k)];
      const uint8_t* src = images + size_t(i) * sample_bytes;
      if (aug.enabled()) {
        // The sample's own counters: independent of batch size, order and which samples came before.
        augment_gen.set_state(augment_key, uint64_t(i) * kAugmentDrawsPerSample);
        apply_augmentation(src, augmented.data(), c, h, w, aug, draw_augmentation(aug, augment_gen));
        src = augmented.data();
      }
      to_unit_range(src, dst_images + size_t(k) * sample_bytes, sample_bytes);
    }
    return true;
  }

  const SampleSource& source = *dataset_.source;
  const uint64_t draws = source.draws_per_sample();
  const size_t sample = size_t(source.layout().numel());  // (C,H,W), or (T,C,H,W) for frames: batch-major either way
  for (int64_t k = begin; k < end; ++k) {
    if (stop_.load(std::memory_order_relaxed)) return false;
    const int64_t i = out.indices[size_t(k)];
    Generator gen(augment_key);
    gen.set_state(augment_key, uint64_t(i) * draws);
    source.load(dataset_.source_index(i), options_.sample_mode, gen, dst_images + size_t(k) * sample);
  }
  return true;
}

// Called with the lock held by the worker that finished the last sample of `slot`.
void Loader::finish_slot(std::unique_lock<std::mutex>& lock, Slot& slot) {
  if (!slot.error && options_.worker_transform) {
    lock.unlock();
    try {
      std::lock_guard<std::mutex> serial(transform_mutex_);
      options_.worker_transform(slot.batch);
    } catch (...) {
      lock.lock();
      slot.error = std::current_exception();
      failed_ = true;
      slot.ready = true;
      ready_.notify_one();
      return;
    }
    lock.lock();
  }
  slot.ready = true;
  ready_.notify_one();
}

void Loader::worker_main() {
  // Chunks of claimed samples: one at a time for a lazy dataset (a sample is milliseconds of decoding), a share of
  // the batch in memory (a sample is a copy of a few KB, so per-sample locking would dominate).
  const bool per_sample = dataset_.lazy();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_.wait(lock, [&] { return stop_.load() || has_work_locked(); });
    if (stop_.load()) return;
    Slot* slot = nullptr;
    for (const std::unique_ptr<Slot>& s : slots_)
      if (s->claimed < s->count) {
        slot = s.get();
        break;
      }
    if (slot == nullptr) slot = start_slot_locked();
    const int64_t chunk = per_sample ? 1 : std::max<int64_t>(1, (slot->count + threads_ - 1) / threads_);
    const int64_t begin = slot->claimed, end = std::min(slot->count, begin + chunk);
    slot->claimed = end;
    if (slot->claimed < slot->count || has_work_locked()) work_.notify_all();
    lock.unlock();

    std::exception_ptr error;
    bool finished = false;
    try {
      finished = produce_samples(*slot, begin, end);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (!finished && !error) return;  // stopped part-way
    if (error) {
      if (!slot->error) slot->error = error;
      failed_ = true;
    }
    slot->done += end - begin;
    if (slot->done == slot->count) finish_slot(lock, *slot);
  }
}

void Loader::start_workers() {
  fill_epoch_ = epoch_;
  fill_batch_ = next_batch_;
  for (int64_t t = 0; t < threads_; ++t) workers_.emplace_back([this] { worker_main(); });
}

void Loader::stop_workers() {
  if (workers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  work_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  slots_.clear();
  failed_ = false;
  stop_.store(false);
}

bool Loader::next(Batch& batch) {
  if (next_batch_ >= batches_per_epoch_) {
    // End of the epoch: report it once; the workers have already moved on to the next epoch's batches.
    ++epoch_;
    next_batch_ = 0;
    return false;
  }
  if (error_) std::rethrow_exception(error_);
  if (workers_.empty()) start_workers();
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return !slots_.empty() && slots_.front()->ready; });
  std::unique_ptr<Slot> slot = std::move(slots_.front());
  slots_.pop_front();
  lock.unlock();
  work_.notify_all();  // room for another batch
  if (slot->error) {
    error_ = slot->error;
    std::rethrow_exception(error_);
  }
  SG_CHECK(slot->batch.epoch == epoch_ && slot->batch.batch_index == next_batch_,
           "loader: internal order error: expected batch " << next_batch_ << " of epoch " << epoch_ << ", got batch "
                                                           << slot->batch.batch_index << " of epoch "
                                                           << slot->batch.epoch);
  batch = std::move(slot->batch);
  ++next_batch_;
  return true;
}

void Loader::restore(const LoaderState& state) {
  SG_CHECK(state.epoch >= 0, "loader: restore: epoch must be >= 0, got " << state.epoch);
  SG_CHECK(state.next_batch >= 0 && state.next_batch <= batches_per_epoch_,
           "loader: restore: next_batch must be in [0, "
               << batches_per_epoch_ << "] for this dataset and batch size, got " << state.next_batch);
  stop_workers();
  error_ = nullptr;
  options_.seed = state.seed;
  order_epoch_ = -1;  // the seed may have changed
  epoch_ = state.epoch;
  next_batch_ = state.next_batch;
}

}  // namespace spikegrad
