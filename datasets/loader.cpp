#include "datasets/loader.h"

#include <algorithm>
#include <array>
#include <numeric>

namespace spikegrad {
namespace {

// Purpose tags for derive_seed: the shuffle and the augmentation of one (seed, epoch) are independent streams.
constexpr uint64_t kShuffleTag = 0x53485546;  // 'SHUF'
constexpr uint64_t kAugmentTag = 0x4155474D;  // 'AUGM'
constexpr int64_t kMaxPrefetch = 64;

// pixel / 255 in float32, as torchvision's ToTensor computes it; a table makes the conversion a load.
const std::array<float, 256>& unit_scale_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[size_t(i)] = float(i) / 255.0f;
    return t;
  }();
  return table;
}

}  // namespace

LoaderOptions LoaderOptions::training(const Dataset& dataset, int64_t batch_size, uint64_t seed) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = true;
  o.drop_last = true;
  o.augmentation = default_augmentation(dataset.name);
  o.seed = seed;
  return o;
}

LoaderOptions LoaderOptions::evaluation(int64_t batch_size) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = false;
  o.drop_last = false;
  return o;
}

Loader::Loader(const Dataset& dataset, LoaderOptions options) : dataset_(dataset), options_(std::move(options)) {
  check_dataset(dataset_, "loader: dataset '" + dataset_.name + "'");
  SG_CHECK(options_.batch_size >= 1, "loader: batch_size must be >= 1, got " << options_.batch_size);
  SG_CHECK(options_.prefetch_batches >= 1 && options_.prefetch_batches <= kMaxPrefetch,
           "loader: prefetch_batches must be in [1, " << kMaxPrefetch << "], got " << options_.prefetch_batches);
  SG_CHECK(options_.augmentation.crop_padding >= 0,
           "loader: augmentation crop_padding must be >= 0, got " << options_.augmentation.crop_padding);
  const int64_t n = dataset_.size();
  batches_per_epoch_ = options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

Loader::~Loader() { stop_worker(); }

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

bool Loader::build_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index, Batch& out) const {
  const int64_t begin = batch_index * options_.batch_size;
  const int64_t count = std::min(options_.batch_size, dataset_.size() - begin);
  const int64_t c = dataset_.channels(), h = dataset_.height(), w = dataset_.width();
  const size_t sample_bytes = size_t(c * h * w);
  out.images = Tensor::empty({count, c, h, w}, DType::F32);
  out.labels = Tensor::empty({count}, DType::I32);
  out.indices.assign(order.begin() + begin, order.begin() + begin + count);
  out.epoch = epoch;
  out.batch_index = batch_index;

  const uint8_t* images = dataset_.images.data<uint8_t>();
  const int32_t* labels = dataset_.labels.data<int32_t>();
  float* dst_images = out.images.data<float>();
  int32_t* dst_labels = out.labels.data<int32_t>();
  const std::array<float, 256>& to_unit = unit_scale_table();
  const Augmentation& aug = options_.augmentation;
  const uint64_t augment_key = derive_seed(options_.seed, uint64_t(epoch), kAugmentTag);
  Generator augment_gen(augment_key);
  std::vector<uint8_t> augmented(aug.enabled() ? sample_bytes : 0);

  for (int64_t k = 0; k < count; ++k) {
    if (stop_.load(std::memory_order_relaxed)) return false;
    const int64_t i = out.indices[size_t(k)];
    const uint8_t* src = images + size_t(i) * sample_bytes;
    if (aug.enabled()) {
      // The sample's own counters: independent of batch size, order and which samples came before.
      augment_gen.set_state(augment_key, uint64_t(i) * kAugmentDrawsPerSample);
      apply_augmentation(src, augmented.data(), c, h, w, aug, draw_augmentation(aug, augment_gen));
      src = augmented.data();
    }
    float* dst = dst_images + size_t(k) * sample_bytes;
    for (size_t j = 0; j < sample_bytes; ++j) dst[j] = to_unit[src[j]];
    dst_labels[k] = labels[i];
  }
  return true;
}

void Loader::worker_main(int64_t epoch, int64_t batch_index) {
  try {
    std::vector<int64_t> order = epoch_order(epoch);
    for (;;) {
      if (batch_index == batches_per_epoch_) {  // run on into the next epoch, as next() will
        ++epoch;
        batch_index = 0;
        order = epoch_order(epoch);
      }
      Batch batch;
      if (!build_batch(order, epoch, batch_index, batch)) return;
      if (options_.worker_transform) options_.worker_transform(batch);
      std::unique_lock<std::mutex> lock(mutex_);
      space_.wait(lock, [&] { return stop_.load() || int64_t(queue_.size()) < options_.prefetch_batches; });
      if (stop_.load()) return;
      queue_.push_back(std::move(batch));
      ready_.notify_one();
      ++batch_index;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
    ready_.notify_all();
  }
}

void Loader::start_worker() { worker_ = std::thread([this, e = epoch_, b = next_batch_] { worker_main(e, b); }); }

void Loader::stop_worker() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
  }
  space_.notify_all();
  worker_.join();
  queue_.clear();
  error_ = nullptr;
  stop_.store(false);
}

bool Loader::next(Batch& batch) {
  if (next_batch_ >= batches_per_epoch_) {
    // End of the epoch: report it once; the worker has already moved on to the next epoch's batches.
    ++epoch_;
    next_batch_ = 0;
    return false;
  }
  if (!worker_.joinable()) start_worker();
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return !queue_.empty() || error_ != nullptr; });
  if (queue_.empty()) std::rethrow_exception(error_);
  batch = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  space_.notify_one();
  SG_CHECK(batch.epoch == epoch_ && batch.batch_index == next_batch_,
           "loader: internal order error: expected batch " << next_batch_ << " of epoch " << epoch_ << ", got batch "
                                                           << batch.batch_index << " of epoch " << batch.epoch);
  ++next_batch_;
  return true;
}

void Loader::restore(const LoaderState& state) {
  SG_CHECK(state.epoch >= 0, "loader: restore: epoch must be >= 0, got " << state.epoch);
  SG_CHECK(state.next_batch >= 0 && state.next_batch <= batches_per_epoch_,
           "loader: restore: next_batch must be in [0, " << batches_per_epoch_ << "] for this dataset and batch size, got "
                                                         << state.next_batch);
  stop_worker();
  options_.seed = state.seed;
  epoch_ = state.epoch;
  next_batch_ = state.next_batch;
}

}  // namespace spikegrad
