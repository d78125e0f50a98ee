// The device building blocks, CUDA half: kernels/block_reduce.cuh and kernels/vector_io.cuh against CPU
// models of their documented order, bit for bit (random floats, so a different summation order fails), and
// the ops with a float4 fast path fed misaligned views (offset 1..3 floats, lengths not a multiple of 4) so
// their scalar fallbacks run, against the CPU reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "engine/cuda_check.h"
#include "engine/ops.h"
#include "engine/ops_kde_mi.h"
#include "engine/rng.h"
#include "kernels/block_reduce.cuh"
#include "kernels/vector_io.cuh"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpCount = kThreads / 32;

// ---- CPU models of block_reduce.cuh's order ------------------------------------------------------------
// The butterfly's lane-0 result: step o combines lane l with lane l^o.
template <class T, class Op>
T warp_model(const T* lanes, Op op) {
  T v[32];
  for (int l = 0; l < 32; ++l) v[l] = lanes[l];
  for (int o = 16; o > 0; o /= 2) {
    T next[32];
    for (int l = 0; l < 32; ++l) next[l] = op(v[l], v[l ^ o]);
    std::memcpy(v, next, sizeof v);
  }
  return v[0];
}
// Warp totals folded in warp order.
template <class T, class Op>
T block_model(const T* values, int threads, Op op) {
  T total = warp_model(values, op);
  for (int w = 1; w < threads / 32; ++w) total = op(total, warp_model(values + 32 * w, op));
  return total;
}
struct HostSum {
  template <class T>
  T operator()(T a, T b) const {
    return a + b;
  }
};
struct HostMax {
  float operator()(float a, float b) const { return std::fmax(a, b); }
};

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// ---- kernels under test -------------------------------------------------------------------------------------
// Block b reduces in[b * kThreads + tid]; every thread writes what it got, so the test sees each thread's copy.
// out layout per block and thread: warp sum, block sum, block max, block_reduce_each {sum, sum of squares}.
constexpr int kOutsPerThread = 5;
__global__ void reductions_kernel(const float* in, float* out) {
  const int tid = threadIdx.x;
  const float v = in[blockIdx.x * kThreads + tid];
  float* o = out + (int64_t(blockIdx.x) * kThreads + tid) * kOutsPerThread;
  o[0] = warp_sum(v);
  o[1] = block_sum<kThreads>(v);
  o[2] = block_max<kThreads>(v);
  float both[2] = {v, v * v};
  block_reduce_each<kThreads>(both, SumOp{});
  o[3] = both[0];
  o[4] = both[1];
}

__global__ void double_sum_kernel(const double* in, double* out) {
  out[threadIdx.x] = block_sum<kThreads>(in[threadIdx.x]);
}

// A (32, 8) block: lane x of warp y holds in[y * 32 + x]; out[y * 32 + x] = that lane's column total.
__global__ void across_warps_kernel(const float* in, float* out) {
  const int i = threadIdx.y * 32 + threadIdx.x;
  out[i] = block_reduce_across_warps<32 * kWarpCount>(in[i], SumOp{});
}

// Thread t of the block records the floats strided_for_each hands it, in order: out[t * cap + k].
constexpr int kVisitThreads = 64;
__global__ void visit_kernel(const float* x, int64_t n, float* out, int cap, int* counts) {
  const int t = threadIdx.x;
  int count = 0;
  strided_for_each<4>(x, n, t, kVisitThreads, [&](const auto& v) {
    for_each_float(v, [&](float f) {
      if (count < cap) out[t * cap + count] = f;
      ++count;
    });
  });
  counts[t] = count;
}

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  return randn({n}, DType::F32, seed).to_vector<float>();
}

TEST(DeviceBlocks, BlockAndWarpReductionsFollowTheDocumentedOrderInEveryThread) {
  SG_SKIP_WITHOUT_CUDA();
  constexpr int kBlocks = 3;
  std::vector<float> host = random_floats(kBlocks * kThreads, 11);
  host[kThreads + 7] = 3e7f;  // magnitudes far apart: a different order gives different bits
  const Tensor in = Tensor::from_vector(host, {kBlocks * kThreads}).to(Device::CUDA);
  Tensor out = Tensor::empty({kBlocks * kThreads * kOutsPerThread}, DType::F32, Device::CUDA);
  reductions_kernel<<<kBlocks, kThreads>>>(in.data<float>(), out.data<float>());
  CUDA_CHECK(cudaGetLastError());
  const std::vector<float> got = out.to_vector<float>();
  for (int b = 0; b < kBlocks; ++b) {
    const float* v = host.data() + b * kThreads;
    std::vector<float> squares(kThreads);
    for (int i = 0; i < kThreads; ++i) squares[i] = v[i] * v[i];
    const float sum = block_model(v, kThreads, HostSum{}), max = block_model(v, kThreads, HostMax{});
    const float sum_sq = block_model(squares.data(), kThreads, HostSum{});
    for (int t = 0; t < kThreads; ++t) {
      const float* o = got.data() + (int64_t(b) * kThreads + t) * kOutsPerThread;
      const std::string where = "block " + std::to_string(b) + " thread " + std::to_string(t);
      EXPECT_TRUE(same_bits(o[0], warp_model(v + (t / 32) * 32, HostSum{}))) << "warp_sum, " << where;
      EXPECT_TRUE(same_bits(o[1], sum)) << "block_sum " << o[1] << " vs " << sum << ", " << where;
      EXPECT_TRUE(same_bits(o[2], max)) << "block_max, " << where;
      EXPECT_TRUE(same_bits(o[3], sum)) << "block_reduce_each[0], " << where;
      EXPECT_TRUE(same_bits(o[4], sum_sq)) << "block_reduce_each[1], " << where;
    }
  }
}

TEST(DeviceBlocks, DoubleBlockSumFollowsTheDocumentedOrder) {
  SG_SKIP_WITHOUT_CUDA();
  std::vector<double> host(kThreads);
  const std::vector<float> r = random_floats(kThreads, 12);
  for (int i = 0; i < kThreads; ++i) host[i] = double(r[i]) / 3.0 * (i % 7 == 0 ? 1e9 : 1.0);  // full mantissas
  const Tensor in = Tensor::from_vector(host, {kThreads}).to(Device::CUDA);
  Tensor out = Tensor::empty({kThreads}, DType::F64, Device::CUDA);
  double_sum_kernel<<<1, kThreads>>>(in.data<double>(), out.data<double>());
  CUDA_CHECK(cudaGetLastError());
  const double want = block_model(host.data(), kThreads, HostSum{});
  for (double got : out.to_vector<double>()) EXPECT_TRUE(same_bits(got, want)) << got << " vs " << want;
}

TEST(DeviceBlocks, AcrossWarpsAddsEachLanesColumnInWarpOrder) {
  SG_SKIP_WITHOUT_CUDA();
  const std::vector<float> host = random_floats(32 * kWarpCount, 13);
  const Tensor in = Tensor::from_vector(host, {32 * kWarpCount}).to(Device::CUDA);
  Tensor out = Tensor::empty({32 * kWarpCount}, DType::F32, Device::CUDA);
  across_warps_kernel<<<1, dim3(32, kWarpCount)>>>(in.data<float>(), out.data<float>());
  CUDA_CHECK(cudaGetLastError());
  const std::vector<float> got = out.to_vector<float>();
  for (int lane = 0; lane < 32; ++lane) {
    float want = host[lane];
    for (int w = 1; w < kWarpCount; ++w) want += host[w * 32 + lane];
    for (int w = 0; w < kWarpCount; ++w)
      EXPECT_TRUE(same_bits(got[w * 32 + lane], want)) << "lane " << lane << " warp " << w;
  }
}

// strided_for_each's documented walk: packs first, first + stride, ... then the tail floats when x is
// 16-byte aligned; floats first, first + stride, ... otherwise.
std::vector<float> expected_visits(const float* x, bool aligned, int64_t n, int t) {
  std::vector<float> seq;
  if (aligned) {
    for (int64_t k = t; k < n / 4; k += kVisitThreads)
      for (int j = 0; j < 4; ++j) seq.push_back(x[4 * k + j]);
    for (int64_t k = 4 * (n / 4) + t; k < n; k += kVisitThreads) seq.push_back(x[k]);
  } else {
    for (int64_t k = t; k < n; k += kVisitThreads) seq.push_back(x[k]);
  }
  return seq;
}

TEST(DeviceBlocks, StridedForEachUsesPacksOnlyWhenAlignedAndCoversEveryFloatOnce) {
  SG_SKIP_WITHOUT_CUDA();
  constexpr int kCap = 64;
  for (int64_t n : {0, 1, 3, 4, 5, 17, 255, 1027, 4 * kVisitThreads * 4 + 3}) {
    for (int offset = 0; offset < 4; ++offset) {
      const std::vector<float> host = random_floats(n + offset + 1, 14);
      const Tensor storage = Tensor::from_vector(host, {n + offset + 1}).to(Device::CUDA);
      const Tensor view = storage.slice0(offset, offset + n);
      const bool aligned = is_aligned16(view.data<float>());
      ASSERT_EQ(aligned, offset == 0) << "the allocator's base should be 16-byte aligned";
      Tensor out = Tensor::zeros({kVisitThreads * kCap}, DType::F32, Device::CUDA);
      Tensor counts = Tensor::zeros({kVisitThreads}, DType::I32, Device::CUDA);
      visit_kernel<<<1, kVisitThreads>>>(view.data<float>(), n, out.data<float>(), kCap, counts.data<int32_t>());
      CUDA_CHECK(cudaGetLastError());
      const std::vector<float> got = out.to_vector<float>();
      const std::vector<int32_t> got_counts = counts.to_vector<int32_t>();
      for (int t = 0; t < kVisitThreads; ++t) {
        const std::vector<float> want = expected_visits(host.data() + offset, aligned, n, t);
        ASSERT_LE(want.size(), size_t(kCap));
        ASSERT_EQ(got_counts[t], int(want.size())) << "n " << n << " offset " << offset << " thread " << t;
        for (size_t k = 0; k < want.size(); ++k)
          EXPECT_TRUE(same_bits(got[t * kCap + k], want[k])) << "n " << n << " offset " << offset << " thread " << t;
      }
    }
  }
}

// The mean firing rate reads its rows as float4 when they are 16-byte aligned. A view at offset 1..3 floats
// (every row misaligned), an aligned view with F % 4 != 0 (rows 1.. misaligned, row 0 with a tail) and the
// aligned fast path all match the CPU exactly: the spikes are multiples of 1/4, so every double sum is exact
// whatever its order.
TEST(DeviceBlocks, FiringRateOfMisalignedViewsMatchesCpu) {
  SG_SKIP_WITHOUT_CUDA();
  const int64_t T = 2, B = 3;
  for (int64_t F : {1, 3, 4, 6, 8, 1027, 4100}) {
    for (int offset = 0; offset < 4; ++offset) {
      const int64_t n = T * B * F;
      std::vector<float> host = uniform({n + offset}, DType::F32, 15, 0.0, 4.0).to_vector<float>();
      for (float& v : host) v = float(int(v)) * 0.25f;
      const Tensor cpu_storage = Tensor::from_vector(host, {n + offset});
      const Tensor cuda_storage = cpu_storage.to(Device::CUDA);
      const Tensor cpu_view = cpu_storage.slice0(offset, offset + n).view({T, B, F});
      const Tensor cuda_view = cuda_storage.slice0(offset, offset + n).view({T, B, F});
      ASSERT_EQ(is_aligned16(cuda_view.data<float>()), offset == 0);
      Tape tape;
      const std::vector<float> want = ops::firing_rate(tape, cpu_view).to_vector<float>();
      const std::vector<float> got = ops::firing_rate(tape, cuda_view).to(Device::CPU).to_vector<float>();
      EXPECT_EQ(got, want) << "F " << F << " offset " << offset;
    }
  }
}

// Batch norm reads x as float4 when S % 4 == 0 and x is 16-byte aligned (statistics forward, sums backward).
// S = 16 with x at offset 1..3 floats takes the float path, offset 0 the float4 one; both match the CPU
// (output, running statistics and the input gradient of sum(y * r)).
TEST(DeviceBlocks, BatchNormOfMisalignedViewsMatchesCpu) {
  SG_SKIP_WITHOUT_CUDA();
  const int64_t N = 6, C = 3, H = 4, W = 4, n = N * C * H * W;
  for (int offset = 0; offset < 4; ++offset) {
    const Tensor storage = randn({n + offset}, DType::F32, 16);
    const Tensor r = randn({N, C, H, W}, DType::F32, 17);
    std::vector<Tensor> y, gx, running;
    for (Device device : {Device::CPU, Device::CUDA}) {
      const Tensor x = storage.to(device).slice0(offset, offset + n).view({N, C, H, W}).set_requires_grad(true);
      if (device == Device::CUDA) ASSERT_EQ(is_aligned16(x.data<float>()), offset == 0);
      const Tensor weight = Tensor::full({C}, 1.5, DType::F32, device);
      const Tensor bias = Tensor::full({C}, 0.25, DType::F32, device);
      Tensor running_mean = Tensor::zeros({C}, DType::F32, device);
      Tensor running_var = Tensor::full({C}, 1.0, DType::F32, device);
      Tape tape;
      const Tensor out = ops::batch_norm(tape, x, weight, bias, running_mean, running_var);
      y.push_back(out.to(Device::CPU));
      gx.push_back(tape.vjp(out, r.to(device), {x})[0].to(Device::CPU));
      running.push_back(running_mean.to(Device::CPU));
      running.push_back(running_var.to(Device::CPU));
    }
    const std::string at = " at offset " + std::to_string(offset);
    expect_close(y[1], y[0], 1e-5, 1e-5, "batch_norm y" + at);
    expect_close(gx[1], gx[0], 1e-5, 1e-5, "batch_norm gx" + at);
    expect_close(running[2], running[0], 1e-6, 1e-6, "running_mean" + at);
    expect_close(running[3], running[1], 1e-6, 1e-6, "running_var" + at);
  }
}

}  // namespace
}  // namespace spikegrad::testing
