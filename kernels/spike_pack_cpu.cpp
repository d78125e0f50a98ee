#include <cmath>

#include "kernels/spike_pack.h"

namespace spikegrad {

template <class T> int64_t pack_levels_cpu(const T* x, uint8_t* q, int64_t n, int levels) {
  const T scale = T(levels);
  int64_t first_bad = -1;
  // Serial on purpose: the scan stops at the first violation, and it streams at memory speed anyway.
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i] * scale;
    if (!(v >= T(0) && v <= T(255)) || v != std::floor(v)) {
      first_bad = i;
      break;
    }
    q[i] = uint8_t(v);
  }
  return first_bad;
}

template <class T> void unpack_levels_cpu(const uint8_t* q, T* x, int64_t n, int levels) {
  const T inv = T(1) / T(levels);  // exact: levels is a power of two
#pragma omp parallel for if (n >= (1 << 16)) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = T(q[i]) * inv;
}

template int64_t pack_levels_cpu<float>(const float*, uint8_t*, int64_t, int);
template int64_t pack_levels_cpu<double>(const double*, uint8_t*, int64_t, int);
template void unpack_levels_cpu<float>(const uint8_t*, float*, int64_t, int);
template void unpack_levels_cpu<double>(const uint8_t*, double*, int64_t, int);

}  // namespace spikegrad
