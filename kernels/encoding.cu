#include "kernels/cuda_utils.cuh"
#include "kernels/encoding.h"

namespace spikegrad {

namespace {
__global__ void phase_encode_kernel(const float* x, int64_t steps, int64_t n, float* y) {
  SG_GRID_STRIDE(k, steps * n) y[k] = phase_bit(x[k % n], k / n);
}
// One thread per example: B is small and the hash is a sequential fold (M words, e.g. 3072 for CIFAR),
// a negligible cost next to the first conv.
__global__ void poisson_keys_kernel(const float* x, int64_t batch, int64_t m, uint64_t seed, uint64_t* keys) {
  SG_GRID_STRIDE(b, batch) keys[b] = poisson_example_key(x + b * m, m, seed);
}
__global__ void poisson_encode_kernel(const float* x, int64_t steps, int64_t batch, int64_t m, const uint64_t* keys,
                                      float* y) {
  const int64_t n = batch * m;
  SG_GRID_STRIDE(k, steps * n) {
    const int64_t t = k / n, i = k % n;
    y[k] = poisson_spike(x[i], uint64_t(t * m + i % m), keys[i / m]);
  }
}
}  // namespace

void phase_encode_cuda(const float* x, int64_t steps, int64_t batch, int64_t m, float* y) {
  SG_LAUNCH_1D(phase_encode_kernel, steps * batch * m, x, steps, batch * m, y);
}

void poisson_encode_cuda(const float* x, int64_t steps, int64_t batch, int64_t m, uint64_t seed, uint64_t* keys,
                         float* y) {
  SG_LAUNCH_1D(poisson_keys_kernel, batch, x, batch, m, seed, keys);
  SG_LAUNCH_1D(poisson_encode_kernel, steps * batch * m, x, steps, batch, m, keys, y);
}

}  // namespace spikegrad
