// The implicit-GEMM kernel template shared by kernels/conv2d_igemm.cu (forward, backward data) and
// kernels/conv2d_igemm_wgrad.cu (backward weight): one template, three views (kernels/conv2d_igemm.h).
//
// Block: 256 threads, a BM x BN tile of C, the reduction walked in BK-deep chunks. Per chunk every
// thread gathers BM·BK/256 elements of A and BN·BK/256 of B into registers (predicated: padding, edges
// and the stride grid read as zeros), while the previous chunk is multiplied out of shared memory; the
// registers then go to the other of two shared buffers, so there is one barrier per chunk and the
// global loads of chunk c+1 are in flight during the math of chunk c. Register staging (rather than
// cp.async) lets uint8 inputs be widened and scaled, and TF32 rounding happen, once per element.
// Shared layout: A as [BK][BM + PAD], B as [BK][BN + PAD] (reduction index major), so the fp32 path
// reads float4 runs of rows/columns and wmma reads A col-major / B row-major. PAD 4 makes the k-fast
// stores conflict-free; PAD 8 makes the TF32 fragment loads conflict-free (rows 8 banks apart).
//
// The kernel is set-up, main_loop and an epilogue. The loader (TileLoader), the pipelined main loop and
// the element writes are shared; the math is one of two structs with the same face (multiply a chunk
// out of shared memory; store the tile):
//   SimtMath  fp32: thread (tm, tn) accumulates a (BM/16) x (BN/16) micro-tile (8x8 for 128x128: 64
//             FMAs per 4 float4 shared loads).
//   Tf32Math  TF32: 8 warps, each a 32 x (BM·BN/256) sub-tile of m16n16k8 wmma fragments.
//
// Epilogue, split == 1: C = acc (+ bias[col]) or C += acc, float4 along C's contiguous dimension where
// the host allows it. split > 1: the raw partial tile goes to slice `split` of the caller's workspace
// (igemm_workspace_bytes sizes it); igemm_sum_splits adds the slices in split order (deterministic, no
// atomics), then the bias, then into C.
#pragma once
#include <mma.h>

#include <algorithm>
#include <type_traits>

#include "kernels/conv2d_igemm.h"
#include "kernels/cuda_utils.cuh"
#include "kernels/vector_io.cuh"

namespace spikegrad::igemm {

template <class TA, class TB>
struct GemmArgs {
  ConvIdx s;
  int M, N, K;  // GEMM extents
  IgemmPlan plan;
  const TA* a;
  const TB* b;
  float a_scale, b_scale;  // uint8 operands: value = scale · level (unused for float)
  float* c;                // C, or the partial slices when plan.splits > 1
  const float* bias;       // by GEMM column, or null (always null with splits > 1)
  int64_t split_stride;    // floats between partial slices (M·N), 0 without split
  bool accumulate;         // C += result, else C = result
  bool vec4;               // C's contiguous runs are multiples of 4 and 16-byte aligned
};

__device__ __forceinline__ float load_element(const float* p, int64_t off, float) {
  return off >= 0 ? __ldg(p + off) : 0.f;
}
__device__ __forceinline__ float load_element(const uint8_t* p, int64_t off, float scale) {
  return off >= 0 ? float(__ldg(p + off)) * scale : 0.f;
}

// Gathers chunks of A and B into registers and stores them into shared memory (see the file comment).
template <class View, int BM, int BN, int BK, int PAD, bool TF32, class TA, class TB>
struct TileLoader {
  static constexpr int KI = BK / 8, AI = BM / 32, BI = BN / 32, LDA = BM + PAD, LDB = BN + PAD;
  typename View::ASlot aslot[AI];
  typename View::BSlot bslot[BI];
  Radix3 ared[KI], bred[KI], step;
  int a_k[KI], b_k[KI];  // reduction index of each slot in the chunk fetched next
  int mid_n, lo_n, kend;
  float areg[KI][AI], breg[KI][BI];

  __device__ TileLoader(const GemmArgs<TA, TB>& p, int m0, int n0, int kbeg, int kend_) : kend(kend_) {
    const int tid = threadIdx.x;
    mid_n = View::red_mid(p.s);
    lo_n = View::red_lo(p.s);
    step = radix3_split(BK, mid_n, lo_n);
#pragma unroll
    for (int i = 0; i < AI; ++i) aslot[i] = View::a_slot(p.s, m0 + load_ol(View::kAKFast, tid, i), p.M);
#pragma unroll
    for (int i = 0; i < BI; ++i) bslot[i] = View::b_slot(p.s, n0 + load_ol(View::kBKFast, tid, i), p.N);
#pragma unroll
    for (int ki = 0; ki < KI; ++ki) {
      a_k[ki] = kbeg + load_kl(View::kAKFast, tid, ki);
      b_k[ki] = kbeg + load_kl(View::kBKFast, tid, ki);
      ared[ki] = radix3_split(a_k[ki], mid_n, lo_n);
      bred[ki] = radix3_split(b_k[ki], mid_n, lo_n);
    }
  }

  __device__ __forceinline__ void fetch(const GemmArgs<TA, TB>& p) {
#pragma unroll
    for (int ki = 0; ki < KI; ++ki) {
      const bool a_in = a_k[ki] < kend, b_in = b_k[ki] < kend;
#pragma unroll
      for (int i = 0; i < AI; ++i)
        areg[ki][i] = load_element(p.a, a_in ? View::a_offset(p.s, aslot[i], ared[ki]) : -1, p.a_scale);
#pragma unroll
      for (int i = 0; i < BI; ++i)
        breg[ki][i] = load_element(p.b, b_in ? View::b_offset(p.s, bslot[i], bred[ki]) : -1, p.b_scale);
      radix3_advance(ared[ki], step, mid_n, lo_n);
      radix3_advance(bred[ki], step, mid_n, lo_n);
      a_k[ki] += BK;
      b_k[ki] += BK;
    }
  }

  static __device__ __forceinline__ float operand(float v) {
    if constexpr (TF32)
      return nvcuda::wmma::__float_to_tf32(v);  // round once here, not per fragment load
    else
      return v;
  }

  __device__ __forceinline__ void stash(float* As, float* Bs) const {
    const int tid = threadIdx.x;
#pragma unroll
    for (int ki = 0; ki < KI; ++ki) {
#pragma unroll
      for (int i = 0; i < AI; ++i)
        As[load_kl(View::kAKFast, tid, ki) * LDA + load_ol(View::kAKFast, tid, i)] = operand(areg[ki][i]);
#pragma unroll
      for (int i = 0; i < BI; ++i)
        Bs[load_kl(View::kBKFast, tid, ki) * LDB + load_ol(View::kBKFast, tid, i)] = operand(breg[ki][i]);
    }
  }
};

// ---- writing C ----------------------------------------------------------------------------------
template <class TA, class TB>
__device__ __forceinline__ void emit(const GemmArgs<TA, TB>& p, float* c, int64_t off, float v) {
  if (p.accumulate) v += c[off];
  c[off] = v;
}
// Four consecutive floats of C at off (16-byte aligned: the host's vec4 says so).
template <class TA, class TB>
__device__ __forceinline__ void emit4(const GemmArgs<TA, TB>& p, float* c, int64_t off, float4 v) {
  if (p.accumulate) {
    const float4 old = load4(c + off);
    v.x += old.x, v.y += old.y, v.z += old.z, v.w += old.w;
  }
  store4(c + off, v);
}
// C element (m, n), both in range; the scalar path of both epilogues.
template <class View, class TA, class TB>
__device__ __forceinline__ void emit_at(const GemmArgs<TA, TB>& p, float* c, int m, int n, float v) {
  emit(p, c, View::c_row(p.s, m) + View::c_col(p.s, n), v);
}
template <class TA, class TB>
__device__ __forceinline__ float bias_at(const GemmArgs<TA, TB>& p, int n) {
  return p.bias ? p.bias[n] : 0.f;
}

// ---- the block's shared memory -------------------------------------------------------------------
// Two chunk buffers each of A [BK][LDA] and of B [BK][LDB]: the main loop multiplies one while the
// next chunk is stored into the other.
template <int BM_, int BN_, bool TF32_>
struct TileConfig {
  static constexpr int BM = BM_, BN = BN_, BK = chunk_depth(TF32_), PAD = TF32_ ? 8 : 4;
  static constexpr int LDA = BM + PAD, LDB = BN + PAD;
  static constexpr int kSmemFloats = 2 * BK * (LDA + LDB);
  static __device__ __forceinline__ float* a_buffer(float* smem, int buf) { return smem + buf * BK * LDA; }
  static __device__ __forceinline__ float* b_buffer(float* smem, int buf) {
    return smem + 2 * BK * LDA + buf * BK * LDB;
  }
};

// ---- main loop, shared by both math paths --------------------------------------------------------
// Chunk 0 is gathered and stored before the loop; during math.multiply on chunk c (buffer c & 1) the
// global loads of chunk c+1 are in flight, and they go to the other buffer afterwards: one barrier per
// chunk. On return every thread has passed the last barrier, so the tile buffers are free (the TF32
// epilogue stages through them).
template <class Cfg, class Loader, class Math, class Args>
__device__ __forceinline__ void main_loop(const Args& p, Loader& loader, Math& math, float* smem, int nchunks) {
  if (nchunks > 0) {
    loader.fetch(p);
    loader.stash(Cfg::a_buffer(smem, 0), Cfg::b_buffer(smem, 0));
  }
  __syncthreads();
  for (int chunk = 0; chunk < nchunks; ++chunk) {
    const int buf = chunk & 1;
    if (chunk + 1 < nchunks) loader.fetch(p);
    math.multiply(Cfg::a_buffer(smem, buf), Cfg::b_buffer(smem, buf));
    if (chunk + 1 < nchunks) loader.stash(Cfg::a_buffer(smem, buf ^ 1), Cfg::b_buffer(smem, buf ^ 1));
    __syncthreads();
  }
}

// ---- fp32 FMA math -------------------------------------------------------------------------------
// Thread (tm, tn) accumulates a TM x TN micro-tile (rows simt_index(tm, h, i), columns simt_index(tn, g, j)).
template <class View, class Cfg>
struct SimtMath {
  static constexpr int TM = Cfg::BM / 16, TN = Cfg::BN / 16, BK = Cfg::BK, LDA = Cfg::LDA, LDB = Cfg::LDB;
  int tm, tn;
  float acc[TM][TN];

  __device__ __forceinline__ explicit SimtMath(int tid)
      : tm(simt_tm(View::kCRowsContiguous, tid)), tn(simt_tn(View::kCRowsContiguous, tid)) {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
  }

  // acc += the chunk's A·B: per reduction index, TM/4 + TN/4 float4 shared loads feed TM·TN FMAs.
  __device__ __forceinline__ void multiply(const float* as, const float* bs) {
#pragma unroll
    for (int kl = 0; kl < BK; ++kl) {
      float a[TM], b[TN];
#pragma unroll
      for (int h = 0; h < TM / 4; ++h) {
        const float4 v = load4(as + kl * LDA + simt_index(tm, h, 0));
        a[h * 4] = v.x, a[h * 4 + 1] = v.y, a[h * 4 + 2] = v.z, a[h * 4 + 3] = v.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const float4 v = load4(bs + kl * LDB + simt_index(tn, g, 0));
        b[g * 4] = v.x, b[g * 4 + 1] = v.y, b[g * 4 + 2] = v.z, b[g * 4 + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  }

  // Epilogue: the micro-tile in 4x4 blocks, each written as 4 float4s along C's contiguous dimension (one
  // per column where rows are adjacent in C, one per row where columns are). Kept in one body: split into
  // a function per block, ptxas spilled 72-224 bytes at 128x128 (sm_90).
  template <class TA, class TB>
  __device__ __forceinline__ void store(const GemmArgs<TA, TB>& p, float* c, int m0, int n0, float* /*smem*/) const {
#pragma unroll
    for (int h = 0; h < TM / 4; ++h)
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const int m = m0 + simt_index(tm, h, 0), n = n0 + simt_index(tn, g, 0);
        if constexpr (View::kCRowsContiguous) {
          if (m >= p.M) continue;
          const bool vec = p.vec4 && m + 3 < p.M;
          const int64_t row = View::c_row(p.s, m);
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            if (n + j >= p.N) continue;
            const float bias = bias_at(p, n + j);
            const float v[4] = {acc[h * 4][g * 4 + j] + bias, acc[h * 4 + 1][g * 4 + j] + bias,
                                acc[h * 4 + 2][g * 4 + j] + bias, acc[h * 4 + 3][g * 4 + j] + bias};
            if (vec) {
              emit4(p, c, row + View::c_col(p.s, n + j), make_float4(v[0], v[1], v[2], v[3]));
            } else {
#pragma unroll
              for (int i = 0; i < 4; ++i)
                if (m + i < p.M) emit_at<View>(p, c, m + i, n + j, v[i]);
            }
          }
        } else {
          if (n >= p.N) continue;
          const bool vec = p.vec4 && n + 3 < p.N;
          float bias[4];
#pragma unroll
          for (int j = 0; j < 4; ++j) bias[j] = n + j < p.N ? bias_at(p, n + j) : 0.f;
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            if (m + i >= p.M) continue;
            const float v[4] = {acc[h * 4 + i][g * 4] + bias[0], acc[h * 4 + i][g * 4 + 1] + bias[1],
                                acc[h * 4 + i][g * 4 + 2] + bias[2], acc[h * 4 + i][g * 4 + 3] + bias[3]};
            if (vec) {
              emit4(p, c, View::c_row(p.s, m + i) + View::c_col(p.s, n), make_float4(v[0], v[1], v[2], v[3]));
            } else {
#pragma unroll
              for (int j = 0; j < 4; ++j)
                if (n + j < p.N) emit_at<View>(p, c, m + i, n + j, v[j]);
            }
          }
        }
      }
  }
};

// ---- TF32 tensor-core math -----------------------------------------------------------------------
// Warp w accumulates a 32 x tf32_warp_cols sub-tile as FM x FN m16n16k8 fragments (fp32 accumulate).
namespace wmma = nvcuda::wmma;
template <class View, class Cfg>
struct Tf32Math {
  static constexpr int FM = 2, FN = tf32_warp_cols(Cfg::BM, Cfg::BN) / 16;
  static constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, LDA = Cfg::LDA, LDB = Cfg::LDB;
  static_assert(Cfg::kSmemFloats >= 8 * 256, "the TF32 epilogue stages one 16x16 tile per warp in the tile buffers");
  int warp, lane;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[FM][FN];

  __device__ __forceinline__ explicit Tf32Math(int tid) : warp(tid >> 5), lane(tid & 31) {
#pragma unroll
    for (int fm = 0; fm < FM; ++fm)
#pragma unroll
      for (int fn = 0; fn < FN; ++fn) wmma::fill_fragment(acc[fm][fn], 0.f);
  }

  // acc += the chunk's A·B, one k8 MMA step per 8 reduction indices (A col-major, B row-major in shared).
  __device__ __forceinline__ void multiply(const float* as, const float* bs) {
#pragma unroll
    for (int ks = 0; ks < BK; ks += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> af[FM];
#pragma unroll
      for (int fm = 0; fm < FM; ++fm) wmma::load_matrix_sync(af[fm], as + ks * LDA + tf32_row0(BM, warp, fm), LDA);
#pragma unroll
      for (int fn = 0; fn < FN; ++fn) {
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> bf;
        wmma::load_matrix_sync(bf, bs + ks * LDB + tf32_col0(BM, BN, warp, fn), LDB);
#pragma unroll
        for (int fm = 0; fm < FM; ++fm) wmma::mma_sync(acc[fm][fn], af[fm], bf, acc[fm][fn]);
      }
    }
  }

  // Epilogue: the fragment layout is opaque, so each warp stages one 16x16 tile at a time in its own
  // 1 KiB of the (now idle) tile buffers, then writes it with lanes along C's contiguous dimension.
  template <class TA, class TB>
  __device__ __forceinline__ void store(const GemmArgs<TA, TB>& p, float* c, int m0, int n0, float* smem) {
    float* const stage = smem + warp * 256;
    constexpr auto layout = View::kCRowsContiguous ? wmma::mem_col_major : wmma::mem_row_major;
#pragma unroll
    for (int fm = 0; fm < FM; ++fm)
#pragma unroll
      for (int fn = 0; fn < FN; ++fn) {
        wmma::store_matrix_sync(stage, acc[fm][fn], 16, layout);
        __syncwarp();
        const int r0 = m0 + tf32_row0(BM, warp, fm), c0 = n0 + tf32_col0(BM, BN, warp, fn);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const int fast = lane & 15, slow = (lane >> 4) + 2 * e;  // stage[slow·16 + fast]
          const int m = r0 + (View::kCRowsContiguous ? fast : slow), n = c0 + (View::kCRowsContiguous ? slow : fast);
          if (m < p.M && n < p.N) emit_at<View>(p, c, m, n, stage[slow * 16 + fast] + bias_at(p, n));
        }
        __syncwarp();
      }
  }
};

// Occupancy targets (blocks per SM), i.e. register caps: 128 for fp32 128x128 (64 accumulators), 128x64
// and every TF32 tile, 64 for fp32 64x64. Tighter caps spilled (ptxas -v): 80 registers for fp32
// 128x64 (3 blocks), 64 for TF32 64x64 (4 blocks).
template <int BM, int BN, bool TF32>
constexpr int min_blocks() {
  return !TF32 && BM * BN <= 64 * 64 ? 4 : 2;
}

// One BM x BN tile of C (or of split blockIdx.y's partial slice): set-up, main loop, epilogue.
template <class View, int BM, int BN, bool TF32, class TA, class TB>
__global__ void __launch_bounds__(kThreads, min_blocks<BM, BN, TF32>()) igemm_kernel(const GemmArgs<TA, TB> p) {
  using Cfg = TileConfig<BM, BN, TF32>;
  using Loader = TileLoader<View, BM, BN, Cfg::BK, Cfg::PAD, TF32, TA, TB>;
  using Math = std::conditional_t<TF32, Tf32Math<View, Cfg>, SimtMath<View, Cfg>>;
  __shared__ __align__(128) float smem[Cfg::kSmemFloats];

  int64_t tile_m, tile_n;
  tile_coords(blockIdx.x, p.plan.tiles_n, tile_m, tile_n);
  const int m0 = int(tile_m) * BM, n0 = int(tile_n) * BN, split = int(blockIdx.y);
  const int kbeg = int(split_k_begin(p.plan, split)), kend = int(split_k_end(p.plan, split, p.K));
  const int nchunks = kend > kbeg ? int(ceil_div(kend - kbeg, Cfg::BK)) : 0;

  Loader loader(p, m0, n0, kbeg, kend);
  Math math(threadIdx.x);
  main_loop<Cfg>(p, loader, math, smem, nchunks);
  math.store(p, p.c + split * p.split_stride, m0, n0, smem);
}

// c[i] = (accumulate ? c[i] : 0) + (Σ_split ws[split·numel + i], in split order) + bias[(i / bias_div) % bias_mod].
__global__ void igemm_sum_splits(const float* ws, int splits, int64_t numel, float* c, const float* bias,
                                 int64_t bias_div, int64_t bias_mod, bool accumulate);

inline int igemm_sm_count() {
  static const int count = [] {
    int device = 0, sms = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
  }();
  return count;
}

template <class View, int BM, int BN, class TA, class TB>
void launch_tile(bool tf32, dim3 grid, const GemmArgs<TA, TB>& args) {
  if (tf32)
    igemm_kernel<View, BM, BN, true><<<grid, kThreads>>>(args);
  else
    igemm_kernel<View, BM, BN, false><<<grid, kThreads>>>(args);
  SG_LAUNCH_CHECK();
}

// Bytes of split-K partials (splits slices of M·N floats) that run_igemm needs for this view and shape:
// 0 when the plan does not split. The plan depends on the shape, the math and the device's SM count only,
// so the query and the run agree.
template <class View>
size_t igemm_workspace_bytes(const ConvIdx& s, bool tf32) {
  const int64_t M = View::gemm_m(s), N = View::gemm_n(s), K = View::gemm_k(s);
  if (M == 0 || N == 0) return 0;
  const IgemmPlan plan = plan_igemm(M, N, K, tf32, igemm_sm_count());
  return plan.splits > 1 ? size_t(plan.splits) * size_t(M * N) * sizeof(float) : 0;
}

// Runs C (=|+=) A·B (+ bias) for one view: plans tiles and splits, launches, sums split partials.
// bias is indexed by GEMM column in C; bias_div/bias_mod give that column from a flat C index.
// workspace: device memory of workspace_bytes >= igemm_workspace_bytes<View>(s, tf32) (may be null when
// that is 0), in use until the launches below have run (stream order).
template <class View, class TA, class TB>
void run_igemm(const ConvIdx& s, const TA* a, float a_scale, const TB* b, float b_scale, float* c, const float* bias,
               int64_t bias_div, bool accumulate, bool tf32, void* workspace, size_t workspace_bytes, const char* op) {
  const int64_t M = View::gemm_m(s), N = View::gemm_n(s), K = View::gemm_k(s);
  if (M == 0 || N == 0) return;
  GemmArgs<TA, TB> args{};
  args.s = s;
  args.M = int(M), args.N = int(N), args.K = int(K);
  args.plan = plan_igemm(M, N, K, tf32, igemm_sm_count());
  args.a = a, args.b = b, args.a_scale = a_scale, args.b_scale = b_scale;
  const bool split = args.plan.splits > 1;
  if (split) {
    const size_t need = size_t(args.plan.splits) * size_t(M * N) * sizeof(float);
    SG_CHECK(workspace != nullptr && workspace_bytes >= need,
             op << ": the split-K workspace has " << workspace_bytes << " bytes, needs " << need
                << " (size it with the pass's *_workspace_bytes query for the same shape and math)");
  }
  args.c = split ? static_cast<float*>(workspace) : c;
  args.bias = split ? nullptr : bias;
  args.split_stride = split ? M * N : 0;
  args.accumulate = split ? false : accumulate;
  args.vec4 = View::c_run(s) % 4 == 0 && is_aligned16(args.c);
  const dim3 grid(unsigned(args.plan.tiles_m * args.plan.tiles_n), unsigned(args.plan.splits));
  switch (args.plan.shape) {
    case 0:
      launch_tile<View, kTileShapes[0].bm, kTileShapes[0].bn>(tf32, grid, args);
      break;
    case 1:
      launch_tile<View, kTileShapes[1].bm, kTileShapes[1].bn>(tf32, grid, args);
      break;
    default:
      launch_tile<View, kTileShapes[2].bm, kTileShapes[2].bn>(tf32, grid, args);
      break;
  }
  if (split) {
    igemm_sum_splits<<<grid_for(M * N), kBlock>>>(args.c, args.plan.splits, M * N, c, bias, bias_div, N, accumulate);
    SG_LAUNCH_CHECK();
  }
}

}  // namespace spikegrad::igemm
