// conv2d on oneDNN (kernels/conv2d_onednn.h) against the im2col + Eigen path, both layouts, every pass;
// run-to-run determinism; the packed-input backward equal to the float one; per-call scratch from the CPU
// caching allocator (bits independent of what the reused blocks held, no system allocation once warm). Only in
// builds with oneDNN.
#ifdef SPIKEGRAD_ONEDNN
#include <gtest/gtest.h>
#include <omp.h>

#include <limits>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_onednn.h"
#include "kernels/spike_pack.h"
#include "support/conv_shapes.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// Stride 2, padding, 1x1, odd and non-square sizes, a stride that does not divide the padded extent (C1_s2_p2:
// (4 + 4 − 3) / 2 floors), padding wider than half the kernel, and channel counts at and off oneDNN's
// 16-channel blocks.
std::vector<ConvCase> onednn_cases() {
  return {
      {"3x3_s1_p1", make_conv2d_shape(2, 3, 8, 8, 4, 3, 3, 1, 1)},
      {"3x3_s2_p1", make_conv2d_shape(2, 3, 9, 9, 5, 3, 3, 2, 1)},
      {"1x1_s1_p0", make_conv2d_shape(3, 4, 5, 5, 6, 1, 1, 1, 0)},
      {"1x1_s2_p0", make_conv2d_shape(2, 4, 7, 7, 3, 1, 1, 2, 0)},
      {"odd_hw", make_conv2d_shape(2, 3, 7, 5, 4, 3, 3, 1, 1)},
      {"C1_s2_p2", make_conv2d_shape(3, 1, 4, 5, 2, 3, 3, 2, 2)},
      {"non_square_kernel", make_conv2d_shape(2, 2, 6, 9, 3, 3, 2, 2, 1)},
      {"pad_exceeds_half_kernel", make_conv2d_shape(1, 2, 4, 4, 2, 3, 3, 1, 2)},
      {"blocked_16_32_s1", make_conv2d_shape(4, 16, 8, 8, 32, 3, 3, 1, 1)},
      {"blocked_32_16_s2", make_conv2d_shape(3, 32, 9, 9, 16, 3, 3, 2, 1)},
      {"off_block_20_24", make_conv2d_shape(2, 20, 6, 7, 24, 3, 3, 1, 1)},
  };
}

// Both paths sum the same n products in different orders (oneDNN blocks the reduction its own way), each adding
// rounding errors of about one float ulp of the running sum per term. With unit-variance terms the running sum
// is ~√n, so the two results differ by ~ε·√n·√n = ε·n (ε = 2⁻²⁴) however small the final value is (an output
// near 0 after cancellation shows the full absolute error: 2.2e-5 measured at n = 288). The bound below is 8·ε·n
// absolute, with n the pass's reduction length; a wrong index, a missing padding row or an overwrite instead
// of += is off by O(1).
constexpr double kRtol = 1e-5;
double atol_for(int64_t reduction_length) { return 8.0 * 0x1p-24 * double(reduction_length); }

void expect_onednn_matches_im2col(const ConvCase& cs, OnednnLayout layout) {
  const Conv2dShape& s = cs.shape;
  const std::string name = std::string(cs.name) + (layout == OnednnLayout::plain ? " plain" : " blocked");
  const DType f = DType::F32;
  Tensor x = randn({s.N, s.C, s.H, s.W}, f, 1), w = randn({s.K, s.C, s.R, s.S}, f, 2), b = randn({s.K}, f, 3);
  Tensor gy = randn({s.N, s.K, s.P, s.Q}, f, 4);

  for (const bool bias : {true, false}) {
    Tensor y_dnnl = Tensor::empty({s.N, s.K, s.P, s.Q}, f), y_eigen = Tensor::empty({s.N, s.K, s.P, s.Q}, f);
    const float* bp = bias ? b.data<float>() : nullptr;
    conv2d_forward_onednn(x.data<float>(), w.data<float>(), bp, y_dnnl.data<float>(), s, layout);
    conv2d_forward_im2col_cpu<float>(x.data<float>(), w.data<float>(), bp, y_eigen.data<float>(), s);
    expect_close(y_dnnl, y_eigen, kRtol, atol_for(s.C * s.R * s.S), name + (bias ? " forward" : " forward without bias"));
  }

  // Gradient buffers start non-zero: the contract is +=, and oneDNN writes, so this checks the sum reorder.
  Tensor gx_start = randn(x.shape(), f, 5), gw_start = randn(w.shape(), f, 6), gb_start = randn(b.shape(), f, 7);
  Tensor gx_dnnl = gx_start.clone(), gx_eigen = gx_start.clone();
  conv2d_backward_data_onednn(w.data<float>(), gy.data<float>(), gx_dnnl.data<float>(), s, layout);
  conv2d_backward_im2col_cpu<float>(x.data<float>(), w.data<float>(), gy.data<float>(), gx_eigen.data<float>(),
                                    nullptr, nullptr, s);
  expect_close(gx_dnnl, gx_eigen, kRtol, atol_for(s.K * s.R * s.S), name + " backward data");

  Tensor gw_dnnl = gw_start.clone(), gb_dnnl = gb_start.clone(), gw_eigen = gw_start.clone(), gb_eigen = gb_start.clone();
  conv2d_backward_weight_onednn(x.data<float>(), gy.data<float>(), gw_dnnl.data<float>(), gb_dnnl.data<float>(), s,
                                layout);
  conv2d_backward_im2col_cpu<float>(x.data<float>(), w.data<float>(), gy.data<float>(), nullptr,
                                    gw_eigen.data<float>(), gb_eigen.data<float>(), s);
  const double dw_atol = atol_for(s.N * s.P * s.Q);
  expect_close(gw_dnnl, gw_eigen, kRtol, dw_atol, name + " backward weight");
  expect_close(gb_dnnl, gb_eigen, kRtol, dw_atol, name + " backward bias");

  Tensor gw_alone = gw_start.clone();
  conv2d_backward_weight_onednn(x.data<float>(), gy.data<float>(), gw_alone.data<float>(), nullptr, s, layout);
  expect_close(gw_alone, gw_eigen, kRtol, dw_atol, name + " backward weight without bias");
}

TEST(Conv2dOnednn, PlainLayoutMatchesIm2col) {
  for (const ConvCase& cs : onednn_cases()) expect_onednn_matches_im2col(cs, OnednnLayout::plain);
}
TEST(Conv2dOnednn, BlockedLayoutMatchesIm2col) {
  for (const ConvCase& cs : onednn_cases()) expect_onednn_matches_im2col(cs, OnednnLayout::blocked);
}

// The op's float path (conv2d_forward_cpu / conv2d_backward_cpu: oneDNN where conv2d_cpu.cpp chose it — every
// pass, except the input gradient below C = 16) against the plain loops in double on the same inputs.
TEST(Conv2dOnednn, OpPathMatchesReferenceWhereOnednnRuns) {
  for (const ConvCase& g : {ConvCase{"C128_s1_p1", make_conv2d_shape(2, 128, 5, 5, 8, 3, 3, 1, 1)},
                            ConvCase{"C130_s2_p1_odd", make_conv2d_shape(3, 130, 7, 6, 5, 3, 3, 2, 1)},
                            ConvCase{"C3_dx_on_eigen", make_conv2d_shape(2, 3, 9, 8, 16, 3, 3, 1, 1)}}) {
    const Conv2dShape& s = g.shape;
    Tensor x = randn({s.N, s.C, s.H, s.W}, DType::F32, 31), w = randn({s.K, s.C, s.R, s.S}, DType::F32, 32);
    Tensor b = randn({s.K}, DType::F32, 33), gy = randn({s.N, s.K, s.P, s.Q}, DType::F32, 34);
    Tensor y = Tensor::empty({s.N, s.K, s.P, s.Q}, DType::F32), y_ref = Tensor::empty(y.shape(), DType::F64);
    conv2d_forward_cpu<float>(x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>(), s);
    const Tensor xd = x.to(DType::F64), wd = w.to(DType::F64), bd = b.to(DType::F64), gyd = gy.to(DType::F64);
    conv2d_forward_naive_cpu<double>(xd.data<double>(), wd.data<double>(), bd.data<double>(), y_ref.data<double>(), s);
    expect_close(y.to(DType::F64), y_ref, kRtol, atol_for(s.C * s.R * s.S), std::string(g.name) + " forward");

    Tensor gx = randn(x.shape(), DType::F32, 35), gw = randn(w.shape(), DType::F32, 36), gb = randn(b.shape(), DType::F32, 37);
    Tensor gx_ref = gx.to(DType::F64), gw_ref = gw.to(DType::F64), gb_ref = gb.to(DType::F64);
    conv2d_backward_cpu<float>(x.data<float>(), w.data<float>(), gy.data<float>(), gx.data<float>(), gw.data<float>(),
                               gb.data<float>(), s);
    conv2d_backward_naive_cpu<double>(xd.data<double>(), wd.data<double>(), gyd.data<double>(), gx_ref.data<double>(),
                                      gw_ref.data<double>(), gb_ref.data<double>(), s);
    expect_close(gx.to(DType::F64), gx_ref, kRtol, atol_for(s.K * s.R * s.S), std::string(g.name) + " dx");
    expect_close(gw.to(DType::F64), gw_ref, kRtol, atol_for(s.N * s.P * s.Q), std::string(g.name) + " dw");
    expect_close(gb.to(DType::F64), gb_ref, kRtol, atol_for(s.N * s.P * s.Q), std::string(g.name) + " db");
  }
}

// Sets the OpenMP thread count for a scope (ctest runs with OMP_NUM_THREADS=1; determinism needs several).
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedThreads() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// Every pass gives the same bits on every call with the same thread count: the weight gradient's reduction
// over N·P·Q is split over threads statically and its partials summed in a fixed order, not as threads finish.
TEST(Conv2dOnednn, RunToRunDeterministicWithSeveralThreads) {
  const ScopedThreads threads(4);  // more threads than this machine's cores: any timing dependence would show
  const Conv2dShape s = make_conv2d_shape(16, 32, 12, 12, 32, 3, 3, 1, 1);
  const DType f = DType::F32;
  Tensor x = randn({s.N, s.C, s.H, s.W}, f, 11), w = randn({s.K, s.C, s.R, s.S}, f, 12), b = randn({s.K}, f, 13);
  Tensor gy = randn({s.N, s.K, s.P, s.Q}, f, 14);
  for (const OnednnLayout layout : {OnednnLayout::plain, OnednnLayout::blocked}) {
    Tensor y0, gx0, gw0, gb0;
    for (int run = 0; run < 6; ++run) {
      Tensor y = Tensor::empty({s.N, s.K, s.P, s.Q}, f), gx = Tensor::zeros(x.shape(), f);
      Tensor gw = Tensor::zeros(w.shape(), f), gb = Tensor::zeros(b.shape(), f);
      conv2d_forward_onednn(x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>(), s, layout);
      conv2d_backward_data_onednn(w.data<float>(), gy.data<float>(), gx.data<float>(), s, layout);
      conv2d_backward_weight_onednn(x.data<float>(), gy.data<float>(), gw.data<float>(), gb.data<float>(), s, layout);
      if (run == 0) {
        y0 = y, gx0 = gx, gw0 = gw, gb0 = gb;
        continue;
      }
      EXPECT_EQ(y.to_vector<float>(), y0.to_vector<float>()) << "forward, run " << run;
      EXPECT_EQ(gx.to_vector<float>(), gx0.to_vector<float>()) << "backward data, run " << run;
      EXPECT_EQ(gw.to_vector<float>(), gw0.to_vector<float>()) << "backward weight, run " << run;
      EXPECT_EQ(gb.to_vector<float>(), gb0.to_vector<float>()) << "backward bias, run " << run;
    }
  }
}

// kernels/conv2d.h promises the packed-input backward equals the float backward on the unpacked x exactly,
// whichever path each pass takes (here all on oneDNN, see conv2d_cpu.cpp).
TEST(Conv2dOnednn, PackedBackwardEqualsFloatBackward) {
  const Conv2dShape s = make_conv2d_shape(3, 128, 6, 6, 16, 3, 3, 2, 1);
  const DType f = DType::F32;
  Tensor levels = Tensor::empty({s.N, s.C, s.H, s.W}, DType::U8), x = Tensor::empty(levels.shape(), f);
  Tensor noise = randn(levels.shape(), f, 21);
  for (int64_t i = 0; i < levels.numel(); ++i) levels.data<uint8_t>()[i] = noise.data<float>()[i] > 0.5f ? 1 : 0;
  unpack_levels_cpu<float>(levels.data<uint8_t>(), x.data<float>(), x.numel(), 1);
  Tensor w = randn({s.K, s.C, s.R, s.S}, f, 22), gy = randn({s.N, s.K, s.P, s.Q}, f, 23);
  Tensor gx_packed = Tensor::zeros(x.shape(), f), gw_packed = Tensor::zeros(w.shape(), f), gb_packed = Tensor::zeros({s.K}, f);
  Tensor gx_float = Tensor::zeros(x.shape(), f), gw_float = Tensor::zeros(w.shape(), f), gb_float = Tensor::zeros({s.K}, f);
  conv2d_backward_packed_cpu<float>(levels.data<uint8_t>(), 1, w.data<float>(), gy.data<float>(),
                                    gx_packed.data<float>(), gw_packed.data<float>(), gb_packed.data<float>(), s);
  conv2d_backward_cpu<float>(x.data<float>(), w.data<float>(), gy.data<float>(), gx_float.data<float>(),
                             gw_float.data<float>(), gb_float.data<float>(), s);
  EXPECT_EQ(gx_packed.to_vector<float>(), gx_float.to_vector<float>());
  EXPECT_EQ(gw_packed.to_vector<float>(), gw_float.to_vector<float>());
  EXPECT_EQ(gb_packed.to_vector<float>(), gb_float.to_vector<float>());
}


// The three passes of one shape (bias on), each into fresh outputs (gradients start at zero).
struct PassResults {
  std::vector<float> y, gx, gw, gb;
};
PassResults run_all_passes(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy, const Conv2dShape& s,
                           OnednnLayout layout) {
  const DType f = DType::F32;
  Tensor y = Tensor::empty({s.N, s.K, s.P, s.Q}, f), gx = Tensor::zeros(x.shape(), f);
  Tensor gw = Tensor::zeros(w.shape(), f), gb = Tensor::zeros(b.shape(), f);
  conv2d_forward_onednn(x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>(), s, layout);
  conv2d_backward_data_onednn(w.data<float>(), gy.data<float>(), gx.data<float>(), s, layout);
  conv2d_backward_weight_onednn(x.data<float>(), gy.data<float>(), gw.data<float>(), gb.data<float>(), s, layout);
  return {y.to_vector<float>(), gx.to_vector<float>(), gw.to_vector<float>(), gb.to_vector<float>()};
}

// Fills the CPU allocator's cache with NaN-filled blocks: four each of 512 B · 2^k and 768 B · 2^k up to 1 MiB.
// The cache hands out a block of at most twice the request, so every request of this test's shapes (all under
// 1 MiB: the scratch, and the output tensors that take blocks first) finds a poisoned block.
void poison_cpu_cache() {
  std::vector<CachingAllocator::Block> blocks;
  for (size_t bytes = 512; bytes <= (size_t(1) << 20); bytes *= 2)
    for (const size_t size : {bytes, bytes / 2 * 3})
      for (int copy = 0; copy < 4; ++copy) {
        blocks.push_back(allocator(Device::CPU).allocate(size));
        float* p = static_cast<float*>(blocks.back().ptr);
        for (size_t i = 0; i < blocks.back().size / sizeof(float); ++i) p[i] = std::numeric_limits<float>::quiet_NaN();
      }
  for (const CachingAllocator::Block& block : blocks) allocator(Device::CPU).release(block);
}

// The staging memories and scratchpads are blocks of the CPU caching allocator (kernels/conv2d_onednn.cpp), which
// hands back blocks with whatever they held. Results must not depend on it: a call served from NaN-poisoned blocks
// gives the same bits as one on freshly allocated memory (a staged layout read before it is written, e.g. the
// padding channels of a 16-channel block, or a scratchpad assumed zero, would show as NaN or as changed bits).
// And once warm, a call takes its scratch from the cache: no system allocation (what keeps oneDNN's multi-MiB
// buffers from being mapped, faulted in and unmapped on every call of a training step), and a cold call's scratch
// shows in the allocator's stats.
TEST(Conv2dOnednn, ScratchFromTheCachingAllocatorIsReusedAndItsContentsDoNotMatter) {
  const ConvCase cases[] = {{"C3_padded_channel_block", make_conv2d_shape(2, 3, 9, 9, 20, 3, 3, 2, 1)},
                            {"off_block_20_24", make_conv2d_shape(2, 20, 6, 7, 24, 3, 3, 1, 1)},
                            {"blocked_16_32_s1", make_conv2d_shape(4, 16, 8, 8, 32, 3, 3, 1, 1)}};
  for (const ConvCase& g : cases) {
    for (const OnednnLayout layout : {OnednnLayout::plain, OnednnLayout::blocked}) {
      const std::string name = std::string(g.name) + (layout == OnednnLayout::plain ? " plain" : " blocked");
      const Conv2dShape& s = g.shape;
      const DType f = DType::F32;
      Tensor x = randn({s.N, s.C, s.H, s.W}, f, 41), w = randn({s.K, s.C, s.R, s.S}, f, 42), b = randn({s.K}, f, 43);
      Tensor gy = randn({s.N, s.K, s.P, s.Q}, f, 44);

      // Cold cache: the scratch comes from the system through the allocator, and its peak covers it (the input
      // gradient is always staged, so the scratch is at least gx's size).
      Tensor gx = Tensor::zeros(x.shape(), f);
      allocator(Device::CPU).empty_cache();
      allocator(Device::CPU).reset_peak();
      const AllocatorStats cold = allocator(Device::CPU).stats();
      conv2d_backward_data_onednn(w.data<float>(), gy.data<float>(), gx.data<float>(), s, layout);
      const AllocatorStats after_cold = allocator(Device::CPU).stats();
      EXPECT_GT(after_cold.system_allocs, cold.system_allocs) << name << ": the scratch should be the allocator's";
      EXPECT_GE(after_cold.peak_bytes - cold.current_bytes, size_t(x.numel()) * sizeof(float)) << name;

      allocator(Device::CPU).empty_cache();
      const PassResults fresh = run_all_passes(x, w, b, gy, s, layout);
      allocator(Device::CPU).empty_cache();
      poison_cpu_cache();
      const size_t system_allocs_before = allocator(Device::CPU).stats().system_allocs;
      const PassResults poisoned = run_all_passes(x, w, b, gy, s, layout);
      EXPECT_EQ(allocator(Device::CPU).stats().system_allocs, system_allocs_before)
          << name << ": the calls should have been served from the poisoned cache";
      EXPECT_EQ(poisoned.y, fresh.y) << name << " forward";
      EXPECT_EQ(poisoned.gx, fresh.gx) << name << " backward data";
      EXPECT_EQ(poisoned.gw, fresh.gw) << name << " backward weight";
      EXPECT_EQ(poisoned.gb, fresh.gb) << name << " backward bias";

      const size_t warm_allocs = allocator(Device::CPU).stats().system_allocs;
      run_all_passes(x, w, b, gy, s, layout);
      EXPECT_EQ(allocator(Device::CPU).stats().system_allocs, warm_allocs)
          << name << ": a repeated call must take its scratch from the cache";
    }
  }
}

}  // namespace
}  // namespace spikegrad::testing
#endif  // SPIKEGRAD_ONEDNN
