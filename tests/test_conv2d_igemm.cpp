// Implicit-GEMM convolution, CPU half: the index math of kernels/conv2d_igemm.h run through the exact
// tile decomposition of kernels/conv2d_igemm.cuh (plan, blocks, split-K ranges, per-thread load slots
// with their radix counters and predicates, shared-tile layout, fp32 micro-tile / TF32 fragment
// ownership, vectorised epilogue, fixed-order split sum), in float64, against the plain-loop reference.
// The kernels themselves are checked on a GPU by tests/test_conv2d_igemm.cu.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv2d_igemm.h"
#include "support/conv_shapes.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

using namespace igemm;

std::vector<double> random_vector(int64_t n, uint64_t seed) {
  Tensor t = randn({n}, DType::F64, seed);
  return std::vector<double>(t.data<double>(), t.data<double>() + n);
}

// A plan with a given tile shape and chunks per split (what plan_igemm could return).
IgemmPlan forced_plan(int64_t M, int64_t N, int64_t K, int shape, int64_t chunks_per_split) {
  IgemmPlan p;
  p.shape = shape;
  p.bm = kTileShapes[shape].bm;
  p.bn = kTileShapes[shape].bn;
  p.bk = chunk_depth(false);
  p.tiles_m = ceil_div(M, p.bm);
  p.tiles_n = ceil_div(N, p.bn);
  const int64_t chunks = std::max<int64_t>(1, ceil_div(K, p.bk));
  p.chunks_per_split = std::min(chunks, chunks_per_split);
  p.splits = int(ceil_div(chunks, p.chunks_per_split));
  return p;
}

// Per-thread loader state, as TileLoader keeps it.
template <class View>
struct ThreadLoader {
  std::vector<typename View::ASlot> aslot;
  std::vector<typename View::BSlot> bslot;
  std::vector<Radix3> ared, bred;
  std::vector<int> a_k, b_k;
};

// C (=|+=) A·B (+ bias) for one view, run the way igemm_kernel + igemm_sum_splits run it. `tf32` selects
// which owner computes each tile element (warp fragments instead of fp32 micro-tiles) and the epilogue
// that goes with it; the arithmetic is float64 either way.
template <class View>
void emulate(const ConvIdx& s, const IgemmPlan& plan, bool tf32, const double* a, const double* b, double* c,
             const double* bias, int64_t bias_div, bool accumulate) {
  const int M = int(View::gemm_m(s)), N = int(View::gemm_n(s)), K = int(View::gemm_k(s));
  const int BM = plan.bm, BN = plan.bn, BK = plan.bk, KI = BK / 8, AI = BM / 32, BI = BN / 32;
  const bool split = plan.splits > 1, vec4 = View::c_run(s) % 4 == 0;
  std::vector<double> ws(split ? size_t(plan.splits) * M * N : 0);
  const int mid_n = View::red_mid(s), lo_n = View::red_lo(s);
  const Radix3 step = radix3_split(BK, mid_n, lo_n);

  for (int64_t block = 0; block < plan.tiles_m * plan.tiles_n; ++block)
    for (int sp = 0; sp < plan.splits; ++sp) {
      int64_t tile_m, tile_n;
      tile_coords(block, plan.tiles_n, tile_m, tile_n);
      const int m0 = int(tile_m) * BM, n0 = int(tile_n) * BN;
      const int kbeg = int(split_k_begin(plan, sp)), kend = int(split_k_end(plan, sp, K));
      const int nchunks = kend > kbeg ? int(ceil_div(kend - kbeg, BK)) : 0;
      double* dst = split ? ws.data() + int64_t(sp) * M * N : c;
      std::vector<ThreadLoader<View>> th(kThreads);
      for (int tid = 0; tid < kThreads; ++tid) {
        ThreadLoader<View>& t = th[size_t(tid)];
        for (int i = 0; i < AI; ++i) t.aslot.push_back(View::a_slot(s, m0 + load_ol(View::kAKFast, tid, i), M));
        for (int i = 0; i < BI; ++i) t.bslot.push_back(View::b_slot(s, n0 + load_ol(View::kBKFast, tid, i), N));
        for (int ki = 0; ki < KI; ++ki) {
          t.a_k.push_back(kbeg + load_kl(View::kAKFast, tid, ki));
          t.b_k.push_back(kbeg + load_kl(View::kBKFast, tid, ki));
          t.ared.push_back(radix3_split(t.a_k.back(), mid_n, lo_n));
          t.bred.push_back(radix3_split(t.b_k.back(), mid_n, lo_n));
        }
      }
      std::vector<double> acc(size_t(BM) * BN, 0.0);
      for (int chunk = 0; chunk < nchunks; ++chunk) {
        // Shared tiles [BK][BM] and [BK][BN]; NaN marks an element no thread wrote.
        std::vector<double> As(size_t(BK) * BM, NAN), Bs(size_t(BK) * BN, NAN);
        for (int tid = 0; tid < kThreads; ++tid) {
          ThreadLoader<View>& t = th[size_t(tid)];
          for (int ki = 0; ki < KI; ++ki) {
            const bool a_in = t.a_k[size_t(ki)] < kend, b_in = t.b_k[size_t(ki)] < kend;
            for (int i = 0; i < AI; ++i) {
              const int64_t off = a_in ? View::a_offset(s, t.aslot[size_t(i)], t.ared[size_t(ki)]) : -1;
              double& slot = As[size_t(load_kl(View::kAKFast, tid, ki) * BM + load_ol(View::kAKFast, tid, i))];
              ASSERT_TRUE(std::isnan(slot)) << "two threads store one A element";
              slot = off >= 0 ? a[off] : 0.0;
            }
            for (int i = 0; i < BI; ++i) {
              const int64_t off = b_in ? View::b_offset(s, t.bslot[size_t(i)], t.bred[size_t(ki)]) : -1;
              double& slot = Bs[size_t(load_kl(View::kBKFast, tid, ki) * BN + load_ol(View::kBKFast, tid, i))];
              ASSERT_TRUE(std::isnan(slot)) << "two threads store one B element";
              slot = off >= 0 ? b[off] : 0.0;
            }
            radix3_advance(t.ared[size_t(ki)], step, mid_n, lo_n);
            radix3_advance(t.bred[size_t(ki)], step, mid_n, lo_n);
            t.a_k[size_t(ki)] += BK;
            t.b_k[size_t(ki)] += BK;
          }
        }
        for (double v : As) ASSERT_FALSE(std::isnan(v)) << "an A tile element was never loaded";
        for (double v : Bs) ASSERT_FALSE(std::isnan(v)) << "a B tile element was never loaded";
        auto mac = [&](int ml, int nl) {
          for (int kl = 0; kl < BK; ++kl)
            acc[size_t(ml * BN + nl)] += As[size_t(kl * BM + ml)] * Bs[size_t(kl * BN + nl)];
        };
        if (!tf32) {
          for (int tid = 0; tid < kThreads; ++tid)
            for (int h = 0; h < BM / 64; ++h)
              for (int i = 0; i < 4; ++i)
                for (int g = 0; g < BN / 64; ++g)
                  for (int j = 0; j < 4; ++j)
                    mac(simt_index(simt_tm(View::kCRowsContiguous, tid), h, i),
                        simt_index(simt_tn(View::kCRowsContiguous, tid), g, j));
        } else {
          for (int warp = 0; warp < kThreads / 32; ++warp)
            for (int fm = 0; fm < 2; ++fm)
              for (int fn = 0; fn < tf32_warp_cols(BM, BN) / 16; ++fn)
                for (int i = 0; i < 16; ++i)
                  for (int j = 0; j < 16; ++j) mac(tf32_row0(BM, warp, fm) + i, tf32_col0(BM, BN, warp, fn) + j);
        }
      }

      auto emit = [&](int64_t off, int n, double v) {
        if (!split && bias) v += bias[n];
        const bool add = split ? false : accumulate;
        dst[off] = add ? dst[off] + v : v;
      };
      if (!tf32) {  // the fp32 epilogue, with its float4 groups of 4 along C's contiguous dimension
        for (int tid = 0; tid < kThreads; ++tid)
          for (int h = 0; h < BM / 64; ++h)
            for (int g = 0; g < BN / 64; ++g) {
              const int tm = simt_tm(View::kCRowsContiguous, tid), tn = simt_tn(View::kCRowsContiguous, tid);
              const int ml = simt_index(tm, h, 0), nl = simt_index(tn, g, 0), m = m0 + ml, n = n0 + nl;
              for (int u = 0; u < 4; ++u)
                for (int e = 0; e < 4; ++e) {  // e runs along the contiguous dimension
                  const int i = View::kCRowsContiguous ? e : u, j = View::kCRowsContiguous ? u : e;
                  if (m + i >= M || n + j >= N) continue;
                  const bool vec = vec4 && (View::kCRowsContiguous ? m + 3 < M : n + 3 < N);
                  // Vector path: the float4 at the group's first offset covers element e at +e.
                  const int64_t off = vec ? (View::kCRowsContiguous ? View::c_row(s, m) + View::c_col(s, n + j) + i
                                                                    : View::c_row(s, m + i) + View::c_col(s, n) + j)
                                          : View::c_row(s, m + i) + View::c_col(s, n + j);
                  if (vec) ASSERT_EQ(off % 4, e) << "float4 group not 16-byte aligned";
                  emit(off, n + j, acc[size_t((ml + i) * BN + nl + j)]);
                }
            }
      } else {
        for (int ml = 0; ml < BM; ++ml)
          for (int nl = 0; nl < BN; ++nl)
            if (m0 + ml < M && n0 + nl < N)
              emit(View::c_row(s, m0 + ml) + View::c_col(s, n0 + nl), n0 + nl, acc[size_t(ml * BN + nl)]);
      }
    }

  if (split) {  // igemm_sum_splits
    const int64_t numel = int64_t(M) * N;
    for (int64_t i = 0; i < numel; ++i) {
      double sum = 0;
      for (int sp = 0; sp < plan.splits; ++sp) sum += ws[size_t(sp * numel + i)];
      if (bias) sum += bias[(i / bias_div) % N];
      c[i] = accumulate ? c[i] + sum : sum;
    }
  }
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= 1e-12 * (1 + std::abs(want[i])))) {
      if (bad++ < 3) ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << want[i];
    }
  EXPECT_EQ(bad, 0) << what;
}


// Runs the three views of `s` through `plan_for(M, N, K)` and compares with the naive reference.
template <class PlanFor>
void check_all_views(const ConvCase& cs, bool tf32, PlanFor plan_for) {
  const Conv2dShape& s = cs.shape;
  const ConvIdx idx = to_conv_idx(s, "test");
  const std::vector<double> x = random_vector(s.N * s.C * s.H * s.W, 1), w = random_vector(s.K * s.C * s.R * s.S, 2),
                            b = random_vector(s.K, 3), gy = random_vector(s.N * s.K * s.P * s.Q, 4),
                            gx0 = random_vector(s.N * s.C * s.H * s.W, 5),
                            gw0 = random_vector(s.K * s.C * s.R * s.S, 6);
  const std::string what = std::string(cs.name) + (tf32 ? " tf32" : " fp32");
  {
    std::vector<double> y(size_t(s.N * s.K * s.P * s.Q), 7.0), ref(y.size());
    conv2d_forward_naive_cpu<double>(x.data(), w.data(), b.data(), ref.data(), s);
    const IgemmPlan p = plan_for(FwdView::gemm_m(idx), FwdView::gemm_n(idx), FwdView::gemm_k(idx));
    emulate<FwdView>(idx, p, tf32, x.data(), w.data(), y.data(), b.data(), s.P * s.Q, false);
    expect_near_all(y, ref, what + " forward");
  }
  {
    std::vector<double> gx = gx0, ref = gx0;
    conv2d_backward_naive_cpu<double>(x.data(), w.data(), gy.data(), ref.data(), nullptr, nullptr, s);
    const IgemmPlan p = plan_for(DgradView::gemm_m(idx), DgradView::gemm_n(idx), DgradView::gemm_k(idx));
    emulate<DgradView>(idx, p, tf32, gy.data(), w.data(), gx.data(), nullptr, 1, true);
    expect_near_all(gx, ref, what + " backward data");
  }
  {
    std::vector<double> gw = gw0, ref = gw0;
    conv2d_backward_naive_cpu<double>(x.data(), w.data(), gy.data(), nullptr, ref.data(), nullptr, s);
    const IgemmPlan p = plan_for(WgradView::gemm_m(idx), WgradView::gemm_n(idx), WgradView::gemm_k(idx));
    emulate<WgradView>(idx, p, tf32, gy.data(), x.data(), gw.data(), nullptr, 1, true);
    expect_near_all(gw, ref, what + " backward weight");
  }
}

TEST(ConvIgemmIndexMath, PlannedDecompositionMatchesReference) {
  for (const ConvCase& cs : odd_conv_cases())
    for (bool tf32 : {false, true})
      for (int sms : {1, 132})
        check_all_views(cs, tf32, [&](int64_t M, int64_t N, int64_t K) { return plan_igemm(M, N, K, tf32, sms); });
}

// Every tile shape, with no split, one chunk per split and an uneven split (3 chunks, last one short).
TEST(ConvIgemmIndexMath, EveryTileShapeAndSplitMatchesReference) {
  for (const ConvCase& cs : odd_conv_cases())
    for (int shape = 0; shape < kNumTileShapes; ++shape)
      for (int64_t cps : {int64_t(1) << 40, int64_t(1), int64_t(3)})
        for (bool tf32 : {false, true})
          check_all_views(cs, tf32, [&](int64_t M, int64_t N, int64_t K) { return forced_plan(M, N, K, shape, cps); });
}

TEST(ConvIgemmIndexMath, RadixCounterMatchesDivision) {
  for (int mid : {1, 2, 3, 5, 9})
    for (int lo : {1, 2, 3, 4, 7})
      for (int start = 0; start < 8; ++start) {
        const Radix3 step = radix3_split(8, mid, lo);
        Radix3 d = radix3_split(start, mid, lo);
        for (int v = start; v < 600; v += 8) {
          const Radix3 want = radix3_split(v, mid, lo);
          ASSERT_TRUE(d.hi == want.hi && d.mid == want.mid && d.lo == want.lo)
              << "mid " << mid << " lo " << lo << " v " << v << ": (" << d.hi << "," << d.mid << "," << d.lo << ")";
          EXPECT_EQ((d.hi * mid + d.mid) * lo + d.lo, v);
          radix3_advance(d, step, mid, lo);
        }
      }
}

// The load pattern, the fp32 micro-tiles and the TF32 warp fragments each cover their tile once.
TEST(ConvIgemmIndexMath, ThreadMappingsCoverTilesOnce) {
  for (int shape = 0; shape < kNumTileShapes; ++shape) {
    const int BM = kTileShapes[shape].bm, BN = kTileShapes[shape].bn, BK = chunk_depth(false);
    for (bool k_fast : {false, true}) {
      std::vector<int> hits(size_t(BK) * BM, 0);
      for (int tid = 0; tid < kThreads; ++tid)
        for (int ki = 0; ki < BK / 8; ++ki)
          for (int i = 0; i < BM / 32; ++i) ++hits[size_t(load_kl(k_fast, tid, ki) * BM + load_ol(k_fast, tid, i))];
      for (int h : hits) ASSERT_EQ(h, 1) << "load pattern, BM " << BM << " k_fast " << k_fast;
    }
    for (bool rows : {false, true}) {
      std::vector<int> hits(size_t(BM) * BN, 0);
      for (int tid = 0; tid < kThreads; ++tid)
        for (int h = 0; h < BM / 64; ++h)
          for (int i = 0; i < 4; ++i)
            for (int g = 0; g < BN / 64; ++g)
              for (int j = 0; j < 4; ++j)
                ++hits[size_t(simt_index(simt_tm(rows, tid), h, i) * BN + simt_index(simt_tn(rows, tid), g, j))];
      for (int h : hits) ASSERT_EQ(h, 1) << "fp32 micro-tiles, " << BM << "x" << BN;
    }
    std::vector<int> hits(size_t(BM) * BN, 0);
    for (int warp = 0; warp < 8; ++warp)
      for (int fm = 0; fm < 2; ++fm)
        for (int fn = 0; fn < tf32_warp_cols(BM, BN) / 16; ++fn)
          for (int i = 0; i < 16; ++i)
            for (int j = 0; j < 16; ++j)
              ++hits[size_t((tf32_row0(BM, warp, fm) + i) * BN + tf32_col0(BM, BN, warp, fn) + j)];
    for (int h : hits) ASSERT_EQ(h, 1) << "TF32 fragments, " << BM << "x" << BN;
  }
}

// The host's choice covers every output tile and every reduction index exactly once, with no empty
// split, within the split and workspace caps, for the target shapes at several SM counts.
TEST(ConvIgemmIndexMath, PlanCoversEveryIndexOnce) {
  std::vector<Conv2dShape> shapes;
  for (auto l : {std::array<int64_t, 3>{3, 64, 32},
                 {64, 128, 32},
                 {128, 256, 16},
                 {256, 256, 16},
                 {256, 512, 8},
                 {512, 512, 8},
                 {512, 512, 4}}) {
    shapes.push_back(make_conv2d_shape(256, l[0], l[2], l[2], l[1], 3, 3, 1, 1));
    shapes.push_back(make_conv2d_shape(256, l[0], l[2], l[2], l[1], 1, 1, 1, 0));
    shapes.push_back(make_conv2d_shape(256, l[0], l[2], l[2], l[1], 3, 3, 2, 1));
  }
  for (const ConvCase& cs : odd_conv_cases()) shapes.push_back(cs.shape);
  for (const Conv2dShape& s : shapes) {
    const ConvIdx idx = to_conv_idx(s, "test");
    const std::array<std::array<int64_t, 3>, 3> views{
        {{FwdView::gemm_m(idx), FwdView::gemm_n(idx), FwdView::gemm_k(idx)},
         {DgradView::gemm_m(idx), DgradView::gemm_n(idx), DgradView::gemm_k(idx)},
         {WgradView::gemm_m(idx), WgradView::gemm_n(idx), WgradView::gemm_k(idx)}}};
    for (const auto& v : views)
      for (bool tf32 : {false, true})
        for (int sms : {1, 7, 132}) {
          const int64_t M = v[0], N = v[1], K = v[2];
          const IgemmPlan p = plan_igemm(M, N, K, tf32, sms);
          SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " sms " +
                       std::to_string(sms));
          ASSERT_EQ(p.bm, kTileShapes[p.shape].bm);
          ASSERT_EQ(p.bn, kTileShapes[p.shape].bn);
          EXPECT_TRUE(p.tiles_m * p.bm >= M && (p.tiles_m - 1) * p.bm < M);
          EXPECT_TRUE(p.tiles_n * p.bn >= N && (p.tiles_n - 1) * p.bn < N);
          EXPECT_TRUE(p.splits >= 1 && p.splits <= kMaxSplits);
          if (p.splits > 1) EXPECT_LE(p.splits * M * N, kMaxWorkspaceFloats);
          int64_t next = 0;  // the splits tile [0, K) in order, chunk-aligned, none empty
          for (int sp = 0; sp < p.splits; ++sp) {
            EXPECT_EQ(split_k_begin(p, sp), next);
            EXPECT_EQ(split_k_begin(p, sp) % p.bk, 0);
            next = split_k_end(p, sp, K);
            EXPECT_TRUE(next > split_k_begin(p, sp) || K == 0);
          }
          EXPECT_EQ(next, K);
          std::vector<char> seen(size_t(p.tiles_m * p.tiles_n), 0);
          for (int64_t block = 0; block < p.tiles_m * p.tiles_n; ++block) {
            int64_t tm, tn;
            tile_coords(block, p.tiles_n, tm, tn);
            ASSERT_TRUE(tm >= 0 && tm < p.tiles_m && tn >= 0 && tn < p.tiles_n);
            ++seen[size_t(tm * p.tiles_n + tn)];
          }
          for (char c : seen) ASSERT_EQ(c, 1);
        }
  }
}

TEST(ConvIgemmIndexMath, RejectsShapesBeyondThe32BitIndexRange) {
  expect_error([] { to_conv_idx(make_conv2d_shape(1, 70000, 200, 200, 4, 3, 3, 1, 1), "conv2d_igemm_forward"); },
               "conv2d_igemm_forward: extent");
  EXPECT_NO_THROW(to_conv_idx(make_conv2d_shape(256, 512, 4, 4, 512, 3, 3, 1, 1), "x"));
}

}  // namespace
}  // namespace spikegrad::testing
