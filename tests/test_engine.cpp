// Tensor, tape, caching allocator and RNG.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/allocator.h"
#include "kernels/philox.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

TEST(Tensor, FactoriesViewsAndCopies) {
  Tensor t = Tensor::full({2, 3}, 1.5);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.size(-1), 3);
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(6, 1.5f));
  Tensor v = t.view({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 2}));
  EXPECT_EQ(v.raw_data(), t.raw_data()) << "views share storage";
  Tensor c = t.clone();
  EXPECT_NE(c.raw_data(), t.raw_data());
  Tensor s = Tensor::from_vector<int32_t>({1, 2, 3, 4, 5, 6}, {3, 2}).slice0(1, 3);
  EXPECT_EQ(s.to_vector<int32_t>(), (std::vector<int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(Tensor::from_vector<double>({2.5}, {}).to(DType::F32).item(), 2.5);
  EXPECT_THROW(t.view({4, 2}), Error);
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_THROW(Tensor::from_vector<float>({1, 2}, {3}), Error);
  EXPECT_THROW(Tensor::zeros({2}, DType::I32).set_requires_grad(true), Error);
}

TEST(Tensor, CudaTensorsNeedADevice) {
  if (cuda_ok()) {
    Tensor t = Tensor::full({4}, 2.0, DType::F32, Device::CUDA);
    EXPECT_EQ(t.to(Device::CPU).to_vector<float>(), std::vector<float>(4, 2.f));
  } else {
    try {
      Tensor::zeros({4}, DType::F32, Device::CUDA);
      FAIL() << "allocating on CUDA without a device must throw";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos) << e.what();
    }
  }
}

TEST(Tape, AccumulatesIntoLeavesAndZeroGradDrops) {
  Tape tape;
  Tensor a = Tensor::from_vector<double>({2, 3}, {2});
  a.set_requires_grad(true);
  Tensor y = ops::sum(tape, ops::mul(tape, a, a));  // y = Σ a², dy/da = 2a
  tape.backward(y);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{4, 6}));
  tape.backward(y);  // a second backward over the same tape accumulates
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{8, 12}));
  a.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_EQ(tape.size(), 2u);
}

TEST(Tape, GradWrtInputLeavesParameterGradsUntouched) {
  // The attack pattern: d loss / d x only; parameter w requires grad but must not accumulate.
  Tape tape;
  Tensor x = Tensor::from_vector<double>({1, 2}, {2});
  Tensor w = Tensor::from_vector<double>({3, 4}, {2});
  w.set_requires_grad(true);
  x.set_requires_grad(true);
  Tensor loss = ops::sum(tape, ops::mul(tape, x, w));
  std::vector<Tensor> g = tape.grad(loss, {x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{3, 4}));
  EXPECT_FALSE(w.grad().defined()) << "parameter gradient must not be touched";
  EXPECT_FALSE(x.grad().defined()) << "grad() returns gradients, it does not store them";
}

TEST(Tape, OnlyNeededGradientsAreComputed) {
  // b does not require grad: the node's backward must be handed nullptr for it, and nothing else.
  Tape tape;
  Tensor a = Tensor::from_vector<double>({1}, {1});
  Tensor b = Tensor::from_vector<double>({5}, {1});
  a.set_requires_grad(true);
  Tensor y = ops::mul(tape, a, b);
  std::vector<bool> wanted;
  Tensor z = Tensor::zeros({1}, DType::F64);
  tape.record("probe", {a, b, y}, {z}, [&](const std::vector<Tensor>&, const std::vector<Tensor*>& gx) {
    for (Tensor* g : gx) wanted.push_back(g != nullptr);
  });
  tape.grad(z, {a});
  EXPECT_EQ(wanted, (std::vector<bool>{true, false, true}));
  // Asking only for y's gradient must not run the mul node at all (a is not wanted).
  wanted.clear();
  tape.grad(z, {y});
  EXPECT_EQ(wanted, (std::vector<bool>{false, false, true}));
  EXPECT_FALSE(b.grad().defined());
  EXPECT_FALSE(a.grad().defined());
}

TEST(Tape, ActivationsNoBackwardNeedsAreFreedAfterForward) {
  // add_scalar's and scale's backward need nothing from their inputs, so the intermediate y1 must die
  // with its last handle: the tape keeps identities, not data.
  Tape tape;
  Tensor x = Tensor::from_vector<double>({1, 2}, {2});
  x.set_requires_grad(true);
  std::weak_ptr<TensorImpl> intermediate;
  Tensor y2;
  {
    Tensor y1 = ops::add_scalar(tape, x, 1.0);
    intermediate = y1.impl_ptr();
    y2 = ops::scale(tape, y1, 3.0);
  }
  EXPECT_TRUE(intermediate.expired()) << "the tape must not keep an activation alive";
  // mul's backward needs both inputs: its closure keeps them, whatever the caller drops.
  std::weak_ptr<TensorImpl> kept;
  Tensor z;
  {
    Tensor a = ops::add_scalar(tape, x, 0.5);
    kept = a.impl_ptr();
    z = ops::mul(tape, a, a);
  }
  EXPECT_FALSE(kept.expired());
  tape.backward(ops::sum(tape, ops::add(tape, y2, z)));
  // d/dx [3(x+1) + (x+0.5)^2] = 3 + 2(x+0.5)
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6, 8}));
}

TEST(Tape, NoGradGuardStopsRecording) {
  Tape tape;
  Tensor a = Tensor::from_vector<float>({1}, {1});
  a.set_requires_grad(true);
  {
    NoGradGuard ng;
    Tensor y = ops::scale(tape, a, 2);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_TRUE(ops::scale(tape, a, 2).requires_grad());
  EXPECT_EQ(tape.size(), 1u);
}

TEST(Tape, BackwardOnNonScalarThrows) {
  Tape tape;
  Tensor a = Tensor::from_vector<float>({1, 2}, {2});
  a.set_requires_grad(true);
  Tensor y = ops::scale(tape, a, 2);
  try {
    tape.backward(y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("backward: loss must be a scalar, got shape (2)"), std::string::npos) << e.what();
  }
}

TEST(Allocator, WarmLoopMakesNoSystemAllocations) {
  CachingAllocator alloc(Device::CPU);
  auto step = [&] {
    auto a = alloc.allocate(1000), b = alloc.allocate(3 << 20), c = alloc.allocate(77);
    alloc.release(b);
    alloc.release(a);
    alloc.release(c);
  };
  step();
  const AllocatorStats warm = alloc.stats();
  for (int i = 0; i < 10; ++i) step();
  const AllocatorStats after = alloc.stats();
  EXPECT_EQ(after.system_allocs, warm.system_allocs) << "a warm loop must be served from the cache";
  EXPECT_EQ(after.cache_hits, warm.cache_hits + 30);
  EXPECT_EQ(after.current_bytes, 0u);
  EXPECT_GE(after.peak_bytes, CachingAllocator::round_size(3 << 20));
  alloc.empty_cache();
  EXPECT_EQ(alloc.stats().reserved_bytes, 0u);
}

// Out of memory (here: the reserve limit) first gives the cached blocks back and retries; only when that
// cannot help does it fail, and the error says what was asked for and what was live.
TEST(Allocator, OutOfMemoryEmptiesTheCacheAndRetries) {
  CachingAllocator alloc(Device::CPU);
  const size_t mib = size_t(1) << 20;
  alloc.set_reserve_limit(8 * mib);
  auto a = alloc.allocate(4 * mib), b = alloc.allocate(2 * mib);
  alloc.release(a);  // 4 MiB cached, 2 MiB live
  // 6 MiB: no cached block fits (4 < 6) and 6 + 6 > 8, so the 4 MiB cached block goes back and 2 + 6 fits.
  auto c = alloc.allocate(6 * mib);
  EXPECT_EQ(alloc.stats().oom_retries, 1u);
  EXPECT_EQ(alloc.stats().reserved_bytes, 8 * mib);
  // Nothing cached, nothing to give back: a clear error, and the allocator still works afterwards.
  expect_error([&] { alloc.allocate(2 * mib); },
               {"cpu allocator: the reserve limit of 8388608 bytes would be passed",
                "(allocating 2097152 bytes with 8388608 bytes live and nothing cached)"});
  alloc.release(b);
  alloc.release(c);
  auto d = alloc.allocate(6 * mib);  // served from the cache
  EXPECT_EQ(alloc.stats().oom_retries, 1u);
  alloc.release(d);
  alloc.empty_cache();
}

TEST(Allocator, PeakTracksLiveTensors) {
  CachingAllocator& cpu = allocator(Device::CPU);
  cpu.reset_peak();
  const size_t base = cpu.stats().current_bytes;
  {
    Tensor big = Tensor::empty({1 << 20});  // 4 MiB
    EXPECT_GE(cpu.stats().current_bytes, base + (size_t(4) << 20));
  }
  EXPECT_EQ(cpu.stats().current_bytes, base);
  EXPECT_GE(cpu.stats().peak_bytes, base + (size_t(4) << 20));
}

TEST(Allocator, SmallRequestDoesNotPinHugeBlock) {
  CachingAllocator alloc(Device::CPU);
  auto big = alloc.allocate(64 << 20);
  alloc.release(big);
  auto small = alloc.allocate(512);
  EXPECT_NE(small.ptr, big.ptr);
  EXPECT_EQ(small.size, 512u);
  alloc.release(small);
  alloc.empty_cache();
}

TEST(Rng, KnownValuesAndDisjointDraws) {
  Generator g(1234);
  Tensor a = rand_uniform({1000}, g);
  Tensor b = rand_uniform({1000}, g);
  EXPECT_EQ(g.offset(), 2000u);
  std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  EXPECT_NE(va, vb);
  double mean = 0;
  for (float v : va) {
    EXPECT_GE(v, 0.f);
    EXPECT_LT(v, 1.f);
    mean += v;
  }
  mean /= 1000;
  EXPECT_NEAR(mean, 0.5, 0.05);  // sd of the mean is 0.0091: a 5.5-sigma bound
  Generator again(1234);
  EXPECT_EQ(rand_uniform({1000}, again).to_vector<float>(), va) << "same seed, same numbers";
  Tensor n = rand_normal({20000}, again);
  double m = 0, v = 0;
  for (float x : n.to_vector<float>()) {
    m += x;
    v += double(x) * x;
  }
  m /= 20000;
  v = v / 20000 - m * m;
  EXPECT_NEAR(m, 0.0, 0.04);  // sd 0.007
  EXPECT_NEAR(v, 1.0, 0.06);  // sd 0.01
}

// Random123's published known-answer vectors for Philox-4x32-10 (kat_vectors: counter, key -> output):
// the generator is the published one, not merely a deterministic one.
TEST(Rng, PhiloxKnownAnswerVectors) {
  struct Kat {
    Philox4 counter;
    uint32_t k0, k1;
    Philox4 expected;
  };
  const Kat kats[] = {
      {{{0u, 0u, 0u, 0u}}, 0u, 0u, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    const Philox4 out = philox4x32_10_block(k.counter, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], k.expected.v[i]) << "word " << i << " of key " << std::hex << k.k0;
  }
  // The engine's 64-bit counter/seed entry point is the block function with the upper counter words zero.
  const Philox4 zero = philox4x32_10(0, 0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(zero.v[i], kats[0].expected.v[i]);
}

TEST(Rng, CudaDrawsEqualCpuDraws) {
  SG_SKIP_WITHOUT_CUDA();
  Generator cpu_gen(99), gpu_gen(99);
  Tensor cu = rand_uniform({4097}, cpu_gen), gu = rand_uniform({4097}, gpu_gen, Device::CUDA);
  EXPECT_EQ(gu.to_vector<float>(), cu.to_vector<float>()) << "uniforms are bit-exact";
  Tensor cn = rand_normal({4097}, cpu_gen), gn = rand_normal({4097}, gpu_gen, Device::CUDA);
  expect_close(gn, cn, 1e-6, 1e-6, "normal draws");
}

}  // namespace
}  // namespace spikegrad::testing
