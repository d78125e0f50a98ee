#include <algorithm>
#include <type_traits>

#include "kernels/spike_pack.h"

namespace spikegrad {

namespace {
// v is a level: an integer in [0, 255]. Without a branch, so loops over it vectorise; integrality is tested as
// (v + 2^m) − 2^m == v (m = the mantissa width: adding 2^m rounds v to an integer, exactly, for 0 <= v < 2^m)
// because GCC keeps std::floor and float-to-int conversions scalar in a loop that must not raise FP exceptions.
// False for NaN.
template <class T> bool is_level(T v) {
  const T round_up = std::is_same_v<T, float> ? T(0x1p23) : T(0x1p52);
  return (v >= T(0)) & (v <= T(255)) & ((v + round_up) - round_up == v);
}

// q[i] = x[i]·scale for n elements; returns whether any is not a level (then q is not written). Two loops, each
// without a branch, so the compiler vectorises both.
template <class T> bool pack_chunk_has_bad(const T* __restrict x, uint8_t* __restrict q, int64_t n, T scale) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= int(!is_level(x[i] * scale));
  if (bad) return true;
  for (int64_t i = 0; i < n; ++i) q[i] = uint8_t(int(x[i] * scale));  // every value checked in range above
  return false;
}
}  // namespace

template <class T> int64_t pack_levels_cpu(const T* x, uint8_t* q, int64_t n, int levels) {
  const T scale = T(levels);
  // In chunks checked without a branch per element, in parallel (a serial scan that stopped at the first
  // violation ran at ~1 ns per element: 2.5 % of a VGGSNN training step, measured). Only a chunk with a
  // violation is scanned again, serially, to name the first bad index.
  constexpr int64_t kChunk = int64_t(1) << 14;
  const int64_t chunks = ceil_div(n, kChunk);
  int64_t first_bad_chunk = chunks;
#pragma omp parallel for schedule(static) reduction(min : first_bad_chunk) if (n >= (int64_t(1) << 16))
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t begin = chunk * kChunk;
    if (pack_chunk_has_bad(x + begin, q + begin, std::min(kChunk, n - begin), scale))
      first_bad_chunk = std::min(first_bad_chunk, chunk);
  }
  if (first_bad_chunk == chunks) return -1;
  for (int64_t i = first_bad_chunk * kChunk;; ++i)
    if (!is_level(x[i] * scale)) return i;
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
