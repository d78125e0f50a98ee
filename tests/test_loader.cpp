// The prefetching loader: coverage per epoch, determinism by seed, exact resume (augmentation
// included), conversion to [0,1], shutdown while the worker is busy or blocked, and errors from the
// worker reaching the consumer; with lazy (SampleSource) datasets: batches independent of the thread count
// and batch size, batch-major frame batches, resume, errors naming the sample, index maps.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "datasets/loader.h"
#include "support/op_cases.h"
#include "support/loader_batches.h"

namespace spikegrad::testing {
namespace {

// n samples of (C,H,W); pixel j of sample i is (i * 37 + j * 11) mod 256, label i mod 10.
Dataset synthetic(int64_t n, int64_t c = 3, int64_t h = 6, int64_t w = 5, const std::string& name = "synthetic") {
  Dataset d;
  d.name = name;
  d.num_classes = 10;
  d.images = Tensor::empty({n, c, h, w}, DType::U8);
  d.labels = Tensor::empty({n}, DType::I32);
  const int64_t per = c * h * w;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < per; ++j) d.images.data<uint8_t>()[i * per + j] = uint8_t((i * 37 + j * 11) & 0xFF);
    d.labels.data<int32_t>()[i] = int32_t(i % 10);
  }
  return d;
}

std::vector<Batch> take(Loader& loader, int64_t count) {
  std::vector<Batch> out;
  Batch b;
  while (int64_t(out.size()) < count && loader.next(b)) out.push_back(b);
  return out;
}


TEST(Loader, EverySampleExactlyOncePerEpochWithMatchingPixelsAndLabels) {
  const Dataset d = synthetic(103);
  LoaderOptions options;
  options.batch_size = 10;
  options.seed = 5;
  Loader loader(d, options);
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  const int64_t per = 3 * 6 * 5;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const std::vector<Batch> batches = whole_epoch(loader);
    ASSERT_EQ(batches.size(), 11u);
    EXPECT_EQ(batches.back().images.shape(), (Shape{3, 3, 6, 5}));
    std::multiset<int64_t> seen;
    for (const Batch& b : batches) {
      EXPECT_EQ(b.epoch, epoch);
      const std::vector<float> pixels = b.images.to_vector<float>();
      const std::vector<int32_t> labels = b.labels.to_vector<int32_t>();
      for (size_t k = 0; k < b.indices.size(); ++k) {
        const int64_t i = b.indices[k];
        seen.insert(i);
        EXPECT_EQ(labels[k], int32_t(i % 10));
        for (int64_t j = 0; j < per; ++j)
          ASSERT_EQ(pixels[k * size_t(per) + size_t(j)], float((i * 37 + j * 11) & 0xFF) / 255.0f);
      }
    }
    EXPECT_EQ(seen.size(), 103u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 103u);
    EXPECT_EQ(loader.state().epoch, epoch + 1);
  }
}

TEST(Loader, ConvertsToUnitRangeLikeToTensor) {
  Dataset d = synthetic(1, 1, 1, 3);
  d.images.data<uint8_t>()[0] = 0;
  d.images.data<uint8_t>()[1] = 128;
  d.images.data<uint8_t>()[2] = 255;
  Loader loader(d, LoaderOptions::evaluation(4));
  Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.images.to_vector<float>(), (std::vector<float>{0.0f, 128.0f / 255.0f, 1.0f}));
  EXPECT_EQ(b.images.dtype(), DType::F32);
  EXPECT_EQ(b.labels.dtype(), DType::I32);
  EXPECT_FALSE(loader.next(b));
}

TEST(Loader, EvaluationKeepsOrderAndLastBatchTrainingDropsIt) {
  const Dataset d = synthetic(25, 1, 2, 2, "cifar10");
  Loader eval(d, LoaderOptions::evaluation(10));
  const std::vector<Batch> batches = whole_epoch(eval);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2].indices, (std::vector<int64_t>{20, 21, 22, 23, 24}));
  EXPECT_EQ(batches[0].indices.front(), 0);

  const LoaderOptions options = LoaderOptions::training(d, 10, 1);
  EXPECT_TRUE(options.drop_last);
  EXPECT_TRUE(options.shuffle);
  EXPECT_EQ(options.augmentation.crop_padding, 4);  // the dataset's default (cifar10)
  Loader train(d, options);
  EXPECT_EQ(train.batches_per_epoch(), 2);
  std::set<int64_t> seen;
  for (const Batch& b : whole_epoch(train)) {
    EXPECT_EQ(b.indices.size(), 10u);
    seen.insert(b.indices.begin(), b.indices.end());
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(Loader, DeterministicBySeedAndDifferentAcrossEpochs) {
  const Dataset d = synthetic(64);
  LoaderOptions options;
  options.batch_size = 16;
  options.augmentation = {2, true};
  options.seed = 11;
  Loader a(d, options), b(d, options);
  const std::vector<Batch> a0 = whole_epoch(a), b0 = whole_epoch(b);
  expect_same_batches(a0, b0);
  const std::vector<Batch> a1 = whole_epoch(a);
  EXPECT_NE(a0[0].indices, a1[0].indices);
  EXPECT_EQ(a.epoch_order(1), [&] {
    std::vector<int64_t> order;
    for (const Batch& batch : a1) order.insert(order.end(), batch.indices.begin(), batch.indices.end());
    return order;
  }());
  options.seed = 12;
  Loader c(d, options);
  EXPECT_NE(whole_epoch(c)[0].indices, a0[0].indices);
}

TEST(Loader, AugmentationDependsOnSampleAndEpochNotOnBatching) {
  const Dataset d = synthetic(40, 3, 8, 8, "cifar10");
  LoaderOptions options;
  options.augmentation = {2, true};
  options.shuffle = false;
  options.seed = 3;
  options.batch_size = 40;
  Loader whole(d, options);
  options.batch_size = 7;
  Loader small(d, options);
  const std::vector<float> one_batch = whole_epoch(whole)[0].images.to_vector<float>();
  std::vector<float> joined;
  for (const Batch& b : whole_epoch(small)) {
    const std::vector<float> v = b.images.to_vector<float>();
    joined.insert(joined.end(), v.begin(), v.end());
  }
  EXPECT_EQ(joined, one_batch);
  // Augmented pixels differ from the raw ones for most samples, and the next epoch draws anew.
  options.augmentation = {};
  Loader plain(d, options);
  std::vector<float> raw;
  for (const Batch& b : whole_epoch(plain)) {
    const std::vector<float> v = b.images.to_vector<float>();
    raw.insert(raw.end(), v.begin(), v.end());
  }
  EXPECT_NE(one_batch, raw);
  EXPECT_NE(whole_epoch(whole)[0].images.to_vector<float>(), one_batch);
}

TEST(Loader, ResumeMidEpochYieldsTheSameBatches) {
  const Dataset d = synthetic(50, 3, 8, 8, "cifar10");
  LoaderOptions options = LoaderOptions::training(d, 8, 77);
  ASSERT_TRUE(options.augmentation.enabled());
  Loader reference(d, options);
  std::vector<Batch> expected = whole_epoch(reference);
  const std::vector<Batch> epoch1 = whole_epoch(reference);
  expected.insert(expected.end(), epoch1.begin(), epoch1.end());  // 6 + 6 batches

  LoaderState saved;
  {
    Loader interrupted(d, options);
    whole_epoch(interrupted);
    ASSERT_EQ(take(interrupted, 2).size(), 2u);
    saved = interrupted.state();
  }  // destroyed with batches prefetched
  EXPECT_EQ(saved.epoch, 1);
  EXPECT_EQ(saved.next_batch, 2);
  EXPECT_EQ(saved.seed, 77u);

  LoaderOptions other_seed = options;
  other_seed.seed = 0;  // the state's seed wins
  Loader resumed(d, other_seed);
  resumed.restore(saved);
  expect_same_batches(whole_epoch(resumed), std::vector<Batch>(expected.begin() + 8, expected.end()));

  // Restoring an existing loader to the start of an earlier epoch replays it too.
  resumed.set_epoch(0);
  expect_same_batches(whole_epoch(resumed), std::vector<Batch>(expected.begin(), expected.begin() + 6));
}

TEST(Loader, RestoreRejectsImpossibleStates) {
  const Dataset d = synthetic(20);
  LoaderOptions options;
  options.batch_size = 8;
  Loader loader(d, options);
  EXPECT_THROW(loader.restore({0, -1, 0}), Error);
  EXPECT_THROW(loader.restore({0, 0, 4}), Error);  // only 3 batches per epoch
  loader.restore({0, 2, 3});                       // end of epoch 2: the next call ends it
  Batch b;
  EXPECT_FALSE(loader.next(b));
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.epoch, 3);
}

TEST(Loader, BadOptionsAndEmptyEpochs) {
  const Dataset d = synthetic(5);
  LoaderOptions options;
  options.batch_size = 0;
  EXPECT_THROW(Loader(d, options), Error);
  options.batch_size = 4;
  options.prefetch_batches = 0;
  EXPECT_THROW(Loader(d, options), Error);
  Dataset bad = synthetic(5);
  bad.labels.data<int32_t>()[1] = 12;
  EXPECT_THROW(Loader(bad, LoaderOptions::evaluation(4)), Error);

  options.prefetch_batches = 1;
  options.batch_size = 8;
  options.drop_last = true;  // 5 samples < one batch: every epoch is empty
  Loader empty(d, options);
  EXPECT_EQ(empty.batches_per_epoch(), 0);
  Batch b;
  EXPECT_FALSE(empty.next(b));
  EXPECT_FALSE(empty.next(b));
  EXPECT_EQ(empty.state().epoch, 2);
}

// Runs `fn` on a detached thread and reports whether it finished within `limit`, so a hang fails
// the test instead of stalling the suite.
bool finishes_within(std::function<void()> fn, std::chrono::milliseconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([fn = std::move(fn), done] {
    fn();
    done->set_value();
  }).detach();
  return finished.wait_for(limit) == std::future_status::ready;
}

TEST(Loader, EarlyDestructionDoesNotHang) {
  const Dataset d = synthetic(200);
  // Worker blocked on a full queue.
  EXPECT_TRUE(finishes_within(
      [d] {  // by value: the dataset must outlive a thread that might hang
        LoaderOptions options;
        options.batch_size = 4;
        options.prefetch_batches = 1;
        Loader loader(d, options);
        Batch b;
        loader.next(b);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the worker fill the queue
      },
      std::chrono::seconds(10)));
  // Worker busy in a slow transform, and a loader that never started its worker.
  EXPECT_TRUE(finishes_within(
      [d] {  // by value: the dataset must outlive a thread that might hang
        LoaderOptions options;
        options.batch_size = 4;
        options.worker_transform = [](Batch&) { std::this_thread::sleep_for(std::chrono::milliseconds(30)); };
        Loader loader(d, options);
        Batch b;
        loader.next(b);
        Loader never_used(d, options);
      },
      std::chrono::seconds(10)));
}

TEST(Loader, WorkerErrorReachesTheConsumerAfterEarlierBatches) {
  const Dataset d = synthetic(40);
  LoaderOptions options;
  options.batch_size = 4;
  options.shuffle = false;
  options.worker_transform = [](Batch& b) {
    SG_CHECK(b.batch_index != 2, "test transform: refusing batch " << b.batch_index);
  };
  Loader loader(d, options);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  ASSERT_TRUE(loader.next(b));
  for (int attempt = 0; attempt < 2; ++attempt) {  // the failure sticks until restore()
    try {
      loader.next(b);
      ADD_FAILURE() << "the worker's error was not re-thrown";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("refusing batch 2"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(loader.state().next_batch, 2);
  loader.restore({0, 0, 3});
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.batch_index, 3);
  EXPECT_EQ(b.indices.front(), 12);
}

// A lazy source whose sample i, (C,H,W) or (T,C,H,W), holds at element 0 its first draw's (mod 997) / 997 in
// Train mode (0 in Evaluate) and i * 1000 + j at element j > 0; it draws `draws` counters, sample `fail_at`
// throws, and each load sleeps `sleep_ms`.
class CountingSource final : public SampleSource {
 public:
  CountingSource(int64_t n, SampleLayout layout, uint64_t draws, int64_t fail_at = -1, int sleep_ms = 0)
      : n_(n), layout_(layout), draws_(draws), fail_at_(fail_at), sleep_ms_(sleep_ms) {}
  int64_t size() const override { return n_; }
  SampleLayout layout() const override { return layout_; }
  uint64_t draws_per_sample() const override { return draws_; }
  void load(int64_t index, SampleMode mode, Generator& gen, float* dst) const override {
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    SG_CHECK(index != fail_at_, "counting source: cannot read " << describe(index));
    dst[0] = mode == SampleMode::Train ? float(gen.next_u32() % 997) / 997.f : 0.f;
    for (uint64_t d = 1; d < draws_; ++d) gen.next_u32();  // use the rest of the reservation, as a real source may
    for (int64_t j = 1; j < layout_.numel(); ++j) dst[j] = float(index * 1000 + j);
  }
  std::string describe(int64_t index) const override { return "sample-" + std::to_string(index) + ".bin"; }

 private:
  int64_t n_;
  SampleLayout layout_;
  uint64_t draws_;
  int64_t fail_at_;
  int sleep_ms_;
};

Dataset lazy_dataset(std::shared_ptr<const SampleSource> source, const std::string& name = "lazy") {
  Dataset d;
  d.name = name;
  d.num_classes = 7;
  d.labels = Tensor::empty({source->size()}, DType::I32);
  for (int64_t i = 0; i < source->size(); ++i) d.labels.data<int32_t>()[i] = int32_t((i * 3) % 7);
  d.source = std::move(source);
  return d;
}

// Every sample of an epoch keyed by dataset index: its label and pixels. Plain (B,C,H,W) and frame (B,T,C,H,W)
// batches both hold each example contiguously along dim 0.
std::map<int64_t, std::pair<int32_t, std::vector<float>>> samples_by_index(const std::vector<Batch>& batches) {
  std::map<int64_t, std::pair<int32_t, std::vector<float>>> out;
  for (const Batch& b : batches) {
    const int64_t count = int64_t(b.indices.size());
    EXPECT_EQ(b.images.size(0), count);
    const int64_t per_sample = b.images.numel() / count;
    const std::vector<float> v = b.images.to_vector<float>();
    const std::vector<int32_t> labels = b.labels.to_vector<int32_t>();
    for (int64_t k = 0; k < count; ++k) {
      const auto first = v.begin() + k * per_sample;
      std::vector<float> sample(first, first + per_sample);
      EXPECT_TRUE(out.emplace(b.indices[size_t(k)], std::make_pair(labels[size_t(k)], sample)).second);
    }
  }
  return out;
}

TEST(Loader, LazyBatchesDoNotDependOnThreadCountOrBatchSize) {
  const Dataset d = lazy_dataset(std::make_shared<CountingSource>(53, SampleLayout{0, 2, 3, 2}, 5));
  LoaderOptions options = LoaderOptions::training(d, 8, 21);
  options.decode_threads = 1;
  Loader one(d, options);
  EXPECT_EQ(one.decode_threads(), 1);
  const std::vector<Batch> reference = whole_epoch(one);
  ASSERT_EQ(reference.size(), 6u);  // 53 / 8, last partial batch dropped
  for (const int64_t threads : {2, 3, 8}) {
    options.decode_threads = threads;
    Loader many(d, options);
    EXPECT_EQ(many.decode_threads(), threads);
    expect_same_batches(whole_epoch(many), reference);
  }
  // Another batch size regroups the same samples with the same contents.
  options.batch_size = 5;
  options.drop_last = false;
  options.decode_threads = 4;
  Loader regrouped(d, options);
  const auto by_index = samples_by_index(whole_epoch(regrouped));
  ASSERT_EQ(by_index.size(), 53u);
  for (const auto& [index, sample] : samples_by_index(reference)) {
    EXPECT_EQ(by_index.at(index), sample) << "sample " << index;
    EXPECT_EQ(sample.first, int32_t((index * 3) % 7));
    EXPECT_GE(sample.second[0], 0.f);
    EXPECT_LT(sample.second[0], 1.f);
    EXPECT_EQ(sample.second[5], float(index * 1000 + 5));
  }
  // The draws are the sample's own: some samples' jitters differ, and the next epoch draws anew.
  std::set<float> jitters;
  for (const auto& [index, sample] : by_index) jitters.insert(sample.second[0]);
  EXPECT_GT(jitters.size(), 40u);
  EXPECT_NE(samples_by_index(whole_epoch(regrouped)), by_index);
}

TEST(Loader, InMemoryAugmentationDoesNotDependOnThreadCount) {
  const Dataset d = synthetic(45, 3, 8, 8, "cifar10");
  LoaderOptions options = LoaderOptions::training(d, 9, 4);
  Loader one(d, options);
  EXPECT_EQ(one.decode_threads(), 1);  // auto: one thread for in-memory data
  options.decode_threads = 3;
  Loader three(d, options);
  expect_same_batches(whole_epoch(three), whole_epoch(one));
}

TEST(Loader, FrameSequencesAreBatchedBatchMajor) {
  const SampleLayout layout{3, 2, 2, 2};  // T = 3 frames of (2,2,2)
  const Dataset d = lazy_dataset(std::make_shared<CountingSource>(10, layout, 1));
  LoaderOptions options = LoaderOptions::evaluation(4);
  options.decode_threads = 2;
  Loader loader(d, options);
  const std::vector<Batch> batches = whole_epoch(loader);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].images.shape(), (Shape{4, 3, 2, 2, 2}));
  EXPECT_EQ(batches[2].images.shape(), (Shape{2, 3, 2, 2, 2}));
  // Element (b, t, e) of batch 1 is element t*8 + e of sample 4 + b (element 0 is the Evaluate-mode zero).
  const std::vector<float> v = batches[1].images.to_vector<float>();
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t e = 0; e < 8; ++e)
        ASSERT_EQ(v[size_t((b * 3 + t) * 8 + e)], t + e == 0 ? 0.f : float((4 + b) * 1000 + t * 8 + e))
            << t << " " << b << " " << e;
}

TEST(Loader, LazyResumeMidEpochAndIndexMaps) {
  const Dataset full = lazy_dataset(std::make_shared<CountingSource>(40, SampleLayout{0, 1, 2, 2}, 2));
  const TrainValidationSplit split = split_train_validation(full, 10, 3);
  EXPECT_EQ(split.train.source, full.source);  // shared, not copied
  ASSERT_EQ(split.train.size(), 30);
  const Dataset d = select_samples(split.train, {29, 0, 5, 5, 12, 7, 8, 9, 10, 11, 1, 2, 3});
  LoaderOptions options = LoaderOptions::training(d, 3, 9);
  options.decode_threads = 3;
  Loader reference(d, options);
  std::vector<Batch> expected = whole_epoch(reference);
  const std::vector<Batch> epoch1 = whole_epoch(reference);
  expected.insert(expected.end(), epoch1.begin(), epoch1.end());  // 4 + 4 batches
  for (const Batch& b : expected)
    for (size_t k = 0; k < b.indices.size(); ++k) {  // row -> split row -> source sample
      const int64_t source_index = d.source_index(b.indices[k]);
      EXPECT_EQ(b.images.to_vector<float>()[k * 4 + 1], float(source_index * 1000 + 1));
      EXPECT_EQ(b.labels.to_vector<int32_t>()[k], int32_t((source_index * 3) % 7));
    }
  LoaderState saved;
  {
    Loader interrupted(d, options);
    whole_epoch(interrupted);
    ASSERT_EQ(take(interrupted, 1).size(), 1u);
    saved = interrupted.state();
  }
  options.decode_threads = 1;
  Loader resumed(d, options);
  resumed.restore(saved);
  expect_same_batches(whole_epoch(resumed), std::vector<Batch>(expected.begin() + 5, expected.end()));
}

TEST(Loader, LazyErrorNamesTheSampleAfterEarlierBatches) {
  const Dataset d = lazy_dataset(std::make_shared<CountingSource>(30, SampleLayout{0, 1, 1, 1}, 1, 13));
  LoaderOptions options = LoaderOptions::evaluation(4);
  options.decode_threads = 4;
  Loader loader(d, options);
  Batch b;
  for (int k = 0; k < 3; ++k) ASSERT_TRUE(loader.next(b));  // samples 0..11
  for (int attempt = 0; attempt < 2; ++attempt) expect_error([&] { loader.next(b); }, "cannot read sample-13.bin");
  loader.restore({0, 0, 4});
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.indices.front(), 16);
}

TEST(Loader, LazyOptionChecksAndPromptStopWithManyThreads) {
  const Dataset d = lazy_dataset(std::make_shared<CountingSource>(64, SampleLayout{0, 1, 1, 1}, 1, -1, 15));
  LoaderOptions options = LoaderOptions::evaluation(8);
  options.augmentation = {4, true};
  expect_error([&] { Loader(d, options); }, {"'lazy' is decoded on demand", "sample_mode"});
  options.augmentation = {};
  options.decode_threads = -2;
  expect_error([&] { Loader(d, options); }, "decode_threads must be in [0, 256]");
  options.decode_threads = 0;
  EXPECT_GE(Loader(d, options).decode_threads(), 1);  // hardware threads
  options.decode_threads = LoaderOptions::kAutoThreads;
  EXPECT_GE(Loader(d, options).decode_threads(), 1);
  EXPECT_TRUE(finishes_within(
      [d] {
        LoaderOptions o = LoaderOptions::evaluation(8);
        o.decode_threads = 6;
        Loader loader(d, o);
        Batch b;
        loader.next(b);
      },
      std::chrono::seconds(10)));
  Dataset bad = d;
  bad.source_indices = std::make_shared<std::vector<int64_t>>(64, 64);
  expect_error([&] { Loader(bad, LoaderOptions::evaluation(4)); }, "refers to source sample 64, outside [0, 64)");
  bad.source_indices = nullptr;
  bad.images = Tensor::zeros({64, 1, 1, 1}, DType::U8);
  expect_error([&] { check_dataset(bad, "ctx"); }, "either in-memory images or a sample source");
}

}  // namespace
}  // namespace spikegrad::testing
