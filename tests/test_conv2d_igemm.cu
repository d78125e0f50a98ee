// Implicit-GEMM convolution, CUDA half: the kernels of kernels/conv2d_igemm.cu against the plain-loop
// reference (float64), for odd shapes and the VGGSNN layers at small N, float and uint8 inputs, fp32 and
// TF32 math, accumulation into preloaded buffers, and bitwise run-to-run determinism.
//
// Tolerances, per output element, with mag = Σ|a·b| and l2 = sqrt(Σ(a·b)²) over the products that
// make it (computed by the same reference loops on |a|, |b| and a², b²):
//   fp32: 1e-5·mag. Float32 rounding is 2^-24 per operation; a length-n sum in any order errs by
//         at most ~n·2^-24·mag in the worst case and ~sqrt(n)·2^-24·mag typically: for n = 4608 that
//         is 4e-6·mag typical, so 1e-5 holds with margin while one wrong tap (~mag/n) still fails.
//   TF32: 1e-5·mag + 8·2^-11·l2. TF32 keeps 10 mantissa bits: each operand is rounded with relative
//         error <= 2^-11, so each product errs by <= ~2^-10 relative, independently across products;
//         the sum of n such errors has standard deviation <= 2^-10/sqrt(3)·l2 (l2 ~ sqrt(n)·rms), and
//         8·2^-11·l2 = 4·2^-10·l2 is about a 7-sigma bound. uint8 levels (q·0.25, q <= 255) are exact in
//         TF32, so only the weights / gy round, which the bound covers.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/op_util.h"
#include "engine/rng.h"
#include "kernels/conv2d_igemm.h"
#include "support/conv_shapes.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

struct Variant {
  const char* name;
  bool u8;
  float scale;
};
constexpr Variant kFloat{"float", false, 1.f}, kSpikes{"u8x1", true, 1.f}, kLevels{"u8x0.25", true, 0.25f};

std::vector<double> abs_of(std::vector<double> v) {
  for (double& e : v) e = std::abs(e);
  return v;
}
std::vector<double> square_of(std::vector<double> v) {
  for (double& e : v) e = e * e;
  return v;
}
std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }
std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Reference value, Σ|·| and sqrt(Σ(·)²) of one result, plus the preload it accumulates onto.
struct Expected {
  std::vector<double> value, mag, l2;
};

void expect_matches(const std::vector<float>& got, const Expected& e, bool tf32, const std::string& what) {
  ASSERT_EQ(got.size(), e.value.size()) << what;
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = 1e-5 * e.mag[i] + (tf32 ? 8 * std::ldexp(1.0, -11) * e.l2[i] : 0.0) + 1e-30;
    const double err = std::abs(double(got[i]) - e.value[i]);
    if (!(err <= tol) && bad++ < 5)
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << e.value[i] << " (|diff| "
                    << err << ", tol " << tol << ")";
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements out of tolerance";
}

struct ConvData {
  Conv2dShape s;
  Variant v;
  std::vector<uint8_t> xq;  // levels (uint8 variants)
  std::vector<double> x, w, b, gy, gx0, gw0, gb0;
};

ConvData make_data(const Conv2dShape& s, Variant v, uint64_t seed) {
  ConvData d{s, v, {}, {}, {}, {}, {}, {}, {}, {}};
  const int64_t nx = s.N * s.C * s.H * s.W, nw = s.K * s.C * s.R * s.S, ny = s.N * s.K * s.P * s.Q;
  if (v.u8) {
    Generator gen(seed);
    d.xq.resize(size_t(nx));
    for (auto& q : d.xq) q = uint8_t(v.scale == 1.f ? gen.next_u32() % 2 : gen.next_u32() % 5);  // spikes / k/4
    for (uint8_t q : d.xq) d.x.push_back(double(v.scale) * q);
  } else {
    d.x = to_double(randn({nx}, DType::F32, seed).to_vector<float>());
  }
  auto f32 = [](int64_t n, uint64_t sd, double scale) {  // float-representable inputs
    return to_double(randn({n}, DType::F32, sd, scale).to_vector<float>());
  };
  d.w = f32(nw, seed + 1, 0.2);
  d.b = f32(s.K, seed + 2, 1.0);
  d.gy = f32(ny, seed + 3, 1.0);
  d.gx0 = f32(nx, seed + 4, 1.0);
  d.gw0 = f32(nw, seed + 5, 1.0);
  d.gb0 = f32(s.K, seed + 6, 1.0);
  return d;
}

Expected forward_expected(const ConvData& d) {
  const size_t ny = size_t(d.s.N * d.s.K * d.s.P * d.s.Q);
  Expected e{std::vector<double>(ny), std::vector<double>(ny), std::vector<double>(ny)};
  conv2d_forward_naive_cpu<double>(d.x.data(), d.w.data(), d.b.data(), e.value.data(), d.s);
  conv2d_forward_naive_cpu<double>(abs_of(d.x).data(), abs_of(d.w).data(), abs_of(d.b).data(), e.mag.data(), d.s);
  conv2d_forward_naive_cpu<double>(square_of(d.x).data(), square_of(d.w).data(), square_of(d.b).data(), e.l2.data(),
                                   d.s);
  for (double& v : e.l2) v = std::sqrt(v);
  return e;
}

// gx, gw, gb expected after accumulating onto the preloads (mag / l2 include the preload's magnitude).
std::array<Expected, 3> backward_expected(const ConvData& d) {
  std::array<Expected, 3> e{Expected{d.gx0, abs_of(d.gx0), square_of(d.gx0)},
                            Expected{d.gw0, abs_of(d.gw0), square_of(d.gw0)},
                            Expected{d.gb0, abs_of(d.gb0), square_of(d.gb0)}};
  conv2d_backward_naive_cpu<double>(d.x.data(), d.w.data(), d.gy.data(), e[0].value.data(), e[1].value.data(),
                                    e[2].value.data(), d.s);
  conv2d_backward_naive_cpu<double>(abs_of(d.x).data(), abs_of(d.w).data(), abs_of(d.gy).data(), e[0].mag.data(),
                                    e[1].mag.data(), e[2].mag.data(), d.s);
  conv2d_backward_naive_cpu<double>(square_of(d.x).data(), square_of(d.w).data(), square_of(d.gy).data(),
                                    e[0].l2.data(), e[1].l2.data(), e[2].l2.data(), d.s);
  for (auto& x : e)
    for (double& v : x.l2) v = std::sqrt(v);
  return e;
}

Tensor device_x(const ConvData& d) {
  const Shape shape{d.s.N, d.s.C, d.s.H, d.s.W};
  return d.v.u8 ? Tensor::from_vector(d.xq, shape, Device::CUDA)
                : Tensor::from_vector(to_float(d.x), shape, Device::CUDA);
}
Tensor device_f(const std::vector<double>& v) {
  return Tensor::from_vector(to_float(v), {int64_t(v.size())}, Device::CUDA);
}

// Each pass with the scratch its query asks for, as the op glue gives it (engine/ops_conv2d.cpp).
using detail::cuda_scratch;
using detail::CudaScratch;

void run_forward(const ConvData& d, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, ConvMath m) {
  const CudaScratch ws = cuda_scratch(conv2d_igemm_forward_workspace_bytes(d.s, m));
  if (d.v.u8)
    conv2d_igemm_forward_cuda<uint8_t>(x.data<uint8_t>(), d.v.scale, w.data<float>(), b.data<float>(), y.data<float>(),
                                       d.s, m, ws.ptr, ws.bytes);
  else
    conv2d_igemm_forward_cuda<float>(x.data<float>(), 1.f, w.data<float>(), b.data<float>(), y.data<float>(), d.s, m,
                                     ws.ptr, ws.bytes);
}
void run_backward_data(const Conv2dShape& s, const Tensor& w, const Tensor& gy, Tensor& gx, ConvMath m) {
  const CudaScratch ws = cuda_scratch(conv2d_igemm_backward_data_workspace_bytes(s, m));
  conv2d_igemm_backward_data_cuda(w.data<float>(), gy.data<float>(), gx.data<float>(), s, m, ws.ptr, ws.bytes);
}
void run_backward_weight(const ConvData& d, const Tensor& x, const Tensor& gy, Tensor& gw, Tensor& gb, ConvMath m) {
  const CudaScratch ws = cuda_scratch(conv2d_igemm_backward_weight_workspace_bytes(d.s, m, true, true));
  if (d.v.u8)
    conv2d_igemm_backward_weight_cuda<uint8_t>(x.data<uint8_t>(), d.v.scale, gy.data<float>(), gw.data<float>(),
                                               gb.data<float>(), d.s, m, ws.ptr, ws.bytes);
  else
    conv2d_igemm_backward_weight_cuda<float>(x.data<float>(), 1.f, gy.data<float>(), gw.data<float>(), gb.data<float>(),
                                             d.s, m, ws.ptr, ws.bytes);
}

// Forward, backward data (when `with_dgrad`: it does not read x) and backward weight + bias, both maths.
void check_shape(const std::string& name, const Conv2dShape& s, Variant v, bool with_dgrad, uint64_t seed) {
  const ConvData d = make_data(s, v, seed);
  const Expected fwd = forward_expected(d);
  const std::array<Expected, 3> bwd = backward_expected(d);
  const Tensor x = device_x(d), w = device_f(d.w), b = device_f(d.b), gy = device_f(d.gy);
  for (ConvMath m : {ConvMath::fp32, ConvMath::tf32}) {
    const bool tf32 = m == ConvMath::tf32;
    const std::string what = name + " " + v.name + (tf32 ? " tf32" : " fp32");
    Tensor y = device_f(std::vector<double>(fwd.value.size(), 12345.0));  // forward must overwrite
    run_forward(d, x, w, b, y, m);
    expect_matches(y.to_vector<float>(), fwd, tf32, what + " forward");
    if (with_dgrad) {
      Tensor gx = device_f(d.gx0);
      run_backward_data(s, w, gy, gx, m);
      expect_matches(gx.to_vector<float>(), bwd[0], tf32, what + " backward data");
    }
    Tensor gw = device_f(d.gw0), gb = device_f(d.gb0);
    run_backward_weight(d, x, gy, gw, gb, m);
    expect_matches(gw.to_vector<float>(), bwd[1], tf32, what + " backward weight");
    expect_matches(gb.to_vector<float>(), bwd[2], /*tf32: the bias sum is fp32 either way*/ false, what + " bias");
  }
}

// The shared odd shapes, plus one whose planner splits K heavily (64x64 tiles, 16 splits).
std::vector<ConvCase> odd_shapes() {
  std::vector<ConvCase> cases = odd_conv_cases();
  cases.push_back({"split_heavy_64x64_16", make_conv2d_shape(8, 64, 16, 16, 64, 3, 3, 1, 1)});
  return cases;
}

TEST(ConvIgemmCuda, OddShapesFloatInput) {
  SG_SKIP_WITHOUT_CUDA();
  uint64_t seed = 100;
  for (const auto& [name, s] : odd_shapes()) check_shape(name, s, kFloat, true, seed += 10);
}

TEST(ConvIgemmCuda, OddShapesUint8Input) {
  SG_SKIP_WITHOUT_CUDA();
  uint64_t seed = 200;
  for (const auto& [name, s] : odd_shapes())
    for (Variant v : {kSpikes, kLevels}) check_shape(name, s, v, false, seed += 10);
}

// The VGGSNN layers (3x3 s1 p1) at N = 1, plus the 1x1 and stride-2 variants of one of them.
TEST(ConvIgemmCuda, VggsnnShapesSmallBatch) {
  SG_SKIP_WITHOUT_CUDA();
  uint64_t seed = 300;
  for (auto l : {std::array<int64_t, 3>{3, 64, 32},
                 {64, 128, 32},
                 {128, 256, 16},
                 {256, 256, 16},
                 {256, 512, 8},
                 {512, 512, 8},
                 {512, 512, 4}}) {
    const Conv2dShape s = make_conv2d_shape(1, l[0], l[2], l[2], l[1], 3, 3, 1, 1);
    const std::string name = std::to_string(l[0]) + "->" + std::to_string(l[1]) + "@" + std::to_string(l[2]);
    check_shape(name, s, kFloat, true, seed += 10);
    if (l[0] != 3) check_shape(name, s, kSpikes, false, seed += 10);  // layers after the first see spikes
  }
  check_shape("128->256@16 1x1", make_conv2d_shape(2, 128, 16, 16, 256, 1, 1, 1, 0), kLevels, true, 400);
  check_shape("128->256@16 s2", make_conv2d_shape(2, 128, 16, 16, 256, 3, 3, 2, 1), kFloat, true, 410);
}

// Same inputs twice: identical bits (split-K partials and bias sums are added in a fixed order).
TEST(ConvIgemmCuda, DeterministicRunToRun) {
  SG_SKIP_WITHOUT_CUDA();
  for (const Conv2dShape& s :
       {make_conv2d_shape(8, 64, 16, 16, 64, 3, 3, 1, 1), make_conv2d_shape(4, 512, 4, 4, 512, 3, 3, 1, 1)})
    for (ConvMath m : {ConvMath::fp32, ConvMath::tf32}) {
      const ConvData d = make_data(s, kFloat, 500);
      const Tensor x = device_x(d), w = device_f(d.w), b = device_f(d.b), gy = device_f(d.gy);
      std::vector<float> first[4];
      for (int run = 0; run < 2; ++run) {
        Tensor y = device_f(std::vector<double>(size_t(s.N * s.K * s.P * s.Q), 0.0));
        Tensor gx = device_f(d.gx0), gw = device_f(d.gw0), gb = device_f(d.gb0);
        run_forward(d, x, w, b, y, m);
        run_backward_data(s, w, gy, gx, m);
        run_backward_weight(d, x, gy, gw, gb, m);
        const std::vector<float> got[4] = {y.to_vector<float>(), gx.to_vector<float>(), gw.to_vector<float>(),
                                           gb.to_vector<float>()};
        for (int i = 0; i < 4; ++i) {
          if (run == 0)
            first[i] = got[i];
          else
            EXPECT_EQ(std::memcmp(first[i].data(), got[i].data(), got[i].size() * sizeof(float)), 0)
                << "result " << i << " (y, gx, gw, gb) differs between runs";
        }
      }
    }
}

TEST(ConvIgemmCuda, RejectsScaledFloatInput) {
  SG_SKIP_WITHOUT_CUDA();
  const Conv2dShape s = make_conv2d_shape(1, 2, 4, 4, 3, 3, 3, 1, 1);
  Tensor x = Tensor::zeros({1, 2, 4, 4}, DType::F32, Device::CUDA),
         w = Tensor::zeros({3, 2, 3, 3}, DType::F32, Device::CUDA);
  Tensor y = Tensor::zeros({1, 3, 4, 4}, DType::F32, Device::CUDA);
  expect_error(
      [&] {
        conv2d_igemm_forward_cuda<float>(x.data<float>(), 0.5f, w.data<float>(), nullptr, y.data<float>(), s,
                                         ConvMath::fp32, nullptr, 0);
      },
      "x_scale must be 1");
}

// Scratch is the caller's: a pass whose plan splits K (or sums the bias) refuses a workspace smaller than its
// query says, naming the pass, instead of writing past it.
TEST(ConvIgemmCuda, RejectsSmallWorkspace) {
  SG_SKIP_WITHOUT_CUDA();
  const Conv2dShape s = make_conv2d_shape(8, 64, 16, 16, 64, 3, 3, 1, 1);  // backward weight: split-K
  ASSERT_GT(conv2d_igemm_backward_weight_workspace_bytes(s, ConvMath::fp32, true, false), 0u) << "must split K";
  const size_t need = conv2d_igemm_backward_weight_workspace_bytes(s, ConvMath::fp32, true, true);
  const Tensor x = Tensor::zeros({8, 64, 16, 16}, DType::F32, Device::CUDA),
               gy = Tensor::zeros({8, 64, 16, 16}, DType::F32, Device::CUDA),
               gw = Tensor::zeros({64, 64, 3, 3}, DType::F32, Device::CUDA),
               gb = Tensor::zeros({64}, DType::F32, Device::CUDA);
  const CudaScratch small = cuda_scratch(need - 4);
  expect_error(
      [&] {
        conv2d_igemm_backward_weight_cuda<float>(x.data<float>(), 1.f, gy.data<float>(), gw.data<float>(),
                                                 gb.data<float>(), s, ConvMath::fp32, small.ptr, small.bytes);
      },
      "conv2d_igemm_backward_weight: the");
  expect_error(
      [&] {
        conv2d_igemm_backward_weight_cuda<float>(x.data<float>(), 1.f, gy.data<float>(), gw.data<float>(), nullptr, s,
                                                 ConvMath::fp32, nullptr, 0);
      },
      "conv2d_igemm_backward_weight: the split-K workspace");
}

}  // namespace
}  // namespace spikegrad::testing
