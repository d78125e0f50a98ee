#include <cmath>

#include "kernels/philox.h"
#include "kernels/random.h"

namespace spikegrad {

template <class T> void rand_uniform_cpu(T* out, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) out[i] = T(philox_uniform(offset + uint64_t(i), seed));
}
template <class T> void rand_normal_cpu(T* out, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) out[i] = T(philox_normal(offset + uint64_t(i), seed));
}
template void rand_uniform_cpu<float>(float*, int64_t, uint64_t, uint64_t);
template void rand_uniform_cpu<double>(double*, int64_t, uint64_t, uint64_t);
template void rand_normal_cpu<float>(float*, int64_t, uint64_t, uint64_t);
template void rand_normal_cpu<double>(double*, int64_t, uint64_t, uint64_t);

}  // namespace spikegrad
