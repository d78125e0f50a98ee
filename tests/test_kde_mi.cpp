// KDE mutual information family: the spec's reference values (reference.md §1.3), the fused estimator
// against the dense double-precision formula, finite-difference gradients through spikes -> rates -> MI,
// edge cases, firing rates, softmax entropy and error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/kde_mi.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// (T,B) rates from per-sample time series: series[b][t].
Tensor rates(const std::vector<std::vector<double>>& series, DType dtype = DType::F64) {
  const int64_t B = int64_t(series.size()), T = int64_t(series[0].size());
  std::vector<double> v(size_t(T * B));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) v[size_t(t * B + b)] = series[size_t(b)][size_t(t)];
  return Tensor::from_vector(v, {T, B}).to(dtype);
}

// Analytic gradients of the batch-mean MI w.r.t. x and z.
std::vector<Tensor> mi_grads(const Tensor& x0, const Tensor& z0, const ops::KdeMiOptions& opt = {}) {
  Tensor x = x0.clone(), z = z0.clone();
  x.set_requires_grad(true);
  z.set_requires_grad(true);
  Tape tape;
  Tensor mi = ops::kde_mutual_information(tape, x, z, opt);
  return tape.grad(mi, {x, z});
}

// Central differences of the batch-mean MI (float64) w.r.t. every element of x (which=0) or z (which=1).
Tensor mi_fd(const Tensor& x, const Tensor& z, int which, double h = 1e-6) {
  const Tensor& base = which == 0 ? x : z;
  Tensor out = Tensor::zeros(base.shape(), DType::F64);
  for (int64_t e = 0; e < base.numel(); ++e) {
    Tensor plus = base.clone(), minus = base.clone();
    plus.data<double>()[e] += h;
    minus.data<double>()[e] -= h;
    const double fp = which == 0 ? ops::kde_mi_stats(plus, z).mean_mi : ops::kde_mi_stats(x, plus).mean_mi;
    const double fm = which == 0 ? ops::kde_mi_stats(minus, z).mean_mi : ops::kde_mi_stats(x, minus).mean_mi;
    out.data<double>()[e] = (fp - fm) / (2 * h);
  }
  return out;
}

struct ReferenceRow {
  std::vector<double> x, z;
  double mi, h_x, h_z, h_xz;  // NaN where the spec gives no value
};
const double kNone = std::numeric_limits<double>::quiet_NaN();
const std::vector<ReferenceRow> kReferenceRows = {
    {{100, 100, 100, 100}, {10, 20, 30, 40}, 0.000000, 0.126834, 2.126834, 2.253669},
    {{10, 20, 30, 40}, {50, 60, 70, 80}, 2.000000, 2.126834, 2.126834, 2.253669},
    {{10, 10, 30, 30}, {50, 50, 70, 70}, 1.000000, 1.126834, 1.126834, 1.253669},
    {{10, 10, 30, 30}, {50, 70, 50, 70}, 0.000000, 1.126834, 1.126834, 2.253669},
    {{10.5, 20.5, 30.5, 40.5}, {50, 60, 70, 80}, 2.000000, 3.000891, 2.126834, 3.127726},
    {{10, 10.3, 10.6, 10.9}, {50, 60, 70, 80}, 0.684474, 1.023444, 2.126834, 2.465805},
    {{10.2, 20.4, 30.1, 40.3}, {50.2, 50.6, 70.1, 70.4}, 1.40519992, kNone, kNone, kNone},
};

void expect_row(const ops::KdeMiStats& s, size_t b, const ReferenceRow& r, double tol, const std::string& what) {
  EXPECT_NEAR(s.mi[b], r.mi, tol) << what << " MI";
  if (!std::isnan(r.h_x)) {
    EXPECT_NEAR(s.h_x[b], r.h_x, tol) << what << " H_x";
    EXPECT_NEAR(s.h_z[b], r.h_z, tol) << what << " H_z";
    EXPECT_NEAR(s.h_xz[b], r.h_xz, tol) << what << " H_xz";
  }
}

TEST(KdeMi, ReferenceTableFloat32AndFloat64) {
  for (size_t k = 0; k < kReferenceRows.size(); ++k) {
    const ReferenceRow& r = kReferenceRows[k];
    for (DType d : {DType::F32, DType::F64}) {
      const ops::KdeMiStats s = ops::kde_mi_stats(rates({r.x}, d), rates({r.z}, d));
      expect_row(s, 0, r, 1e-5, "row " + std::to_string(k) + " " + dtype_name(d));
      EXPECT_NEAR(s.mean_mi, r.mi, 1e-5);
    }
  }
}

TEST(KdeMi, ReferenceTableAsOneBatch) {
  std::vector<std::vector<double>> xs, zs;
  for (const ReferenceRow& r : kReferenceRows) {
    xs.push_back(r.x);
    zs.push_back(r.z);
  }
  const ops::KdeMiStats s = ops::kde_mi_stats(rates(xs, DType::F32), rates(zs, DType::F32));
  double mean = 0;
  for (size_t b = 0; b < kReferenceRows.size(); ++b) {
    expect_row(s, b, kReferenceRows[b], 1e-5, "batched row " + std::to_string(b));
    mean += kReferenceRows[b].mi / double(kReferenceRows.size());
  }
  EXPECT_NEAR(s.mean_mi, mean, 1e-5);
}

TEST(KdeMi, ReferenceBatchOfTwo) {
  const Tensor x = rates({{10.2, 20.4, 30.1, 40.3}, {0, 0, 0, 0}}), z = rates({{50.2, 50.6, 70.1, 70.4}, {12.75, 25.5, 38.25, 51}});
  EXPECT_NEAR(ops::kde_mi_stats(x, z).mean_mi, 0.70259996, 1e-6);
  EXPECT_NEAR(ops::kde_mi_stats(x.to(DType::F32), z.to(DType::F32)).mean_mi, 0.70259996, 1e-5);
}

TEST(KdeMi, ReferenceGradientsOfLastRow) {
  const ReferenceRow& r = kReferenceRows.back();
  const std::vector<double> dx = {-0.112358, 0.238108, -0.216598, 0.390495};
  const std::vector<double> dz = {-0.596150, 0.655185, -0.373731, 0.844860};
  for (DType d : {DType::F64, DType::F32}) {
    const std::vector<Tensor> g = mi_grads(rates({r.x}, d), rates({r.z}, d));
    expect_close(g[0], Tensor::from_vector(dx, {4, 1}), 0, 2e-5, std::string("dMI/dx ") + dtype_name(d));
    expect_close(g[1], Tensor::from_vector(dz, {4, 1}), 0, 2e-5, std::string("dMI/dz ") + dtype_name(d));
  }
}

TEST(KdeMi, ReferenceRowsFiniteDifferenceGradients) {
  for (size_t k = 0; k < kReferenceRows.size(); ++k) {
    const Tensor x = rates({kReferenceRows[k].x}), z = rates({kReferenceRows[k].z});
    const std::vector<Tensor> g = mi_grads(x, z);
    expect_close(g[0], mi_fd(x, z, 0), 1e-6, 1e-7, "row " + std::to_string(k) + " dMI/dx");
    expect_close(g[1], mi_fd(x, z, 1), 1e-6, 1e-7, "row " + std::to_string(k) + " dMI/dz");
  }
}

// Rates whose windows overlap a lot (several t within a few bins of each other, repeats, fractional and
// integer values, both ends of the range), so the owner rule and the window clamps are exercised.
Tensor clustered_rates(int64_t T, int64_t B, uint64_t seed, DType dtype) {
  Tensor u = uniform({T, B}, DType::F64, seed, 0, 1);
  const double* pu = u.data<double>();
  std::vector<double> v(size_t(T * B));
  const double centres[] = {0.0, 3.2, 10.0, 11.5, 127.4, 251.0, 255.0};
  for (int64_t k = 0; k < T * B; ++k) {
    // Three centres per tensor, revisited across time steps (B % 3 != 0), so windows overlap within a sample.
    const double c = centres[(int64_t(seed) + k % 3) % 7];
    const double off = k % 5 == 0 ? 0.0 : std::floor(pu[k] * 12.0) / 4.0 - 1.5;  // quarter-bin steps, repeats
    v[size_t(k)] = std::min(255.0, std::max(0.0, c + off));
  }
  return Tensor::from_vector(v, {T, B}).to(dtype);
}

// The fused estimator against the dense formula (full 256-bin kernels, 256x256 joints) in double. The
// inputs are first rounded to float32 so that both precisions see the same numbers: otherwise the float32
// path's error would be dominated by rounding the rates themselves (1e-5 bins at 200, times dH/dx ~ 1).
void check_against_dense(const Tensor& x_in, const Tensor& z_in, const std::string& what) {
  const Tensor x64 = x_in.to(DType::F32).to(DType::F64), z64 = z_in.to(DType::F32).to(DType::F64);
  const int64_t T = x64.size(0), B = x64.size(1);
  const KdeMiParams p = kde_mi_params(T, B, 256, 0.32, 1e-10, true);
  std::vector<double> stats(size_t(B * kKdeStatCount)), gx(size_t(T * B), 0.0), gz(size_t(T * B), 0.0);
  double mean = 0, one = 1;
  kde_mi_dense_cpu<double>(x64.data<double>(), z64.data<double>(), stats.data(), &mean, &one, gx.data(), gz.data(), p);
  const Tensor dense_gx = Tensor::from_vector(gx, {T, B}), dense_gz = Tensor::from_vector(gz, {T, B});

  for (DType d : {DType::F64, DType::F32}) {
    // float32 differs from the double oracle by float32 rounding only: ~1e-7 relative on each entropy term,
    // up to T*window^2 = 16*11^2 = 1936 terms per sample at T=16 -> 1e-5 absolute on bits (measured 4e-6). Gradients
    // are sums of a few hundred terms of size K*(x-i)/sigma^2 <= 45 -> 1e-6 absolute (measured 2e-8 at B=64).
    const double tol = d == DType::F64 ? 1e-10 : 1e-5;
    const double grtol = d == DType::F64 ? 1e-9 : 1e-5, gatol = d == DType::F64 ? 1e-10 : 1e-6;
    const ops::KdeMiStats s = ops::kde_mi_stats(x64.to(d), z64.to(d));
    for (int64_t b = 0; b < B; ++b) {
      const double* st = stats.data() + b * kKdeStatCount;
      EXPECT_NEAR(s.mi[size_t(b)], st[kKdeMi], tol) << what << " " << dtype_name(d) << " sample " << b;
      EXPECT_NEAR(s.h_x[size_t(b)], st[kKdeHx], tol) << what << " " << dtype_name(d) << " sample " << b;
      EXPECT_NEAR(s.h_z[size_t(b)], st[kKdeHz], tol) << what << " " << dtype_name(d) << " sample " << b;
      EXPECT_NEAR(s.h_xz[size_t(b)], st[kKdeHxz], tol) << what << " " << dtype_name(d) << " sample " << b;
    }
    EXPECT_NEAR(s.mean_mi, mean, tol) << what;
    const std::vector<Tensor> g = mi_grads(x64.to(d), z64.to(d));
    expect_close(g[0], dense_gx, grtol, gatol, what + " dMI/dx " + dtype_name(d));
    expect_close(g[1], dense_gz, grtol, gatol, what + " dMI/dz " + dtype_name(d));
  }
}

TEST(KdeMi, FusedEqualsDenseOnRandomRates) {
  for (int64_t T : {1, 2, 4, 8}) {
    const Tensor x = uniform({T, 6}, DType::F64, 10 + uint64_t(T), 0, 255);
    const Tensor z = uniform({T, 6}, DType::F64, 20 + uint64_t(T), 0, 255);
    check_against_dense(x, z, "uniform T=" + std::to_string(T));
  }
}

TEST(KdeMi, FusedEqualsDenseWithOverlappingWindows) {
  for (int64_t T : {3, 4, 8, 16}) {
    check_against_dense(clustered_rates(T, 5, 1, DType::F64), clustered_rates(T, 5, 4, DType::F64),
                        "clustered T=" + std::to_string(T));
  }
}

TEST(KdeMi, FusedEqualsDenseAtTheEdges) {
  // Rates exactly 0 and 255, B = 1, all-equal and alternating series.
  check_against_dense(rates({{0, 0, 255, 255}}), rates({{255, 0, 255, 0}}), "edges");
  check_against_dense(rates({{0, 255, 0, 255, 0, 255}}), rates({{0, 0, 0, 0, 0, 0}}), "edges const z");
}

TEST(KdeMi, ConstantSequencesHaveZeroMi) {
  const Tensor x = rates({{42, 42, 42, 42}, {0, 0, 0, 0}, {255, 255, 255, 255}, {17.3, 17.3, 17.3, 17.3}});
  const Tensor z = rates({{1, 50, 99, 200}, {3, 3, 9, 9}, {7.7, 7.2, 255, 0}, {17.3, 17.3, 17.3, 17.3}});
  for (DType d : {DType::F64, DType::F32}) {
    // Not exactly 0 even in exact arithmetic: eps inside log2(q + eps) shifts each entropy by about
    // (number of nonzero cells) * eps / ln 2 ~ 1e-8, and the three shifts do not cancel.
    const double tol = d == DType::F64 ? 1e-7 : 1e-5;
    const ops::KdeMiStats s = ops::kde_mi_stats(x.to(d), z.to(d));
    for (size_t b = 0; b < s.mi.size(); ++b) EXPECT_NEAR(s.mi[b], 0.0, tol) << "sample " << b;
    const ops::KdeMiStats r = ops::kde_mi_stats(z.to(d), x.to(d));
    for (size_t b = 0; b < r.mi.size(); ++b) EXPECT_NEAR(r.mi[b], 0.0, tol) << "swapped " << b;
  }
}

TEST(KdeMi, SingleTimeStepHasZeroMiAndFiniteGradients) {
  const Tensor x = rates({{12.3}, {0}, {255}}), z = rates({{77.5}, {255}, {3.0}});
  const ops::KdeMiStats s = ops::kde_mi_stats(x, z);
  for (double m : s.mi) EXPECT_NEAR(m, 0.0, 1e-7);  // eps bias only, as for constant sequences
  const std::vector<Tensor> g = mi_grads(x, z);
  expect_close(g[0], mi_fd(x, z, 0), 1e-6, 1e-7, "T=1 dMI/dx");
  expect_close(g[1], mi_fd(x, z, 1), 1e-6, 1e-7, "T=1 dMI/dz");
}

TEST(KdeMi, AllZeroTapsGiveZeroMiAndZeroGradient) {
  for (DType d : {DType::F64, DType::F32}) {
    Tensor sx = Tensor::zeros({4, 3, 2, 5, 5}, d), sz = Tensor::zeros({4, 3, 8, 2, 2}, d);
    sx.set_requires_grad(true);
    sz.set_requires_grad(true);
    Tape tape;
    Tensor mi = ops::kde_mutual_information(tape, ops::firing_rate(tape, sx), ops::firing_rate(tape, sz));
    EXPECT_NEAR(mi.item(), 0.0, 1e-7);
    // With one series constant, MI is identically 0 as a function of the other, so both gradients vanish
    // (to rounding); in particular they are finite.
    const std::vector<Tensor> g = tape.grad(mi, {sx, sz});
    expect_close(g[0], Tensor::zeros(sx.shape(), d), 0, 1e-6, std::string("zero taps dx ") + dtype_name(d));
    expect_close(g[1], Tensor::zeros(sz.shape(), d), 0, 1e-6, std::string("zero taps dz ") + dtype_name(d));
  }
}

TEST(KdeMi, WindowRadiusIsWhereTheKernelUnderflows) {
  for (bool dbl : {false, true}) {
    const KdeMiParams p = kde_mi_params(4, 1, 256, 0.32, 1e-10, dbl);
    const double r = p.radius;
    EXPECT_EQ(p.window, int(std::floor(2 * r)) + 2);
    if (dbl) {
      EXPECT_EQ(kde_kernel<double>(100.0 + r * (1 + 1e-12), 100, 0.32), 0.0);
      EXPECT_GT(kde_kernel<double>(100.0 + r - 0.05, 100, 0.32), 0.0) << "the radius should not be loose";
    } else {
      EXPECT_EQ(kde_kernel<float>(float(100.0 + r * (1 + 1e-6)), 100, 0.32f), 0.0f);
      EXPECT_GT(kde_kernel<float>(float(100.0 + r - 0.05), 100, 0.32f), 0.0f) << "the radius should not be loose";
    }
  }
  EXPECT_NEAR(kde_mi_params(4, 1, 256, 0.32, 1e-10, false).radius, 4.62, 0.01);
  EXPECT_EQ(kde_mi_params(4, 1, 8, 5.0, 1e-10, true).window, 8) << "window capped at bins";
}

TEST(KdeMi, OtherBinsAndSigmaMatchDense) {
  const ops::KdeMiOptions opt{64, 1.5, 1e-10};
  const Tensor x = uniform({5, 3}, DType::F64, 31, 0, 63), z = uniform({5, 3}, DType::F64, 32, 0, 63);
  const KdeMiParams p = kde_mi_params(5, 3, opt.bins, opt.sigma, opt.eps, true);
  std::vector<double> stats(3 * kKdeStatCount);
  double mean = 0;
  kde_mi_dense_cpu<double>(x.data<double>(), z.data<double>(), stats.data(), &mean, nullptr, nullptr, nullptr, p);
  EXPECT_NEAR(ops::kde_mi_stats(x, z, opt).mean_mi, mean, 1e-10);
  EXPECT_NEAR(ops::kde_mi_stats(x.to(DType::F32), z.to(DType::F32), opt).mean_mi, mean, 1e-5);
}

TEST(KdeMi, NanRatePropagates) {
  const ops::KdeMiStats s = ops::kde_mi_stats(rates({{1, std::nan(""), 3}}), rates({{4, 5, 6}}));
  EXPECT_TRUE(std::isnan(s.mi[0]));
}

TEST(KdeMi, BadInputNamesOpAndShapes) {
  Tape tape;
  const Tensor x = Tensor::zeros({4, 2});
  EXPECT_NE(error_of([&] { ops::kde_mutual_information(tape, x, Tensor::zeros({4, 3})); })
                .find("kde_mutual_information: z_rates must have the shape of x_rates (4,2), got (4,3)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::kde_mutual_information(tape, Tensor::zeros({8}), Tensor::zeros({8})); })
                .find("kde_mutual_information: x_rates must be (T,B) with T,B >= 1, got (8)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::kde_mutual_information(tape, x, x, {256, 0.32, 0.0}); }).find("eps must be finite and > 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::kde_mutual_information(tape, x, x, {256, -1.0, 1e-10}); })
                .find("sigma must be finite and > 0, got -1"),
            std::string::npos);
  EXPECT_THROW(ops::kde_mutual_information(tape, x, Tensor::zeros({4, 2}, DType::F64)), Error);
  EXPECT_NE(error_of([&] { ops::firing_rate(tape, Tensor::zeros({4, 2}), ops::RateReduce::ChannelMax, 255); })
                .find("firing_rate: spikes must be (T,B,C,...) with every dim >= 1 for reduction channel_max, got (4,2)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::firing_rate(tape, Tensor::zeros({4}), ops::RateReduce::Mean, 255); })
                .find("firing_rate: spikes must be (T,B,...) with every dim >= 1 for reduction mean, got (4)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { ops::softmax_entropy(tape, Tensor::zeros({3, 0})); })
                .find("softmax_entropy: logits must be (N,K) with K >= 1, got (3,0)"),
            std::string::npos);
}

// ---- op table: CUDA vs CPU and finite differences in double through the public ops ---------------------
SG_OP_CASE({.name = "kde_mi/uniform",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({4, 7}, d, 41, 0, 255), uniform({4, 7}, d, 42, 0, 255)}; },
            .grad_inputs = {0, 1},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::kde_mutual_information(t, x[0], x[1]); }});
SG_OP_CASE({.name = "kde_mi/clustered_T8",
            .make_inputs = [](DType d) { return std::vector<Tensor>{clustered_rates(8, 5, 2, d), clustered_rates(8, 5, 3, d)}; },
            .grad_inputs = {0, 1},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::kde_mutual_information(t, x[0], x[1]); }});
SG_OP_CASE({.name = "kde_mi/T1_B1",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({1, 1}, d, 43, 0, 255), uniform({1, 1}, d, 44, 0, 255)}; },
            .grad_inputs = {0, 1},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::kde_mutual_information(t, x[0], x[1]); }});
SG_OP_CASE({.name = "kde_mi/only_z_grad",
            .make_inputs = [](DType d) { return std::vector<Tensor>{clustered_rates(4, 3, 5, d), uniform({4, 3}, d, 45, 0, 255)}; },
            .grad_inputs = {1},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::kde_mutual_information(t, x[0], x[1]); }});
// One tensor on both sides: x and z share one gradient buffer, so both sides' contributions must land
// (the CUDA backward once raced here).
SG_OP_CASE({.name = "kde_mi/same_tensor_both_sides",
            .make_inputs = [](DType d) { return std::vector<Tensor>{clustered_rates(4, 3, 7, d)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::kde_mutual_information(t, x[0], x[0]); }});
SG_OP_CASE({.name = "firing_rate/mean",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({3, 2, 5, 3, 3}, d, 46, 0, 1)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::firing_rate(t, x[0], ops::RateReduce::Mean, 255); }});
SG_OP_CASE({.name = "firing_rate/channel_max",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({3, 2, 7, 2, 3}, d, 47, 0, 1)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::firing_rate(t, x[0], ops::RateReduce::ChannelMax, 255); },
            .max_fd_elements = 252});
SG_OP_CASE({.name = "firing_rate/features_TBF",
            .make_inputs = [](DType d) { return std::vector<Tensor>{uniform({2, 3, 37}, d, 48, 0, 1)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::firing_rate(t, x[0], ops::RateReduce::Mean, 2.0); }});
// The whole TMI chain: tap spikes -> rates -> MI, with float taps as leaves.
SG_OP_CASE({.name = "tmi_chain/mean",
            .make_inputs =
                [](DType d) {
                  return std::vector<Tensor>{uniform({4, 3, 4, 3, 3}, d, 49, 0, 1), uniform({4, 3, 8, 2, 2}, d, 50, 0, 1)};
                },
            .grad_inputs = {0, 1},
            .forward =
                [](Tape& t, const std::vector<Tensor>& x) {
                  return ops::kde_mutual_information(t, ops::firing_rate(t, x[0]), ops::firing_rate(t, x[1]));
                }});
SG_OP_CASE({.name = "tmi_chain/channel_max",
            .make_inputs =
                [](DType d) {
                  return std::vector<Tensor>{uniform({4, 2, 5, 2, 2}, d, 51, 0, 1), uniform({4, 2, 6, 1, 3}, d, 52, 0, 1)};
                },
            .grad_inputs = {0, 1},
            .forward =
                [](Tape& t, const std::vector<Tensor>& x) {
                  return ops::kde_mutual_information(t, ops::firing_rate(t, x[0], ops::RateReduce::ChannelMax),
                                                     ops::firing_rate(t, x[1], ops::RateReduce::ChannelMax));
                }});
SG_OP_CASE({.name = "softmax_entropy/rows",
            .make_inputs = [](DType d) { return std::vector<Tensor>{randn({5, 11}, d, 53, 3.0)}; },
            .grad_inputs = {0},
            .forward = [](Tape& t, const std::vector<Tensor>& x) { return ops::softmax_entropy(t, x[0]); }});

TEST(FiringRate, MeanAndChannelMaxGoldens) {
  Tape tape;
  // (T=1, B=2, C=3, S=2): sample 0 channel means 0.5, 1, 0.5; sample 1 all zero (tie -> channel 0).
  Tensor s = Tensor::from_vector<float>({1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0}, {1, 2, 3, 2});
  s.set_requires_grad(true);
  EXPECT_EQ(ops::firing_rate(tape, s, ops::RateReduce::Mean, 255).to_vector<float>(), (std::vector<float>{170, 0}));
  Tensor r = ops::firing_rate(tape, s, ops::RateReduce::ChannelMax, 255);
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{255, 0}));
  const std::vector<Tensor> g = tape.vjp(r, Tensor::from_vector<float>({2, 4}, {1, 2}), {s});
  EXPECT_EQ(g[0].to_vector<float>(), (std::vector<float>{0, 0, 255, 255, 0, 0, 510, 510, 0, 0, 0, 0}));
}

TEST(FiringRate, ChannelMaxTiesGoToTheLowestChannel) {
  Tape tape;
  // Channels 1 and 2 tie at the maximum 0.5; channel 1 wins.
  Tensor s = Tensor::from_vector<double>({0, 0, 1, 0, 0, 1}, {1, 1, 3, 2});
  s.set_requires_grad(true);
  Tensor r = ops::firing_rate(tape, s, ops::RateReduce::ChannelMax, 1.0);
  EXPECT_EQ(r.item(), 0.5);
  const std::vector<Tensor> g = tape.grad(r, {s});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{0, 0, 0.5, 0.5, 0, 0}));
}

TEST(SoftmaxEntropy, UniformAndSaturatedRows) {
  Tape tape;
  Tensor a = Tensor::from_vector<float>({0, 0, 0, 0, 2000, 0, 0, 0}, {2, 4});
  const std::vector<float> h = ops::softmax_entropy(tape, a).to_vector<float>();
  EXPECT_NEAR(h[0], std::log(4.0), 1e-6);
  EXPECT_EQ(h[1], 0.0f) << "p underflows to 0 for the losers: exactly 0, not NaN";
}

// ---- CUDA: the dense cuBLAS formulation against the dense CPU reference --------------------------------
TEST(KdeMiCuda, DenseFormulationMatchesCpuDense) {
  SG_SKIP_WITHOUT_CUDA();
#ifdef SPIKEGRAD_CUDA
  const int64_t T = 4, B = 5;
  const Tensor x = clustered_rates(T, B, 6, DType::F32), z = uniform({T, B}, DType::F32, 60, 0, 255);
  const KdeMiParams p = kde_mi_params(T, B, 256, 0.32, 1e-10, false);
  Tensor ws = Tensor::empty({kde_mi_dense_workspace_floats(p)}, DType::F32, Device::CUDA);
  Tensor stats = Tensor::empty({B, kKdeStatCount}, DType::F32, Device::CUDA);
  Tensor mean = Tensor::empty({}, DType::F32, Device::CUDA), one = Tensor::full({}, 1.0, DType::F32, Device::CUDA);
  Tensor gx = Tensor::zeros({T, B}, DType::F32, Device::CUDA), gz = Tensor::zeros({T, B}, DType::F32, Device::CUDA);
  const Tensor xd = x.to(Device::CUDA), zd = z.to(Device::CUDA);
  kde_mi_dense_forward_cuda(xd.data<float>(), zd.data<float>(), stats.data<float>(), mean.data<float>(), ws.data<float>(), p);
  kde_mi_dense_backward_cuda(xd.data<float>(), zd.data<float>(), stats.data<float>(), one.data<float>(), gx.data<float>(),
                             gz.data<float>(), ws.data<float>(), p);
  const Tensor x64 = x.to(DType::F64), z64 = z.to(DType::F64);
  const KdeMiParams p64 = kde_mi_params(T, B, 256, 0.32, 1e-10, true);
  Tensor rs = Tensor::empty({B, kKdeStatCount}, DType::F64), rgx = Tensor::zeros({T, B}, DType::F64),
         rgz = Tensor::zeros({T, B}, DType::F64);
  double rmean = 0, rone = 1;
  kde_mi_dense_cpu<double>(x64.data<double>(), z64.data<double>(), rs.data<double>(), &rmean, &rone, rgx.data<double>(),
                           rgz.data<double>(), p64);
  // Looser than the fused path's 1e-5/1e-6: the dense float32 path reduces 65536 joint cells per sample
  // (normaliser, entropy, D) where the fused one reduces a few hundred, and cuBLAS sums in its own order.
  EXPECT_NEAR(mean.item(), rmean, 1e-5);
  expect_close(gx, rgx, 2e-4, 2e-4, "dense CUDA dMI/dx");
  expect_close(gz, rgz, 2e-4, 2e-4, "dense CUDA dMI/dz");
#endif
}

}  // namespace
}  // namespace spikegrad::testing
