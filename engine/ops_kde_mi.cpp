// Glue for the kde_mi family: firing rates of taps, the fused KDE mutual information and the softmax
// entropy (kernels/firing_rate.h, kernels/kde_mi.h, kernels/softmax_entropy.h).
#include <cmath>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/firing_rate.h"
#include "kernels/kde_mi.h"
#include "kernels/softmax_entropy.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::on_device;

const char* rate_reduce_name(RateReduce r) { return r == RateReduce::Mean ? "mean" : "channel_max"; }

Tensor firing_rate(Tape& tape, const Tensor& spikes, RateReduce reduce, double scale) {
  check_float(spikes, "firing_rate", "spikes");
  const bool chmax = reduce == RateReduce::ChannelMax;
  const int min_dims = chmax ? 3 : 2;
  SG_CHECK(spikes.ndim() >= min_dims && spikes.numel() > 0,
           "firing_rate: spikes must be " << (chmax ? "(T,B,C,...)" : "(T,B,...)")
                                          << " with every dim >= 1 for reduction " << rate_reduce_name(reduce) << ", got "
                                          << shape_str(spikes.shape()));
  SG_CHECK(std::isfinite(scale), "firing_rate: scale must be finite, got " << scale);
  const int64_t T = spikes.size(0), B = spikes.size(1), rows = T * B;
  const int64_t F = spikes.numel() / rows;
  const int64_t C = chmax ? spikes.size(2) : 1, S = F / C;
  Tensor rate = Tensor::empty({T, B}, spikes.dtype(), spikes.device());
  Tensor argmax;
  if (chmax) argmax = Tensor::empty({T, B}, DType::I32, spikes.device());
  on_device(
      spikes, "firing_rate",
      [&] {
        if (chmax)
          firing_rate_chmax_forward_cuda(spikes.data<float>(), rate.data<float>(), argmax.data<int32_t>(), rows, C, S,
                                         float(scale));
        else
          firing_rate_mean_forward_cuda(spikes.data<float>(), rate.data<float>(), rows, F, float(scale));
      },
      [&](auto zero) {
        using T_ = decltype(zero);
        if (chmax)
          firing_rate_chmax_forward_cpu<T_>(spikes.data<T_>(), rate.data<T_>(), argmax.data<int32_t>(), rows, C, S,
                                            scale);
        else
          firing_rate_mean_forward_cpu<T_>(spikes.data<T_>(), rate.data<T_>(), rows, F, scale);
      });
  if (Tape::should_record({spikes})) {
    // The per-element factor, rounded once here so both backends multiply by the same number.
    const double factor = scale / double(chmax ? S : F);
    tape.record("firing_rate", {spikes}, {rate},
                [argmax, rows, F, C, S, factor, chmax](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                  if (!gx[0]) return;
                  Tensor& gs = *gx[0];
                  on_device(
                      gs, "firing_rate backward",
                      [&] {
                        if (chmax)
                          firing_rate_chmax_backward_cuda(gy[0].data<float>(), argmax.data<int32_t>(), gs.data<float>(),
                                                          rows, C, S, float(factor));
                        else
                          firing_rate_mean_backward_cuda(gy[0].data<float>(), gs.data<float>(), rows, F, float(factor));
                      },
                      [&](auto zero) {
                        using T_ = decltype(zero);
                        if (chmax)
                          firing_rate_chmax_backward_cpu<T_>(gy[0].data<T_>(), argmax.data<int32_t>(), gs.data<T_>(),
                                                             rows, C, S, T_(factor));
                        else
                          firing_rate_mean_backward_cpu<T_>(gy[0].data<T_>(), gs.data<T_>(), rows, F, T_(factor));
                      });
                });
  }
  return rate;
}

namespace {

KdeMiParams checked_params(const Tensor& x, const Tensor& z, const KdeMiOptions& opt, const char* op) {
  check_float(x, op, "x_rates");
  check_like(z, x, op, "z_rates", "x_rates");
  SG_CHECK(x.ndim() == 2 && x.size(0) >= 1 && x.size(1) >= 1,
           op << ": x_rates must be (T,B) with T,B >= 1, got " << shape_str(x.shape()));
  SG_CHECK(z.shape() == x.shape(), op << ": z_rates must have the shape of x_rates " << shape_str(x.shape()) << ", got "
                                      << shape_str(z.shape()));
  SG_CHECK(opt.bins >= 1 && opt.bins <= (1 << 20), op << ": bins must be in [1, 2^20], got " << opt.bins);
  SG_CHECK(std::isfinite(opt.sigma) && opt.sigma > 0, op << ": sigma must be finite and > 0, got " << opt.sigma);
  SG_CHECK(std::isfinite(opt.eps) && opt.eps > 0,
           op << ": eps must be finite and > 0 (empty cells would give 0*log2(0)), got " << opt.eps);
  return kde_mi_params(x.size(0), x.size(1), opt.bins, opt.sigma, opt.eps, x.dtype() == DType::F64);
}

// Forward on the tensors' device: fills stats (B, kKdeStatCount) and returns the batch mean, shape ().
Tensor kde_forward(const Tensor& x, const Tensor& z, const KdeMiParams& p, Tensor& stats) {
  stats = Tensor::empty({p.B, kKdeStatCount}, x.dtype(), x.device());
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  on_device(
      x, "kde_mutual_information",
      [&] { kde_mi_forward_cuda(x.data<float>(), z.data<float>(), stats.data<float>(), y.data<float>(), p); },
      [&](auto zero) {
        using T_ = decltype(zero);
        kde_mi_forward_cpu<T_>(x.data<T_>(), z.data<T_>(), stats.data<T_>(), y.data<T_>(), p);
      });
  return y;
}

}  // namespace

Tensor kde_mutual_information(Tape& tape, const Tensor& x_rates, const Tensor& z_rates, const KdeMiOptions& opt) {
  const KdeMiParams p = checked_params(x_rates, z_rates, opt, "kde_mutual_information");
  Tensor stats;
  Tensor y = kde_forward(x_rates, z_rates, p, stats);
  if (Tape::should_record({x_rates, z_rates})) {
    tape.record("kde_mutual_information", {x_rates, z_rates}, {y},
                [x = x_rates, z = z_rates, stats, p](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                  if (!gx[0] && !gx[1]) return;
                  on_device(
                      x, "kde_mutual_information backward",
                      [&] {
                        kde_mi_backward_cuda(x.data<float>(), z.data<float>(), stats.data<float>(),
                                             gy[0].data<float>(), gx[0] ? gx[0]->data<float>() : nullptr,
                                             gx[1] ? gx[1]->data<float>() : nullptr, p);
                      },
                      [&](auto zero) {
                        using T_ = decltype(zero);
                        kde_mi_backward_cpu<T_>(x.data<T_>(), z.data<T_>(), stats.data<T_>(), gy[0].data<T_>(),
                                                gx[0] ? gx[0]->data<T_>() : nullptr,
                                                gx[1] ? gx[1]->data<T_>() : nullptr, p);
                      });
                });
  }
  return y;
}

KdeMiStats mi_stats_from_kernel(const Tensor& stats, const Tensor& mean, int64_t batch) {
  const Tensor host = stats.to(Device::CPU).to(DType::F64);
  const double* s = host.data<double>();
  KdeMiStats out;
  for (int64_t b = 0; b < batch; ++b) {
    out.mi.push_back(s[b * kKdeStatCount + kKdeMi]);
    out.h_x.push_back(s[b * kKdeStatCount + kKdeHx]);
    out.h_z.push_back(s[b * kKdeStatCount + kKdeHz]);
    out.h_xz.push_back(s[b * kKdeStatCount + kKdeHxz]);
  }
  out.mean_mi = mean.item();
  return out;
}

KdeMiStats kde_mi_stats(const Tensor& x_rates, const Tensor& z_rates, const KdeMiOptions& opt) {
  const KdeMiParams p = checked_params(x_rates, z_rates, opt, "kde_mi_stats");
  Tensor stats;
  Tensor y = kde_forward(x_rates, z_rates, p, stats);
  return mi_stats_from_kernel(stats, y, p.B);
}

Tensor softmax_entropy(Tape& tape, const Tensor& logits) {
  check_float(logits, "softmax_entropy", "logits");
  SG_CHECK(logits.ndim() == 2 && logits.size(1) >= 1,
           "softmax_entropy: logits must be (N,K) with K >= 1, got " << shape_str(logits.shape()));
  const int64_t N = logits.size(0), K = logits.size(1);
  Tensor h = Tensor::empty({N}, logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({N}, logits.dtype(), logits.device());
  on_device(
      logits, "softmax_entropy",
      [&] { softmax_entropy_forward_cuda(logits.data<float>(), h.data<float>(), lse.data<float>(), N, K); },
      [&](auto zero) {
        using T_ = decltype(zero);
        softmax_entropy_forward_cpu<T_>(logits.data<T_>(), h.data<T_>(), lse.data<T_>(), N, K);
      });
  if (Tape::should_record({logits})) {
    tape.record("softmax_entropy", {logits}, {h},
                [logits, h, lse, N, K](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                  if (!gx[0]) return;
                  on_device(
                      logits, "softmax_entropy backward",
                      [&] {
                        softmax_entropy_backward_cuda(logits.data<float>(), h.data<float>(), lse.data<float>(),
                                                      gy[0].data<float>(), gx[0]->data<float>(), N, K);
                      },
                      [&](auto zero) {
                        using T_ = decltype(zero);
                        softmax_entropy_backward_cpu<T_>(logits.data<T_>(), h.data<T_>(), lse.data<T_>(),
                                                         gy[0].data<T_>(), gx[0]->data<T_>(), N, K);
                      });
                });
  }
  return h;
}

}  // namespace spikegrad::ops
