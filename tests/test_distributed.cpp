// Data-parallel training's single-process parts (README "Scaling out"; the multi-rank checks are
// tests/mpi/, run under mpirun): the loader's shards cover every batch exactly once in the single-process
// order, the tape's "gradient is final" hook fires once per leaf after its last contribution and changes no
// gradient, the gradient buckets' packing, and the one-process world's collectives being identities.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "datasets/loader.h"
#include "engine/distributed.h"
#include "engine/distributed_gradients.h"
#include "engine/ops.h"
#include "engine/tape.h"
#include "support/loader_batches.h"

namespace spikegrad::testing {
namespace {

Dataset numbered_dataset(int64_t n) {
  Dataset d;
  d.name = "numbered";
  d.num_classes = 10;
  d.images = Tensor::empty({n, 1, 4, 4}, DType::U8);
  d.labels = Tensor::empty({n}, DType::I32);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 16; ++j) d.images.data<uint8_t>()[i * 16 + j] = uint8_t((i * 13 + j * 7) & 0xFF);
    d.labels.data<int32_t>()[i] = int32_t(i % 10);
  }
  return d;
}

LoaderOptions sharded(int64_t batch, int64_t rank, int64_t count) {
  LoaderOptions o;
  o.batch_size = batch;
  o.seed = 11;
  o.drop_last = true;
  o.augmentation = Augmentation{1, true};  // per-sample random crop + flip: must not depend on the shard
  o.shard_rank = rank;
  o.shard_count = count;
  return o;
}

TEST(DistributedShards, TheRanksShardsOfEachBatchAreTheOneProcessBatchExactlyOnce) {
  const Dataset d = numbered_dataset(70);  // 8 whole batches of 8, 6 examples dropped as in one process
  for (int64_t ranks : {2, 4}) {
    Loader whole(d, sharded(8, 0, 1));
    std::vector<std::unique_ptr<Loader>> shards;
    for (int64_t r = 0; r < ranks; ++r) shards.push_back(std::make_unique<Loader>(d, sharded(8, r, ranks)));
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      const std::vector<Batch> reference = whole_epoch(whole);
      std::vector<std::vector<Batch>> parts;
      for (auto& s : shards) parts.push_back(whole_epoch(*s));
      ASSERT_EQ(reference.size(), 8u);
      std::set<int64_t> seen_this_epoch;
      for (size_t k = 0; k < reference.size(); ++k) {
        std::vector<int64_t> joined;
        std::vector<float> pixels;
        for (int64_t r = 0; r < ranks; ++r) {
          const Batch& b = parts[size_t(r)].at(k);
          EXPECT_EQ(b.batch_index, int64_t(k));
          EXPECT_EQ(b.indices.size(), size_t(8 / ranks));
          joined.insert(joined.end(), b.indices.begin(), b.indices.end());
          const std::vector<float> p = b.images.to_vector<float>();
          pixels.insert(pixels.end(), p.begin(), p.end());
        }
        EXPECT_EQ(joined, reference[k].indices) << ranks << " ranks, epoch " << epoch << " batch " << k;
        EXPECT_EQ(pixels, reference[k].images.to_vector<float>()) << "augmentation depends on the shard";
        for (int64_t i : joined) EXPECT_TRUE(seen_this_epoch.insert(i).second) << "example " << i << " twice";
      }
      EXPECT_EQ(seen_this_epoch.size(), 64u);
    }
  }
}

TEST(DistributedShards, ResumeMidEpochWithAnotherRankCountContinuesTheSameOrder) {
  const Dataset d = numbered_dataset(48);
  Loader two(d, sharded(8, 1, 2));
  Loader four(d, sharded(8, 2, 4));
  two.restore({11, 1, 3});
  four.restore({11, 1, 3});
  Batch a, b;
  ASSERT_TRUE(two.next(a));
  ASSERT_TRUE(four.next(b));
  // Rank 1 of 2 holds examples [4, 8) of batch 3; rank 2 of 4 holds [4, 6) of the same batch.
  EXPECT_EQ(std::vector<int64_t>(a.indices.begin(), a.indices.begin() + 2), b.indices);
}

TEST(DistributedShards, ABatchThatCannotBeSplitEvenlyOrAPartialBatchIsRefused) {
  const Dataset d = numbered_dataset(40);
  EXPECT_THROW({ Loader l(d, sharded(9, 0, 2)); }, Error);
  LoaderOptions keep_last = sharded(8, 0, 2);
  keep_last.drop_last = false;
  EXPECT_THROW({ Loader l(d, keep_last); }, Error);
  EXPECT_THROW({ Loader l(d, sharded(8, 2, 2)); }, Error);
}

// y = sum(relu(x·w1 + b1)·w2 + b2): w1 is read first in forward, so its gradient is final last.
struct TwoLayers {
  Tensor w1, b1, w2, b2, x;
  TwoLayers() {
    Generator gen(3);
    w1 = rand_normal({5, 4}, gen).set_requires_grad(true);
    b1 = rand_normal({5}, gen).set_requires_grad(true);
    w2 = rand_normal({3, 5}, gen).set_requires_grad(true);
    b2 = rand_normal({3}, gen).set_requires_grad(true);
    x = rand_normal({6, 4}, gen);
  }
  Tensor loss(Tape& tape) const {
    Tensor h = ops::relu(tape, ops::linear(tape, x, w1, b1));
    Tensor y = ops::linear(tape, h, w2, b2);
    return ops::sum(tape, ops::mul(tape, y, y));
  }
};

TEST(TapeGradFinalHook, EachLeafOnceAfterItsLastContributionWithUnchangedGradients) {
  TwoLayers plain, hooked;
  Tape t1, t2;
  t1.backward(plain.loss(t1));
  std::vector<std::string> order;
  std::map<std::string, std::vector<float>> at_hook;
  const std::map<uint64_t, std::string> names = {{hooked.w1.impl()->id, "w1"}, {hooked.b1.impl()->id, "b1"},
                                                 {hooked.w2.impl()->id, "w2"}, {hooked.b2.impl()->id, "b2"}};
  t2.backward(hooked.loss(t2), [&](const Tensor& leaf) {
    const std::string& name = names.at(leaf.impl()->id);
    order.push_back(name);
    at_hook[name] = leaf.grad().to_vector<float>();
  });
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(std::set<std::string>(order.begin(), order.end()).size(), 4u);
  // The second layer's parameters are final before the first's.
  const auto pos = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
  EXPECT_LT(pos("w2"), pos("w1"));
  EXPECT_LT(pos("b2"), pos("b1"));
  // What the hook saw is the final gradient, bit for bit the one backward without a hook computes.
  EXPECT_EQ(at_hook["w1"], hooked.w1.grad().to_vector<float>());
  EXPECT_EQ(at_hook["w2"], hooked.w2.grad().to_vector<float>());
  EXPECT_EQ(plain.w1.grad().to_vector<float>(), hooked.w1.grad().to_vector<float>());
  EXPECT_EQ(plain.b1.grad().to_vector<float>(), hooked.b1.grad().to_vector<float>());
  EXPECT_EQ(plain.w2.grad().to_vector<float>(), hooked.w2.grad().to_vector<float>());
  EXPECT_EQ(plain.b2.grad().to_vector<float>(), hooked.b2.grad().to_vector<float>());
}

TEST(TapeGradFinalHook, ALeafTheLossDoesNotReachGetsZerosAndItsHook) {
  Generator gen(4);
  Tensor used = rand_normal({3}, gen).set_requires_grad(true);
  Tensor unused = rand_normal({3}, gen).set_requires_grad(true);
  Tape tape;
  Tensor loss = ops::sum(tape, ops::mul(tape, used, used));
  ops::mul(tape, unused, unused);  // on the tape, but not on the loss's path
  int calls = 0;
  tape.backward(loss, [&](const Tensor&) { ++calls; });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(unused.grad().to_vector<float>(), std::vector<float>(3, 0.0f));
}

TEST(GradientBuckets, PackedInReverseOrderUpToTheSizeAndAnOversizedParameterAlone) {
  NamedTensors params;
  for (auto [name, numel] : std::vector<std::pair<std::string, int64_t>>{{"a", 10}, {"b", 30}, {"c", 5}, {"d", 100}, {"e", 20}})
    params.push_back({name, Tensor::zeros({numel})});
  const dist::Communicator one_process;
  dist::GradientAverager buckets(one_process, params, /*bucket_bytes=*/40 * 4);
  ASSERT_EQ(buckets.num_buckets(), 4);
  EXPECT_EQ(buckets.bucket_names(0), (std::vector<std::string>{"e"}));
  EXPECT_EQ(buckets.bucket_names(1), (std::vector<std::string>{"d"}));
  EXPECT_EQ(buckets.bucket_names(2), (std::vector<std::string>{"c", "b"}));
  EXPECT_EQ(buckets.bucket_names(3), (std::vector<std::string>{"a"}));
}

TEST(OneProcessWorld, CollectivesAreIdentitiesAndGradientsAreUntouched) {
  const dist::Communicator one;
  EXPECT_EQ(one.rank(), 0);
  EXPECT_EQ(one.size(), 1);
  double v[2] = {1.5, -2.0};
  one.sum(v, 2, "test");
  EXPECT_EQ(v[0], 1.5);
  EXPECT_EQ(one.gather(7, "test"), (std::vector<uint64_t>{7}));
  EXPECT_EQ(one.broadcast("x", "test"), "x");
  EXPECT_EQ(one.agree_with_rank0("", "test"), "");
  EXPECT_EQ(one.agree_with_rank0("bad", "test"), "bad");
  NamedTensors params{{"w", Tensor::zeros({3}).set_requires_grad(true)}};
  params[0].tensor.set_grad(Tensor::full({3}, 0.25));
  dist::GradientAverager averager(one, params);
  averager.gradient_final(params[0].tensor);
  averager.finish();
  EXPECT_EQ(params[0].tensor.grad().to_vector<float>(), std::vector<float>(3, 0.25f));
  EXPECT_THROW(dist::Communicator().set_timeout(0), Error);
}

}  // namespace
}  // namespace spikegrad::testing
