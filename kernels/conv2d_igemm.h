// Hand-written implicit-GEMM convolution for CUDA: fp32 FMA or TF32 tensor cores (fp32 accumulate).
//
// Same math, shapes and accumulation rules as kernels/conv2d.h (NCHW activations, OIHW weights,
// cross-correlation, zero padding). Each pass is one GEMM whose operands are never materialised: a
// thread computes the tensor offset of the element it loads from the convolution indices (an im2col
// that exists only as index math):
//   forward          C(M=N·P·Q, K) = A(M, C·R·S) · B(C·R·S, K)    A = x gathered, B[crs][k] = w[k][crs]
//   backward data    C(M=N·H·W, C) = A(M, K·R·S) · B(K·R·S, C)    A[(n,h,w),(k,r,s)] = gy[n,k,(h+pad-r)/stride,
//                                                                  (w+pad-s)/stride] when divisible and in range
//   backward weight  C(M=K, C·R·S) = A(K, N·P·Q) · B(N·P·Q, C·R·S) A = gy, B = x gathered
// The reduction index is split in mixed radix: (c,r,s), (k,r,s) and (n,p,q) respectively.
//
// x may be float, or uint8 "levels" q meaning x = x_scale·q (spikes 0/1, avg-pooled spikes k/4): the
// kernels read the bytes directly, so a spike tensor needs no float copy. For float x, x_scale must be 1.
// Accumulation: forward overwrites y (plus bias when b is non-null); backward adds into gx / gw / gb.
// Determinism: no float atomics anywhere; split-K partials and the bias sums are added in a fixed order,
// so a run gives the same bits every time on the same device (the split count depends on its SM count).
//
// Everything a kernel computes an index with lives here as SG_HD functions, so that
// tests/test_conv2d_igemm.cpp can run the exact tile decomposition on the CPU against the reference.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/check.h"
#include "kernels/common.h"
#include "kernels/conv2d.h"

namespace spikegrad {

enum class ConvMath { fp32, tf32 };  // tf32: tensor-core MMA with TF32 inputs, fp32 accumulate

// Device pointers, default stream; TIn = float or uint8_t. y = conv(x, w) + b (b may be null).
// Scratch is the caller's: `workspace` is device memory of workspace_bytes >= the pass's *_workspace_bytes
// for the same shape and math (the split-K partials; null when that is 0), in use until the pass's launches
// have run (stream order: a caching allocator may release it right after the call).
template <class TIn>
void conv2d_igemm_forward_cuda(const TIn* x, float x_scale, const float* w, const float* b, float* y,
                               const Conv2dShape& s, ConvMath math, void* workspace, size_t workspace_bytes);
size_t conv2d_igemm_forward_workspace_bytes(const Conv2dShape& s, ConvMath math);
// gx += dgrad.
void conv2d_igemm_backward_data_cuda(const float* w, const float* gy, float* gx, const Conv2dShape& s, ConvMath math,
                                     void* workspace, size_t workspace_bytes);
size_t conv2d_igemm_backward_data_workspace_bytes(const Conv2dShape& s, ConvMath math);
// gw += wgrad and gb += Σ gy (each skipped when null); the workspace holds the split-K partials of gw and
// the per-group partial sums of gb, sized for the gradients wanted.
template <class TIn>
void conv2d_igemm_backward_weight_cuda(const TIn* x, float x_scale, const float* gy, float* gw, float* gb,
                                       const Conv2dShape& s, ConvMath math, void* workspace, size_t workspace_bytes);
size_t conv2d_igemm_backward_weight_workspace_bytes(const Conv2dShape& s, ConvMath math, bool want_gw, bool want_gb);

namespace igemm {

// 32-bit copy of the shape for the kernels; to_conv_idx checks that every per-image size and every GEMM
// extent fits, so only offsets that include the batch index need 64 bits.
struct ConvIdx {
  int N, C, H, W, K, R, S, P, Q, stride, pad;
};

// Limits: every per-image tensor and every GEMM extent below 2^31 (minus room for a tile overhanging the
// edge), spatial sizes below 2^26 so that kOffGrid plus any coordinate stays negative.
inline ConvIdx to_conv_idx(const Conv2dShape& s, const char* op) {
  const int64_t big = (int64_t(1) << 31) - (int64_t(1) << 16), spatial = int64_t(1) << 26;
  for (int64_t d : {s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.P, s.Q, s.stride, s.pad})
    SG_CHECK(d >= 0, op << ": negative dimension " << d);
  SG_CHECK(s.stride >= 1, op << ": stride must be >= 1, got " << s.stride);
  for (int64_t d : {s.H + 2 * s.pad, s.W + 2 * s.pad, s.R, s.S, s.P * s.stride, s.Q * s.stride})
    SG_CHECK(d < spatial, op << ": spatial extent " << d << " exceeds " << spatial);
  for (int64_t d : {s.C * s.H * s.W, s.K * s.P * s.Q, s.K * s.C * s.R * s.S, s.N * s.P * s.Q, s.N * s.H * s.W})
    SG_CHECK(d < big, op << ": extent " << d << " exceeds the 32-bit index range of the implicit GEMM");
  ConvIdx idx;
  idx.N = int(s.N), idx.C = int(s.C), idx.H = int(s.H), idx.W = int(s.W);
  idx.K = int(s.K), idx.R = int(s.R), idx.S = int(s.S), idx.P = int(s.P), idx.Q = int(s.Q);
  idx.stride = int(s.stride), idx.pad = int(s.pad);
  return idx;
}

// Coordinate given to a row/column past the GEMM edge: so negative that every bounds test on it fails,
// so a load slot needs no separate "valid" flag (one register less per slot).
constexpr int kOffGrid = -(1 << 28);

// ---- mixed-radix reduction index ------------------------------------------------------------------
// v = (hi·mid_n + mid)·lo_n + lo. A thread's reduction index moves by BK every chunk; advancing the
// digits with carries replaces two integer divisions per load by a few adds.
struct Radix3 {
  int hi, mid, lo;
};
SG_HD Radix3 radix3_split(int v, int mid_n, int lo_n) {
  const int t = v / lo_n;
  return {t / mid_n, t % mid_n, v % lo_n};
}
// d += step, where step = radix3_split(BK, ...): digits stay below their extents, so one conditional
// subtraction per digit suffices (mid + step.mid + carry <= 2·mid_n - 1).
SG_HD void radix3_advance(Radix3& d, const Radix3& step, int mid_n, int lo_n) {
  d.lo += step.lo;
  int carry = d.lo >= lo_n;
  if (carry) d.lo -= lo_n;
  d.mid += step.mid + carry;
  carry = d.mid >= mid_n;
  if (carry) d.mid -= mid_n;
  d.hi += step.hi + carry;
}

// ---- the three GEMM views -------------------------------------------------------------------------
// Each view gives: GEMM extents; the mixed radix of the reduction index; per operand a "slot" (what a
// thread precomputes once for the row of A / column of B it loads) and the element offset for a
// reduction index (-1: a zero, from padding, the stride grid or the edge); and C's offset split into a
// row part and a column part. kAKFast / kBKFast: whether the reduction index (true) or the outer index
// walks across the lanes of a warp when a tile is loaded, whichever makes global reads contiguous.
// kCRowsContiguous: consecutive GEMM rows are adjacent in C (epilogue vectorises along rows), else
// consecutive columns are, in runs of c_run elements (float4 stores need c_run % 4 == 0).

struct FwdView {  // rows m = (n,p,q), columns k, reduction (c,r,s)
  static constexpr bool kAKFast = false, kBKFast = true, kCRowsContiguous = true;
  static int64_t gemm_m(const ConvIdx& s) { return int64_t(s.N) * s.P * s.Q; }
  static int64_t gemm_n(const ConvIdx& s) { return s.K; }
  static int64_t gemm_k(const ConvIdx& s) { return int64_t(s.C) * s.R * s.S; }
  SG_HD static int red_mid(const ConvIdx& s) { return s.R; }
  SG_HD static int red_lo(const ConvIdx& s) { return s.S; }

  struct ASlot {
    int64_t base;  // n·C·H·W
    int h0, w0;    // top-left input pixel of the receptive field (p·stride - pad, q·stride - pad)
  };
  SG_HD static ASlot a_slot(const ConvIdx& s, int m, int M) {
    if (m >= M) return {0, kOffGrid, kOffGrid};
    const int pq = s.P * s.Q, n = m / pq, rest = m - n * pq, p = rest / s.Q, q = rest - p * s.Q;
    return {int64_t(n) * s.C * s.H * s.W, p * s.stride - s.pad, q * s.stride - s.pad};
  }
  SG_HD static int64_t a_offset(const ConvIdx& s, const ASlot& a, const Radix3& k) {  // k = (c, r, s)
    const int h = a.h0 + k.mid, w = a.w0 + k.lo;
    if (unsigned(h) >= unsigned(s.H) || unsigned(w) >= unsigned(s.W)) return -1;
    return a.base + (k.hi * s.H + h) * s.W + w;
  }
  struct BSlot {
    int row;  // k·C·R·S, -1 past the edge
  };
  SG_HD static BSlot b_slot(const ConvIdx& s, int n, int N) { return {n < N ? n * s.C * s.R * s.S : -1}; }
  SG_HD static int64_t b_offset(const ConvIdx& s, const BSlot& b, const Radix3& k) {
    return b.row < 0 ? -1 : b.row + (k.hi * s.R + k.mid) * s.S + k.lo;
  }
  SG_HD static int64_t c_row(const ConvIdx& s, int m) {  // y[n, ., p, q]
    const int pq = s.P * s.Q, n = m / pq;
    return int64_t(n) * s.K * pq + (m - n * pq);
  }
  SG_HD static int64_t c_col(const ConvIdx& s, int k) { return int64_t(k) * s.P * s.Q; }
  static int64_t c_run(const ConvIdx& s) { return int64_t(s.P) * s.Q; }  // contiguous rows in C
};

struct DgradView {  // rows m = (n,h,w), columns c, reduction (k,r,s)
  static constexpr bool kAKFast = false, kBKFast = true, kCRowsContiguous = true;
  static int64_t gemm_m(const ConvIdx& s) { return int64_t(s.N) * s.H * s.W; }
  static int64_t gemm_n(const ConvIdx& s) { return s.C; }
  static int64_t gemm_k(const ConvIdx& s) { return int64_t(s.K) * s.R * s.S; }
  SG_HD static int red_mid(const ConvIdx& s) { return s.R; }
  SG_HD static int red_lo(const ConvIdx& s) { return s.S; }

  struct ASlot {
    int64_t base;  // n·K·P·Q
    int hp, wp;    // h + pad, w + pad
  };
  SG_HD static ASlot a_slot(const ConvIdx& s, int m, int M) {
    if (m >= M) return {0, kOffGrid, kOffGrid};
    const int hw = s.H * s.W, n = m / hw, rest = m - n * hw, h = rest / s.W, w = rest - h * s.W;
    return {int64_t(n) * s.K * s.P * s.Q, h + s.pad, w + s.pad};
  }
  // Output pixel (p,q) saw input (h,w) through tap (r,s) iff p·stride = h + pad - r (same for q).
  SG_HD static int64_t a_offset(const ConvIdx& s, const ASlot& a, const Radix3& k) {  // k = (k, r, s)
    const int ph = a.hp - k.mid, pw = a.wp - k.lo;
    if (ph < 0 || pw < 0) return -1;
    int p = ph, q = pw;
    if (s.stride != 1) {
      p = ph / s.stride;
      q = pw / s.stride;
      if (p * s.stride != ph || q * s.stride != pw) return -1;  // between two output pixels
    }
    if (p >= s.P || q >= s.Q) return -1;
    return a.base + (k.hi * s.P + p) * s.Q + q;
  }
  struct BSlot {
    int col;  // c·R·S, -1 past the edge
  };
  SG_HD static BSlot b_slot(const ConvIdx& s, int n, int N) { return {n < N ? n * s.R * s.S : -1}; }
  SG_HD static int64_t b_offset(const ConvIdx& s, const BSlot& b, const Radix3& k) {  // w[k, c, r, s]
    return b.col < 0 ? -1 : k.hi * s.C * s.R * s.S + b.col + k.mid * s.S + k.lo;
  }
  SG_HD static int64_t c_row(const ConvIdx& s, int m) {  // gx[n, ., h, w]
    const int hw = s.H * s.W, n = m / hw;
    return int64_t(n) * s.C * hw + (m - n * hw);
  }
  SG_HD static int64_t c_col(const ConvIdx& s, int c) { return int64_t(c) * s.H * s.W; }
  static int64_t c_run(const ConvIdx& s) { return int64_t(s.H) * s.W; }
};

struct WgradView {  // rows k, columns (c,r,s), reduction (n,p,q)
  static constexpr bool kAKFast = true, kBKFast = true, kCRowsContiguous = false;
  static int64_t gemm_m(const ConvIdx& s) { return s.K; }
  static int64_t gemm_n(const ConvIdx& s) { return int64_t(s.C) * s.R * s.S; }
  static int64_t gemm_k(const ConvIdx& s) { return int64_t(s.N) * s.P * s.Q; }
  SG_HD static int red_mid(const ConvIdx& s) { return s.P; }
  SG_HD static int red_lo(const ConvIdx& s) { return s.Q; }

  struct ASlot {
    int row;  // k·P·Q, -1 past the edge
  };
  SG_HD static ASlot a_slot(const ConvIdx& s, int m, int M) { return {m < M ? m * s.P * s.Q : -1}; }
  SG_HD static int64_t a_offset(const ConvIdx& s, const ASlot& a, const Radix3& j) {  // j = (n, p, q)
    return a.row < 0 ? -1 : int64_t(j.hi) * s.K * s.P * s.Q + a.row + j.mid * s.Q + j.lo;
  }
  struct BSlot {
    int chw;     // c·H·W
    int r0, s0;  // r - pad, s - pad
  };
  SG_HD static BSlot b_slot(const ConvIdx& s, int n, int N) {
    if (n >= N) return {0, kOffGrid, kOffGrid};
    const int rs = s.R * s.S, c = n / rs, rest = n - c * rs, r = rest / s.S, t = rest - r * s.S;
    return {c * s.H * s.W, r - s.pad, t - s.pad};
  }
  SG_HD static int64_t b_offset(const ConvIdx& s, const BSlot& b, const Radix3& j) {
    const int h = j.mid * s.stride + b.r0, w = j.lo * s.stride + b.s0;
    if (unsigned(h) >= unsigned(s.H) || unsigned(w) >= unsigned(s.W)) return -1;
    return int64_t(j.hi) * s.C * s.H * s.W + b.chw + h * s.W + w;
  }
  SG_HD static int64_t c_row(const ConvIdx& s, int k) { return int64_t(k) * s.C * s.R * s.S; }
  SG_HD static int64_t c_col(const ConvIdx&, int crs) { return crs; }
  static int64_t c_run(const ConvIdx& s) { return int64_t(s.C) * s.R * s.S; }  // contiguous columns
};

// ---- block tile and thread mapping ---------------------------------------------------------------
constexpr int kThreads = 256;  // 8 warps; every tile shape below is a 16x16 grid of threads
struct TileShape {
  int bm, bn;
};
// Largest first. 128x128 with 8x8 per thread is the classic SGEMM sweet spot (64 FMAs per 16 floats
// read from shared memory); the smaller ones exist for narrow GEMMs (K or C = 64) and for shapes with few tiles.
constexpr TileShape kTileShapes[3] = {{128, 128}, {128, 64}, {64, 64}};
constexpr int kNumTileShapes = 3;
// Reduction depth per chunk: 8, one k8 MMA step for TF32. 16 would halve the barriers, but the second
// reduction slot per thread pushed the TF32 kernels past their register caps (ptxas spilled 112-248
// bytes per thread at every tile shape, 192 at 128x128 with 128 registers), so both paths use 8.
// The loader handles BK = 8·KI generally.
SG_HD constexpr int chunk_depth(bool /*tf32*/) { return 8; }

// Which tile element a thread loads: reduction index kl (slot ki < BK/8) and outer index ol (slot
// i < BM/32 or BN/32). Outer-fast: a warp reads 32 consecutive rows at one reduction index (32
// consecutive output pixels); k-fast: 8 consecutive reduction indices (a 32-byte sector) of 4 rows.
SG_HD int load_kl(bool k_fast, int tid, int ki) {
  const int lane = tid & 31, warp = tid >> 5;
  return (k_fast ? (lane & 7) : warp) + 8 * ki;
}
SG_HD int load_ol(bool k_fast, int tid, int i) {
  const int lane = tid & 31, warp = tid >> 5;
  return (k_fast ? (lane >> 3) + 4 * warp : lane) + 32 * i;
}

// fp32 micro-tile: thread (tm, tn) of the 16x16 grid owns rows h·64 + tm·4 + i (h < BM/64, i < 4)
// and columns g·64 + tn·4 + j, so its shared reads are float4s and a warp's stores are contiguous
// along whichever GEMM dimension is contiguous in C (that index varies fastest across lanes).
SG_HD int simt_tm(bool rows_contiguous, int tid) { return rows_contiguous ? tid % 16 : tid / 16; }
SG_HD int simt_tn(bool rows_contiguous, int tid) { return rows_contiguous ? tid / 16 : tid % 16; }
SG_HD int simt_index(int t, int h, int i) { return h * 64 + t * 4 + i; }

// TF32: warp w computes a 32 x (BN / (8 / (BM/32))) sub-tile as 16x16 wmma fragments.
SG_HD constexpr int tf32_warps_m(int bm) { return bm / 32; }
SG_HD constexpr int tf32_warp_cols(int bm, int bn) { return bn / (8 / tf32_warps_m(bm)); }
SG_HD int tf32_row0(int bm, int warp, int fm) { return (warp % tf32_warps_m(bm)) * 32 + fm * 16; }
SG_HD int tf32_col0(int bm, int bn, int warp, int fn) {
  return (warp / tf32_warps_m(bm)) * tf32_warp_cols(bm, bn) + fn * 16;
}

// Block b: tile (b / tiles_n, b % tiles_n) — columns fastest, so the blocks running together share
// their A tile (activations, the big operand) in L2 while B (weights) is small anyway.
SG_HD void tile_coords(int64_t block, int64_t tiles_n, int64_t& tile_m, int64_t& tile_n) {
  tile_m = block / tiles_n;
  tile_n = block - tile_m * tiles_n;
}

// ---- plan: tile shape and split-K ---------------------------------------------------------------
struct IgemmPlan {
  int shape = 0;  // index into kTileShapes
  int bm = 128, bn = 128, bk = 8;
  int64_t tiles_m = 0, tiles_n = 0;
  int splits = 1;                // blocks along the reduction; > 1 writes partials, summed in split order
  int64_t chunks_per_split = 0;  // BK-deep chunks per split (the last split may have fewer)
};
SG_HD int64_t split_k_begin(const IgemmPlan& p, int split) { return int64_t(split) * p.chunks_per_split * p.bk; }
SG_HD int64_t split_k_end(const IgemmPlan& p, int split, int64_t gemm_k) {
  const int64_t end = split_k_begin(p, split) + p.chunks_per_split * p.bk;
  return end < gemm_k ? end : gemm_k;
}

constexpr int kMaxSplits = 1024;
constexpr int64_t kMaxWorkspaceFloats = int64_t(64) << 20;  // 256 MiB of partials at most

// Tile shape and split count minimising a simple cost model: the busiest SM runs ceil(blocks / SMs)
// blocks one after another, each costing bm·bn·(chunks + 10) with split-K (writing a partial tile and
// reading it back in igemm_sum_splits: 8 bytes per element at ~25 GB/s per SM, against 16 FLOP per
// element per chunk at ~0.5 TFLOP/s per SM, is about 10 chunks), divided by the shape's relative
// efficiency (smaller tiles do fewer FMAs per shared load); under two blocks per SM there is too
// little to hide latency (x1.3).
// Splitting is worth it where tiles alone cannot fill the device (512->512 @4x4 forward, every
// backward-weight: its M·N is small and its reduction N·P·Q large). The partials of all splits are
// capped at kMaxWorkspaceFloats (splits · M·N floats).
inline IgemmPlan plan_igemm(int64_t M, int64_t N, int64_t K, bool tf32, int sms) {
  static constexpr double kEfficiency[kNumTileShapes] = {1.0, 0.9, 0.75};
  IgemmPlan best;
  double best_cost = -1;
  const int bk = chunk_depth(tf32);
  const int64_t chunks = std::max<int64_t>(1, ceil_div(K, bk));
  for (int t = 0; t < kNumTileShapes; ++t) {
    const int64_t tiles_m = ceil_div(M, kTileShapes[t].bm), tiles_n = ceil_div(N, kTileShapes[t].bn);
    const int64_t tiles = tiles_m * tiles_n;
    const int64_t max_splits = std::min<int64_t>(
        {kMaxSplits, chunks, std::max<int64_t>(1, kMaxWorkspaceFloats / std::max<int64_t>(1, M * N))});
    int64_t last_cps = -1;
    for (int64_t want = 1; want <= max_splits; ++want) {
      const int64_t cps = ceil_div(chunks, want);
      if (cps == last_cps) continue;  // same partition as a smaller split count
      last_cps = cps;
      const int64_t splits = ceil_div(chunks, cps);  // no empty split
      const int64_t blocks = tiles * splits;
      double cost = double(ceil_div(blocks, sms)) * kTileShapes[t].bm * kTileShapes[t].bn *
                    double(cps + (splits > 1 ? 10 : 0)) / kEfficiency[t];
      if (blocks < 2 * int64_t(sms)) cost *= 1.3;
      if (best_cost < 0 || cost < best_cost) {
        best_cost = cost;
        best.shape = t;
        best.bm = kTileShapes[t].bm;
        best.bn = kTileShapes[t].bn;
        best.bk = bk;
        best.tiles_m = tiles_m;
        best.tiles_n = tiles_n;
        best.splits = int(splits);
        best.chunks_per_split = cps;
      }
    }
  }
  return best;
}

}  // namespace igemm
}  // namespace spikegrad
