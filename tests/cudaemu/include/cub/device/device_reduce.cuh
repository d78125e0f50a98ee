// cudaemu: cub::DeviceReduce::Sum for the emulated backend, with CUB's two-call protocol (a size query
// with null scratch, then the reduction). The sum is pairwise, in the input's type, like CUB's tree.
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "cudaemu/device.h"

namespace cudaemu {
cudaError_t cub_misuse(const std::string& what);
bool is_device_range(const void* p, size_t bytes);
}  // namespace cudaemu

namespace cub {
struct DeviceReduce {
  static constexpr size_t kScratchBytes = 256;

  template <class T, class Out>
  static cudaError_t Sum(void* scratch, size_t& scratch_bytes, const T* in, Out* out, long long n,
                         cudaStream_t stream = 0) {
    if (!scratch) {
      scratch_bytes = kScratchBytes;
      return cudaSuccess;
    }
    if (scratch_bytes < kScratchBytes || !::cudaemu::is_device_range(scratch, scratch_bytes))
      return ::cudaemu::cub_misuse("cub::DeviceReduce::Sum: the scratch buffer is not the queried size of device memory");
    if (stream) return ::cudaemu::cub_misuse("cub::DeviceReduce::Sum: only the default stream is emulated");
    if (n < 0 || (n > 0 && !::cudaemu::is_device_range(in, size_t(n) * sizeof(T))) ||
        !::cudaemu::is_device_range(out, sizeof(Out)))
      return ::cudaemu::cub_misuse("cub::DeviceReduce::Sum: input or output is not device memory of the given size");
    *out = Out(pairwise(in, n));
    return cudaSuccess;
  }

 private:
  template <class T>
  static T pairwise(const T* x, long long n) {
    if (n <= 0) return T{};
    if (n <= 8) {
      T s = x[0];
      for (long long i = 1; i < n; ++i) s += x[i];
      return s;
    }
    const long long half = n / 2;
    return pairwise(x, half) + pairwise(x + half, n - half);
  }
};
}  // namespace cub
