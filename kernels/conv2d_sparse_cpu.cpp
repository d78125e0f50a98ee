// Zero-skipping CPU convolution for spike inputs (see kernels/conv2d_sparse.h).
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "engine/allocator.h"
#include "engine/check.h"
#include "kernels/conv2d_sparse.h"

namespace spikegrad {

namespace {
// Scratch from the engine's CPU caching allocator (64-byte aligned, so rows of 16·k floats stay aligned): a
// training step asks for the same sizes every time, so once warm no call allocates or faults in fresh pages, and
// the allocator's peak counts the scratch like any tensor. ensure() keeps the contents only when no growth is
// needed (callers fill after sizing).
template <class T> struct ScratchArray {
  CpuScratch block{0};
  ScratchArray() = default;
  explicit ScratchArray(int64_t count) { ensure(count); }
  void ensure(int64_t count) {
    const size_t bytes = size_t(std::max<int64_t>(count, 1)) * sizeof(T);
    if (block.size() < bytes) block = CpuScratch(bytes);
  }
  T* get() const { return static_cast<T*>(block.data()); }
  T& operator[](int64_t i) const { return get()[i]; }
};
using AlignedFloats = ScratchArray<float>;

// x's non-zeros, per (image, channel) plane in raster order: plane n·C + c owns entries [start[n·C+c],
// start[n·C+c+1]); an entry is the pixel (h << 16 | w) and its value.
struct NonzeroLists {
  std::vector<int64_t> start;
  ScratchArray<uint32_t> pixel;
  ScratchArray<float> value;
  bool all_ones = true;  // every value is exactly 1: the adds need no multiply
};

template <class XIn> float value_of(XIn x, float scale) {
  if constexpr (std::is_same_v<XIn, float>) return x;
  else return float(x) * scale;  // = unpack_levels_cpu's q · (1/levels), exact for levels a power of two
}

template <class XIn> NonzeroLists build_nonzero_lists(const XIn* x, float scale, const Conv2dShape& s) {
  const int64_t planes = s.N * s.C, HW = s.H * s.W;
  NonzeroLists lists;
  lists.start.assign(size_t(planes) + 1, 0);
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const XIn* in = x + plane * HW;
    int64_t count = 0;
    for (int64_t i = 0; i < HW; ++i) count += in[i] != XIn(0);
    lists.start[size_t(plane) + 1] = count;
  }
  for (int64_t plane = 0; plane < planes; ++plane) lists.start[size_t(plane) + 1] += lists.start[size_t(plane)];
  lists.pixel.ensure(lists.start.back());
  lists.value.ensure(lists.start.back());
  bool all_ones = true;
#pragma omp parallel reduction(&& : all_ones)
  {
    // Branch-free compaction (a data-dependent branch per element mispredicts at spike densities: a quarter of the
    // sparse forward's time, measured): every element is written at the cursor, which only non-zeros advance.
    // That writes one slot past a plane's last non-zero, so it goes to a per-thread row and is copied out.
    std::vector<uint32_t> pixels(static_cast<size_t>(HW) + 1);
    std::vector<float> values(static_cast<size_t>(HW) + 1);
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const XIn* in = x + plane * HW;
      int64_t o = 0;
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t w = 0; w < s.W; ++w) {
          const XIn v = in[h * s.W + w];
          const float f = value_of(v, scale);
          pixels[size_t(o)] = uint32_t(h) << 16 | uint32_t(w);
          values[size_t(o)] = f;
          all_ones = all_ones && (f == 0.f || f == 1.f);
          o += v != XIn(0);
        }
      const int64_t at = lists.start[size_t(plane)];
      std::copy(pixels.begin(), pixels.begin() + o, lists.pixel.get() + at);
      std::copy(values.begin(), values.begin() + o, lists.value.get() + at);
    }
  }
  lists.all_ones = all_ones;
  return lists;
}

// The taps along one axis that carry input coordinate i to an output: r = first, first + stride, … (count of
// them), reaching output o = out_first, out_first − 1, … (see the header).
struct TapRange {
  int32_t first = 0, count = 0, out_first = 0;
};
std::vector<TapRange> tap_ranges(int64_t in_size, int64_t kernel, int64_t out_size, int64_t stride, int64_t pad) {
  std::vector<TapRange> ranges(static_cast<size_t>(in_size));
  for (int64_t i = 0; i < in_size; ++i) {
    const int64_t shifted = i + pad, lo = std::max<int64_t>(0, shifted - (out_size - 1) * stride);
    const int64_t first = lo + (shifted - lo) % stride, last = std::min(kernel - 1, shifted);
    if (first <= last) ranges[size_t(i)] = {int32_t(first), int32_t((last - first) / stride + 1), int32_t((shifted - first) / stride)};
  }
  return ranges;
}

// dst[0, len) += v·src[0, len) for len = `vectors` × 16 floats. GCC's vector type, not a loop left to the
// auto-vectoriser: once inlined into the tap loops the compiler cannot prove dst and src apart and keeps such a
// loop scalar (8× slower, measured). Both pointers are 64-byte aligned (the buffers are, and rows are a multiple
// of 16 floats long). On a build without AVX-512 the compiler splits each 16-float add into what the ISA has.
typedef float Float16 __attribute__((vector_size(64), may_alias));
template <bool kOnes> inline void add_row(float* dst, const float* src, float v, int64_t vectors) {
  Float16* d = reinterpret_cast<Float16*>(dst);
  const Float16* s = reinterpret_cast<const Float16*>(src);
  for (int64_t i = 0; i < vectors; ++i) d[i] += kOnes ? s[i] : v * s[i];
}

// Runs body(tap, output pixel, value) for every (non-zero, tap) pair of one plane; tap = r·S + t, output pixel
// = p·Q + q.
template <bool kOnes, class Body>
inline void for_each_tap(const NonzeroLists& lists, int64_t plane, const std::vector<TapRange>& rows,
                         const std::vector<TapRange>& cols, const Conv2dShape& s, Body&& body) {
  for (int64_t e = lists.start[size_t(plane)]; e < lists.start[size_t(plane) + 1]; ++e) {
    const uint32_t pixel = lists.pixel[e];
    const TapRange& rr = rows[pixel >> 16];
    const TapRange& cr = cols[pixel & 0xffff];
    const float v = kOnes ? 1.f : lists.value[e];
    for (int32_t i = 0; i < rr.count; ++i) {
      const int64_t r = rr.first + i * s.stride, p = rr.out_first - i;
      for (int32_t j = 0; j < cr.count; ++j) body(r * s.S + cr.first + j * s.stride, p * s.Q + cr.out_first - j, v);
    }
  }
}

void check_shape(const Conv2dShape& s) {
  SG_CHECK(s.H < 65536 && s.W < 65536, "conv2d (sparse input): H and W must be below 65536, got " << s.H << "x" << s.W);
}

// Rows of K values are padded to a whole number of 16-float vectors (zeros beyond K).
int64_t padded_k(const Conv2dShape& s) { return ceil_div(s.K, 16) * 16; }

// What one work item's dW rows (backward weight) may take, in bytes: half the 2 MiB L2 of the machine measured
// (docs/perf.md), the other half for the gy rows it streams.
constexpr int64_t kItemBytes = 1 << 20;
// Units of `unit_floats` floats each, grouped per work item so that a group fits kItemBytes, but never so few
// groups that a thread idles: at least two per thread when there is enough to split.
int64_t group_size(int64_t count, int64_t unit_floats) {
  const int64_t by_cache = std::max<int64_t>(1, kItemBytes / (unit_floats * int64_t(sizeof(float))));
  const int64_t by_threads = std::max<int64_t>(1, count / (2 * omp_get_max_threads()));
  return std::min({count, by_cache, by_threads});
}

// The forward gathers: per output pixel, the list of its (channel, tap) rows whose input is non-zero; the
// pixel's K outputs are the sum of those weight rows, accumulated in registers a K-block (64 floats, four
// AVX-512 registers) at a time, with no stores until the pixel is done.
constexpr int64_t kForwardKBlock = 64;

// One image's gather lists: output pixel pq owns [start[pq], start[pq+1]) of `row` (c·R·S + tap) and `value`.
template <bool kOnes> struct GatherLists {
  std::vector<int64_t> start;
  ScratchArray<int32_t> row;
  ScratchArray<float> value;  // only when !kOnes
  void build(const NonzeroLists& lists, int64_t n, const std::vector<TapRange>& rows, const std::vector<TapRange>& cols,
             const Conv2dShape& s) {
    const int64_t PQ = s.P * s.Q, RS = s.R * s.S;
    start.assign(size_t(PQ) + 1, 0);
    for (int64_t c = 0; c < s.C; ++c)
      for_each_tap<kOnes>(lists, n * s.C + c, rows, cols, s, [&](int64_t, int64_t out, float) { ++start[size_t(out) + 1]; });
    for (int64_t pq = 0; pq < PQ; ++pq) start[size_t(pq) + 1] += start[size_t(pq)];
    row.ensure(start.back());
    if (!kOnes) value.ensure(start.back());
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t c = 0; c < s.C; ++c)
      for_each_tap<kOnes>(lists, n * s.C + c, rows, cols, s, [&](int64_t tap, int64_t out, float v) {
        const int64_t at = fill[size_t(out)]++;
        row[at] = int32_t(c * RS + tap);
        if (!kOnes) value[at] = v;
      });
  }
};

// Work items are groups of images: the images of a group share each weight block while it is in cache (one image
// alone would stream all of w — 9.4 MB for a 512x512 layer — for 16 output pixels at 4x4).
template <bool kOnes>
void forward_gather(const NonzeroLists& lists, const float* wt, const float* b, float* y, const Conv2dShape& s) {
  constexpr int64_t KB = kForwardKBlock;
  const int64_t CRS = s.C * s.R * s.S, PQ = s.P * s.Q, blocks = ceil_div(s.K, KB);
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(16, s.N / (2 * omp_get_max_threads())));
  const std::vector<TapRange> rows = tap_ranges(s.H, s.R, s.P, s.stride, s.pad);
  const std::vector<TapRange> cols = tap_ranges(s.W, s.S, s.Q, s.stride, s.pad);
#pragma omp parallel
  {
    std::vector<GatherLists<kOnes>> gather(static_cast<size_t>(group));
    alignas(64) float sums[KB];
#pragma omp for schedule(dynamic)
    for (int64_t n0 = 0; n0 < s.N; n0 += group) {
      const int64_t n1 = std::min(s.N, n0 + group);
      for (int64_t n = n0; n < n1; ++n) gather[size_t(n - n0)].build(lists, n, rows, cols, s);
      for (int64_t block = 0; block < blocks; ++block) {
        const float* wb = wt + block * CRS * KB;
        const int64_t k_end = std::min(KB, s.K - block * KB);
        for (int64_t n = n0; n < n1; ++n) {
          const GatherLists<kOnes>& g = gather[size_t(n - n0)];
          for (int64_t pq = 0; pq < PQ; ++pq) {
            Float16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
            for (int64_t i = g.start[size_t(pq)]; i < g.start[size_t(pq) + 1]; ++i) {
              const Float16* r = reinterpret_cast<const Float16*>(wb + int64_t(g.row[i]) * KB);
              if constexpr (kOnes) {
                a0 += r[0], a1 += r[1], a2 += r[2], a3 += r[3];
              } else {
                const float v = g.value[i];
                a0 += v * r[0], a1 += v * r[1], a2 += v * r[2], a3 += v * r[3];
              }
            }
            Float16* out = reinterpret_cast<Float16*>(sums);
            out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
            for (int64_t kk = 0; kk < k_end; ++kk) {
              const int64_t k = block * KB + kk;
              y[(n * s.K + k) * PQ + pq] = sums[kk] + (b ? b[k] : 0.f);
            }
          }
        }
      }
    }
  }
}

// Per chunk of input channels (one thread each): dW rows (chunk, R·S, K), images in order; each (non-zero, tap)
// adds a whole row of K gradients. A chunk's rows fit kItemBytes; every chunk reads all of gy once.
template <bool kOnes>
void backward_weight_chunks(const NonzeroLists& lists, const float* gyt, float* gw, const Conv2dShape& s) {
  const int64_t RS = s.R * s.S, PQ = s.P * s.Q, KP = padded_k(s), kChunk = group_size(s.C, RS * KP);
  const int64_t chunks = ceil_div(s.C, kChunk);
  const std::vector<TapRange> rows = tap_ranges(s.H, s.R, s.P, s.stride, s.pad);
  const std::vector<TapRange> cols = tap_ranges(s.W, s.S, s.Q, s.stride, s.pad);
#pragma omp parallel
  {
    AlignedFloats acc(kChunk * RS * KP);
#pragma omp for schedule(dynamic)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t c0 = chunk * kChunk, c1 = std::min(s.C, c0 + kChunk);
      float* a = acc.get();
      std::fill(a, a + (c1 - c0) * RS * KP, 0.f);
      for (int64_t n = 0; n < s.N; ++n) {
        const float* g = gyt + n * PQ * KP;
        for (int64_t c = c0; c < c1; ++c) {
          float* ac = a + (c - c0) * RS * KP;
          for_each_tap<kOnes>(lists, n * s.C + c, rows, cols, s, [&](int64_t tap, int64_t out, float v) {
            add_row<kOnes>(ac + tap * KP, g + out * KP, v, KP / 16);
          });
        }
      }
      for (int64_t k = 0; k < s.K; ++k) {  // dW rows are (c, tap)-contiguous per k: short runs, once per call
        float* dw = gw + k * s.C * RS;
        for (int64_t i = c0 * RS; i < c1 * RS; ++i) dw[i] += a[(i - c0 * RS) * KP + k];
      }
    }
  }
}

// gy (N,K,P,Q) -> (N, P·Q, K padded): a row of K gradients per output pixel.
AlignedFloats gy_by_pixel(const float* gy, const Conv2dShape& s) {
  const int64_t PQ = s.P * s.Q, KP = padded_k(s);
  AlignedFloats gyt(s.N * PQ * KP);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < s.N; ++n) {
    float* out = gyt.get() + n * PQ * KP;
    const float* in = gy + n * s.K * PQ;
    for (int64_t pq = 0; pq < PQ; ++pq)
      for (int64_t k = s.K; k < KP; ++k) out[pq * KP + k] = 0.f;
    for (int64_t k0 = 0; k0 < s.K; k0 += 16)  // 16 channels at a time: 16 read streams, 64-byte writes
      for (int64_t pq = 0; pq < PQ; ++pq)
        for (int64_t k = k0; k < std::min(s.K, k0 + 16); ++k) out[pq * KP + k] = in[k * PQ + pq];
  }
  return gyt;
}

// gb[k] += Σ gy[n,k,p,q], images then pixels in order. Not the im2col path's Eigen sum: that one peels its
// vector loop by the pointer's alignment, so its bits would depend on where gy happens to lie, and this path
// promises the same bits for the same values.
void bias_gradient(const float* gy, float* gb, const Conv2dShape& s) {
  const int64_t PQ = s.P * s.Q;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < s.K; ++k) {
    float acc = 0.f;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t pq = 0; pq < PQ; ++pq) acc += gy[(n * s.K + k) * PQ + pq];
    gb[k] += acc;
  }
}

template <class XIn>
void backward_weight(const XIn* x, float scale, const float* gy, float* gw, float* gb, const Conv2dShape& s) {
  check_shape(s);
  if (gb) bias_gradient(gy, gb, s);
  if (!gw) return;
  const NonzeroLists lists = build_nonzero_lists(x, scale, s);
  const AlignedFloats gyt = gy_by_pixel(gy, s);
  if (lists.all_ones) backward_weight_chunks<true>(lists, gyt.get(), gw, s);
  else backward_weight_chunks<false>(lists, gyt.get(), gw, s);
}

template <class XIn> int64_t count_nonzero(const XIn* x, int64_t n) {
  int64_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : count) if (n >= (1 << 16))
  for (int64_t i = 0; i < n; ++i) count += x[i] != XIn(0);
  return count;
}
}  // namespace

int64_t count_nonzero_cpu(const float* x, int64_t n) { return count_nonzero(x, n); }
int64_t count_nonzero_cpu(const uint8_t* q, int64_t n) { return count_nonzero(q, n); }

bool conv2d_sparse_pays(const Conv2dShape& s, int64_t nonzero) {
  return s.H < 65536 && s.W < 65536 && double(nonzero) <= kConv2dSparseMaxDensity * double(s.N * s.C * s.H * s.W);
}

// What bench_conv_sparse measured at 170 ‰ (docs/perf.md): the forward wins 1.4–1.7× on VGGSNN's stride-1 3x3
// layers up to 16x16 outputs and loses on stride 2 (0.5–1.1×: the input the lists are built from is 4× the
// output the gather saves on), on 1x1 kernels (0.6×: nine times less work per non-zero to pay for the lists), on
// 32x32 outputs (0.7×: the gather lists outgrow the cache) and at K = 32 (0.5×); the weight gradient wins
// 1.2–2.4× on 3x3 kernels up to 8x8 outputs, breaks even at 16x16 and loses on 1x1 kernels (0.4–0.7×).
bool conv2d_sparse_forward_shape(const Conv2dShape& s) {
  return s.C >= kConv2dSparseMinChannels && s.K >= 64 && s.stride == 1 && s.R * s.S > 1 && s.P * s.Q <= 256;
}
bool conv2d_sparse_backward_weight_shape(const Conv2dShape& s) {
  return s.C >= kConv2dSparseMinChannels && s.R * s.S > 1 && s.P * s.Q <= 64;
}

void conv2d_forward_sparse_cpu(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s) {
  check_shape(s);
  constexpr int64_t KB = kForwardKBlock;
  const int64_t CRS = s.C * s.R * s.S, blocks = ceil_div(s.K, KB);
  // w (K,C,R,S) -> (K-block, C·R·S, KB), zero beyond K: a weight row per (channel, tap), KB floats long. 16 output
  // channels at a time: 16 contiguous read streams and 64-byte writes (k innermost alone would read with a
  // stride of C·R·S floats, a cache miss per element: 12 ms for a 512x512x3x3 weight, measured).
  AlignedFloats wt_buffer(blocks * CRS * KB);
  float* const wt = wt_buffer.get();
#pragma omp parallel for schedule(static)
  for (int64_t k0 = 0; k0 < blocks * KB; k0 += 16) {
    float* out = wt + (k0 / KB) * CRS * KB + k0 % KB;
    for (int64_t i = 0; i < CRS; ++i)
      for (int64_t k = k0; k < k0 + 16; ++k) out[i * KB + k - k0] = k < s.K ? w[k * CRS + i] : 0.f;
  }
  const NonzeroLists lists = build_nonzero_lists(x, 1.f, s);
  if (lists.all_ones) forward_gather<true>(lists, wt, b, y, s);
  else forward_gather<false>(lists, wt, b, y, s);
}

void conv2d_backward_weight_sparse_cpu(const float* x, const float* gy, float* gw, float* gb, const Conv2dShape& s) {
  backward_weight(x, 1.f, gy, gw, gb, s);
}

void conv2d_backward_weight_sparse_packed_cpu(const uint8_t* x_levels, int levels, const float* gy, float* gw,
                                              float* gb, const Conv2dShape& s) {
  SG_CHECK(levels >= 1, "conv2d (sparse input): levels must be >= 1, got " << levels);
  backward_weight(x_levels, 1.f / float(levels), gy, gw, gb, s);
}

}  // namespace spikegrad
