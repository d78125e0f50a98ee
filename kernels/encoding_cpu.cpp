#include <vector>

#include "kernels/encoding.h"

namespace spikegrad {

namespace {
constexpr int64_t kParallelMinElements = 1 << 14;
}  // namespace

void phase_encode_cpu(const float* x, int64_t steps, int64_t batch, int64_t m, float* y) {
  const int64_t n = batch * m;
#pragma omp parallel for if (n * steps >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < steps; ++t) y[t * n + i] = phase_bit(x[i], t);
}

void poisson_encode_cpu(const float* x, int64_t steps, int64_t batch, int64_t m, uint64_t seed, float* y) {
  std::vector<uint64_t> keys(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) keys[size_t(b)] = poisson_example_key(x + b * m, m, seed);
  const int64_t n = batch * m;
#pragma omp parallel for collapse(2) if (n * steps >= kParallelMinElements)
  for (int64_t t = 0; t < steps; ++t)
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = i / m, j = i % m;
      y[t * n + i] = poisson_spike(x[i], uint64_t(t * m + j), keys[size_t(b)]);
    }
}

}  // namespace spikegrad
