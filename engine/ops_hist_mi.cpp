// Glue for the hist_mi family (kernels/hist_mi.h): validation, device dispatch, one tape node.
#include "engine/ops_hist_mi.h"

#include <cmath>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/hist_mi.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::on_device;

namespace {

HistMiParams checked_params(const Tensor& x, const Tensor& z, const HistMiOptions& opt, const char* op) {
  check_float(x, op, "x_rates");
  check_like(z, x, op, "z_rates", "x_rates");
  SG_CHECK(x.ndim() == 2 && x.size(0) >= 1 && x.size(1) >= 1,
           op << ": x_rates must be (T,B) with T,B >= 1, got " << shape_str(x.shape()));
  SG_CHECK(z.shape() == x.shape(), op << ": z_rates must have the shape of x_rates " << shape_str(x.shape()) << ", got "
                                      << shape_str(z.shape()));
  SG_CHECK(opt.bins >= 1 && opt.bins <= (1 << 20), op << ": bins must be in [1, 2^20], got " << opt.bins);
  SG_CHECK(std::isfinite(opt.eps) && opt.eps > 0,
           op << ": eps must be finite and > 0 (empty cells would give 0*log2(0)), got " << opt.eps);
  HistMiParams p;
  p.T = x.size(0);
  p.B = x.size(1);
  p.bins = opt.bins;
  p.eps = opt.eps;
  p.soft_forward = opt.soft_forward;
  return p;
}

// Forward on the tensors' device: fills stats (B, kKdeStatCount) and returns the batch mean, shape ().
Tensor hist_forward(const Tensor& x, const Tensor& z, const HistMiParams& p, Tensor& stats) {
  stats = Tensor::empty({p.B, kKdeStatCount}, x.dtype(), x.device());
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  on_device(
      x, "hist_mutual_information",
      [&] { hist_mi_forward_cuda(x.data<float>(), z.data<float>(), stats.data<float>(), y.data<float>(), p); },
      [&](auto zero) {
        using T_ = decltype(zero);
        hist_mi_forward_cpu<T_>(x.data<T_>(), z.data<T_>(), stats.data<T_>(), y.data<T_>(), p);
      });
  return y;
}

}  // namespace

Tensor hist_mutual_information(Tape& tape, const Tensor& x_rates, const Tensor& z_rates, const HistMiOptions& opt) {
  const HistMiParams p = checked_params(x_rates, z_rates, opt, "hist_mutual_information");
  Tensor stats;
  Tensor y = hist_forward(x_rates, z_rates, p, stats);
  if (Tape::should_record({x_rates, z_rates})) {
    tape.record("hist_mutual_information", {x_rates, z_rates}, {y},
                [x = x_rates, z = z_rates, p](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                  if (!gx[0] && !gx[1]) return;
                  on_device(
                      x, "hist_mutual_information backward",
                      [&] {
                        hist_mi_backward_cuda(x.data<float>(), z.data<float>(), gy[0].data<float>(),
                                              gx[0] ? gx[0]->data<float>() : nullptr,
                                              gx[1] ? gx[1]->data<float>() : nullptr, p);
                      },
                      [&](auto zero) {
                        using T_ = decltype(zero);
                        hist_mi_backward_cpu<T_>(x.data<T_>(), z.data<T_>(), gy[0].data<T_>(),
                                                 gx[0] ? gx[0]->data<T_>() : nullptr,
                                                 gx[1] ? gx[1]->data<T_>() : nullptr, p);
                      });
                });
  }
  return y;
}

KdeMiStats hist_mi_stats(const Tensor& x_rates, const Tensor& z_rates, const HistMiOptions& opt) {
  const HistMiParams p = checked_params(x_rates, z_rates, opt, "hist_mi_stats");
  Tensor stats;
  Tensor y = hist_forward(x_rates, z_rates, p, stats);
  return mi_stats_from_kernel(stats, y, p.B);
}

}  // namespace spikegrad::ops
