// The emulated backend must catch what a GPU would (or might) do wrong. Each mutant is a test-only copy
// of a real kernel -- the bias-gradient column sum of kernels/linear.cu, a shared-memory tree reduction --
// with one defect: a barrier removed, an out-of-bounds shared index, a __syncthreads inside a branch.
// Plus the misuses the runtime refuses: a full-mask shuffle in a 48-thread block, a host pointer passed
// to a kernel, a memcpy in the wrong direction, too much static shared memory.
// Only built with SPIKEGRAD_CUDA_EMULATION (tests/CMakeLists.txt); the orders are set here, not by ctest.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "cudaemu/testing.h"

namespace {

constexpr int kSumCols = 32;
constexpr int kSumRows = 8;
enum class Mutant { None, MissingBarrier, SharedOutOfBounds, DivergentBarrier };

// db[o] = Σ_n gy[n,o], as kernels/linear.cu's column_sum_add_kernel, with `mutant` switching one defect in.
__global__ void column_sum_kernel(const float* gy, float* db, int N, int O, Mutant mutant) {
  __shared__ float partial[kSumRows][kSumCols];
  const int o = int(blockIdx.x) * kSumCols + int(threadIdx.x);
  float acc = 0.f;
  if (o < O)
    for (int n = int(threadIdx.y); n < N; n += kSumRows) acc += gy[n * O + o];
  if (mutant == Mutant::SharedOutOfBounds)
    partial[threadIdx.y][threadIdx.x + 1] = acc;  // defect: one column too far; the last thread leaves the array
  else
    partial[threadIdx.y][threadIdx.x] = acc;
  if (mutant != Mutant::MissingBarrier) __syncthreads();  // defect: the tree reads before everyone has written
  for (int half = kSumRows / 2; half > 0; half /= 2) {
    if (int(threadIdx.y) < half) {
      partial[threadIdx.y][threadIdx.x] += partial[threadIdx.y + half][threadIdx.x];
      if (mutant == Mutant::DivergentBarrier) __syncthreads();  // defect: only the adding threads wait here
    }
    if (mutant != Mutant::DivergentBarrier) __syncthreads();
  }
  if (threadIdx.y == 0 && o < O) db[o] = partial[0][threadIdx.x];
}

struct Device {
  float* gy = nullptr;
  float* db = nullptr;
  Device(const std::vector<float>& host, int O) {
    EXPECT_EQ(cudaMalloc(&gy, host.size() * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&db, size_t(O) * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(gy, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~Device() {
    cudaFree(gy);
    cudaFree(db);
  }
};

struct Outcome {
  cudaError_t error;
  std::string message;
  bool correct;
};

// Runs the column sum of an (N, O) matrix under `order` and compares with the exact sums (small integers).
Outcome run_column_sum(Mutant mutant, const char* order) {
  const int N = 21, O = 45;
  std::vector<float> gy(size_t(N) * O), expected(size_t(O), 0.f);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      gy[size_t(n) * O + o] = float((n * 7 + o * 3) % 11);
      expected[size_t(o)] += gy[size_t(n) * O + o];
    }
  Device d(gy, O);
  cudaemu::ScopedOrder scoped(order);
  column_sum_kernel<<<(O + kSumCols - 1) / kSumCols, dim3(kSumCols, kSumRows)>>>(d.gy, d.db, N, O, mutant);
  Outcome out{cudaGetLastError(), "", false};
  out.message = cudaGetErrorString(out.error);
  if (out.error == cudaSuccess) {
    std::vector<float> got(static_cast<size_t>(O));
    EXPECT_EQ(cudaMemcpy(got.data(), d.db, got.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    out.correct = got == expected;
  }
  cudaemu::take_violations();  // provoked on purpose
  return out;
}

const char* const kOrders[] = {"launch", "reverse", "random:1", "random:2", "random:3"};

TEST(CudaEmuMutants, OriginalKernelIsCorrectInEveryOrder) {
  for (const char* order : kOrders) {
    const Outcome o = run_column_sum(Mutant::None, order);
    EXPECT_EQ(o.error, cudaSuccess) << order << ": " << o.message;
    EXPECT_TRUE(o.correct) << order;
  }
}

TEST(CudaEmuMutants, MissingBarrierGivesWrongSumsInSomeOrder) {
  int wrong = 0;
  for (const char* order : kOrders) {
    const Outcome o = run_column_sum(Mutant::MissingBarrier, order);
    EXPECT_EQ(o.error, cudaSuccess) << o.message;  // nothing illegal happens: the race shows in the values
    wrong += !o.correct;
  }
  EXPECT_GT(wrong, 0) << "removing the barrier went unnoticed in every thread order";
}

TEST(CudaEmuMutants, SharedOutOfBoundsWriteIsReported) {
#if defined(__SANITIZE_ADDRESS__)
  // Under the sanitizers the process stops at the write: UBSan sees the index leave its row, or ASan the
  // poisoned guard bytes.
  EXPECT_DEATH(run_column_sum(Mutant::SharedOutOfBounds, "launch"), "AddressSanitizer|out of bounds");
#else
  const Outcome o = run_column_sum(Mutant::SharedOutOfBounds, "launch");
  EXPECT_EQ(o.error, cudaErrorLaunchFailure);
  EXPECT_NE(o.message.find("past the end of __shared__ partial"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("column_sum_kernel"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("test_cudaemu_mutants.cu"), std::string::npos) << o.message;
#endif
}

TEST(CudaEmuMutants, DivergentBarrierIsReportedWithBothSites) {
  for (const char* order : kOrders) {
    const Outcome o = run_column_sum(Mutant::DivergentBarrier, order);
    EXPECT_EQ(o.error, cudaErrorLaunchFailure) << order;
    EXPECT_NE(o.message.find("barrier in divergent code"), std::string::npos) << order << ": " << o.message;
    EXPECT_NE(o.message.find("), thread ("), std::string::npos) << o.message;  // names the block and thread
  }
}

// A warp sum as in kernels/softmax_entropy.cu: a full mask assumes 32 live lanes.
__global__ void warp_sum_kernel(float* out) {
  float v = float(threadIdx.x);
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  out[threadIdx.x] = v;
}

TEST(CudaEmuMutants, FullMaskShuffleInA48ThreadBlockIsReported) {
  float* out = nullptr;
  ASSERT_EQ(cudaMalloc(&out, 64 * sizeof(float)), cudaSuccess);
  warp_sum_kernel<<<1, 48>>>(out);
  const cudaError_t e = cudaGetLastError();
  const std::string message = cudaGetErrorString(e);
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  EXPECT_NE(message.find("does not exist in a block of 48 threads"), std::string::npos) << message;
  // With whole warps the same kernel is fine, and every lane holds the warp's total.
  warp_sum_kernel<<<1, 64>>>(out);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> got(64);
  ASSERT_EQ(cudaMemcpy(got.data(), out, 64 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(got[0], 496.f);
  EXPECT_EQ(got[40], 32.f * 32 + 496.f);
  cudaFree(out);
  cudaemu::take_violations();
}

TEST(CudaEmuMutants, HostPointerPassedToAKernelIsRefused) {
  std::vector<float> host(32);
  warp_sum_kernel<<<1, 32>>>(host.data());
  const cudaError_t e = cudaGetLastError();
  EXPECT_EQ(e, cudaErrorIllegalAddress);
  EXPECT_NE(std::string(cudaGetErrorString(e)).find("not device memory"), std::string::npos);
  cudaemu::take_violations();
}

TEST(CudaEmuMutants, MemcpyInTheWrongDirectionIsRefused) {
  float* dev = nullptr;
  std::vector<float> host(8, 1.f);
  ASSERT_EQ(cudaMalloc(&dev, 8 * sizeof(float)), cudaSuccess);
  const cudaError_t e = cudaMemcpy(dev, host.data(), 8 * sizeof(float), cudaMemcpyDeviceToHost);
  EXPECT_EQ(e, cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(e)).find("wrong direction"), std::string::npos);
  EXPECT_EQ(cudaMemcpy(dev, host.data(), 64 * sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue)
      << "a copy past the end of the allocation";
  cudaGetLastError();
  cudaFree(dev);
  cudaemu::take_violations();
}

__global__ void big_shared_kernel(float* out) {
  __shared__ float big[13 * 1024];  // 52 KiB: over the 48 KiB of static shared memory a block may use
  big[threadIdx.x] = 1.f;
  __syncthreads();
  out[threadIdx.x] = big[threadIdx.x];
}

TEST(CudaEmuMutants, TooMuchStaticSharedMemoryIsReported) {
  float* out = nullptr;
  ASSERT_EQ(cudaMalloc(&out, 32 * sizeof(float)), cudaSuccess);
  big_shared_kernel<<<1, 32>>>(out);
  const cudaError_t e = cudaGetLastError();
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  EXPECT_NE(std::string(cudaGetErrorString(e)).find("over the 48 KiB"), std::string::npos) << cudaGetErrorString(e);
  cudaFree(out);
  cudaemu::take_violations();
}

__global__ void past_the_end_kernel(float* out, int n) { out[n + int(threadIdx.x)] = 1.f; }

TEST(CudaEmuMutants, GlobalWritePastAnAllocationIsReported) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer the same write stops the process (covered by ASan itself)";
#else
  float* out = nullptr;
  ASSERT_EQ(cudaMalloc(&out, 10 * sizeof(float)), cudaSuccess);
  past_the_end_kernel<<<1, 1>>>(out, 10);
  const cudaError_t e = cudaGetLastError();
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  EXPECT_NE(std::string(cudaGetErrorString(e)).find("past the end of the device allocation"), std::string::npos)
      << cudaGetErrorString(e);
  cudaFree(out);
  cudaGetLastError();
  cudaemu::take_violations();
#endif
}

TEST(CudaEmuMutants, InvalidLaunchConfigurationIsRefused) {
  float* out = nullptr;
  ASSERT_EQ(cudaMalloc(&out, 64 * sizeof(float)), cudaSuccess);
  warp_sum_kernel<<<1, 2048>>>(out);  // over 1024 threads per block
  cudaError_t e = cudaGetLastError();
  EXPECT_EQ(e, cudaErrorInvalidConfiguration);
  EXPECT_NE(std::string(cudaGetErrorString(e)).find("warp_sum_kernel"), std::string::npos) << cudaGetErrorString(e);
  warp_sum_kernel<<<0, 32>>>(out);  // an empty grid
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  cudaFree(out);
  cudaemu::take_violations();
}

__global__ void copy_kernel(const float* in, float* out) { out[threadIdx.x] = in[threadIdx.x]; }

TEST(CudaEmuMutants, UninitialisedDeviceMemoryReadsAsNaN) {
  float *in = nullptr, *out = nullptr;
  ASSERT_EQ(cudaMalloc(&in, 32 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&out, 32 * sizeof(float)), cudaSuccess);
  copy_kernel<<<1, 32>>>(in, out);  // `in` was never written
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<float> got(32);
  ASSERT_EQ(cudaMemcpy(got.data(), out, 32 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (float v : got) EXPECT_TRUE(std::isnan(v));
  cudaFree(in);
  cudaFree(out);
}

}  // namespace
