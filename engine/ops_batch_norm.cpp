// Glue for batch_norm (kernels/batch_norm.h), and the fused BN + LIF/IF op over the generic fused glue
// (engine/ops_neuron_fused.h). Both go through bn_detail::forward/backward, which also run synchronised batch
// norm (BatchNormOptions::cross_replica): the kernels' stage functions with the hook's all-reduce between.
#include <algorithm>
#include <vector>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "engine/ops_neuron_fused.h"
#include "kernels/batch_norm.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::check_shape;
using detail::on_device;

namespace {
// The (N,C,S) view of x (S = H·W, or 1 for 2-D input).
struct ChannelLayout {
  int64_t N, C, S;
};

ChannelLayout validate(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, const BatchNormOptions& opt) {
  check_float(x, "batch_norm", "x");
  SG_CHECK(x.ndim() == 2 || x.ndim() == 4,
           "batch_norm: x must be (N,C) or (N,C,H,W), got " << shape_str(x.shape()));
  SG_CHECK(weight.defined(), "batch_norm: weight is undefined, but batch_norm is affine and needs weight and bias (C)");
  SG_CHECK(bias.defined(), "batch_norm: bias is undefined, but batch_norm is affine and needs weight and bias (C)");
  const ChannelLayout d{x.size(0), x.size(1), x.ndim() == 4 ? x.size(2) * x.size(3) : 1};
  const Tensor* per_channel[] = {&weight, &bias, &running_mean, &running_var};
  const char* names[] = {"weight", "bias", "running_mean", "running_var"};
  for (int k = 0; k < 4; ++k) {
    check_like(*per_channel[k], x, "batch_norm", names[k], "x");
    check_shape(*per_channel[k], {d.C}, "batch_norm", names[k]);
  }
  SG_CHECK(!running_mean.requires_grad() && !running_var.requires_grad(),
           "batch_norm: running_mean and running_var are buffers updated in place and must not require grad");
  SG_CHECK(opt.eps > 0, "batch_norm: eps must be > 0, got " << opt.eps);
  SG_CHECK(opt.momentum >= 0 && opt.momentum <= 1, "batch_norm: momentum must be in [0,1], got " << opt.momentum);
  // The unbiased running variance divides by M-1, as PyTorch ("Expected more than 1 value per channel").
  SG_CHECK(!opt.training || d.N * d.S > 1, "batch_norm: training needs more than 1 value per channel, got x of shape "
                                               << shape_str(x.shape()));
  return d;
}
}  // namespace

namespace bn_detail {
namespace {
// The CUDA reductions' block partials: batch_norm_cuda_scratch_size doubles of detail::cuda_scratch (the op
// glue's one scratch allocation, released in stream order once the launches that use it are queued). Built
// only inside the CUDA branch of on_device.
struct PartialsScratch {
  int64_t size;
  detail::CudaScratch memory;
  PartialsScratch(int64_t N, int64_t C, int64_t S)
      : size(batch_norm_cuda_scratch_size(N, C, S)), memory(detail::cuda_scratch(size_t(size) * sizeof(double))) {}
  double* data() const { return static_cast<double*>(memory.ptr); }
};

// The synchronised training statistics (engine/batch_norm_options.h has the contract): this replica's
// count and per-channel sums, all-reduced between the passes. Returns the count over all replicas.
int64_t synced_statistics(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                          const BatchNormOptions& bn, int64_t N, int64_t C, int64_t S, const Tensor& mean,
                          const Tensor& invstd, const char* op) {
  const CrossReplicaSum& replicas = *bn.cross_replica;
  double count = double(N * S);  // exact: counts stay far below 2^53
  replicas.sum(&count, 1);
  const int64_t M = int64_t(count);
  SG_CHECK(M > 1, op << ": synchronised training needs more than 1 value per channel over all replicas, got " << M);
  on_device(
      x, op,
      [&] {
        // Σx then Σ(x − mean)², C doubles each; the first half becomes the means in place.
        Tensor stats = Tensor::empty({2 * C}, DType::F64, Device::CUDA);
        double* sums = stats.data<double>();
        double* squares = sums + C;
        const PartialsScratch scratch(N, C, S);
        batch_norm_channel_sums_cuda(x.data<float>(), N, C, S, sums, scratch.data(), scratch.size);
        replicas.sum_device(sums, C);
        batch_norm_finish_mean_cuda(sums, C, M, mean.data<float>());
        batch_norm_channel_squares_cuda(x.data<float>(), N, C, S, sums, squares, scratch.data(), scratch.size);
        replicas.sum_device(squares, C);
        batch_norm_finish_stats_cuda(squares, C, M, float(bn.momentum), float(bn.eps), mean.data<float>(),
                                     running_mean.data<float>(), running_var.data<float>(), invstd.data<float>());
      },
      [&](auto z) {
        using T = decltype(z);
        std::vector<double> mean_d(static_cast<size_t>(C)), squares(static_cast<size_t>(C));
        batch_norm_channel_sums_cpu<T>(x.data<T>(), N, C, S, mean_d.data());
        replicas.sum(mean_d.data(), C);
        for (double& m : mean_d) m = bn_mean(m, M);
        batch_norm_channel_squares_cpu<T>(x.data<T>(), N, C, S, mean_d.data(), squares.data());
        replicas.sum(squares.data(), C);
        batch_norm_finish_stats_cpu<T>(mean_d.data(), squares.data(), C, M, bn.momentum, bn.eps, running_mean.data<T>(),
                                       running_var.data<T>(), mean.data<T>(), invstd.data<T>());
      });
  return M;
}
}  // namespace

int64_t forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                const Tensor& running_var, const BatchNormOptions& bn, int64_t N, int64_t C, int64_t S, const Tensor& y,
                const Tensor& mean, const Tensor& invstd, const char* op) {
  if (bn.training && bn.cross_replica) {
    const int64_t M = synced_statistics(x, running_mean, running_var, bn, N, C, S, mean, invstd, op);
    if (y.defined())
      on_device(
          x, op,
          [&] {
            batch_norm_apply_cuda(x.data<float>(), weight.data<float>(), bias.data<float>(), mean.data<float>(),
                                  invstd.data<float>(), N, C, S, y.data<float>());
          },
          [&](auto z) {
            using T = decltype(z);
            batch_norm_apply_cpu<T>(x.data<T>(), weight.data<T>(), bias.data<T>(), mean.data<T>(), invstd.data<T>(), N,
                                    C, S, y.data<T>());
          });
    return M;
  }
  on_device(
      x, op,
      [&] {
        const PartialsScratch scratch(N, C, S);
        batch_norm_forward_cuda(x.data<float>(), weight.data<float>(), bias.data<float>(), running_mean.data<float>(),
                                running_var.data<float>(), N, C, S, bn.training, float(bn.momentum), float(bn.eps),
                                y.defined() ? y.data<float>() : nullptr, mean.data<float>(), invstd.data<float>(),
                                scratch.data(), scratch.size);
      },
      [&](auto z) {
        using T = decltype(z);
        batch_norm_forward_cpu<T>(x.data<T>(), weight.data<T>(), bias.data<T>(), running_mean.data<T>(),
                                  running_var.data<T>(), N, C, S, bn.training, bn.momentum, bn.eps,
                                  y.defined() ? y.data<T>() : nullptr, mean.data<T>(), invstd.data<T>());
      });
  return N * S;
}

void backward(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& invstd, const Tensor& gy,
              int64_t N, int64_t C, int64_t S, bool training, int64_t M, const CrossReplicaSum* cross_replica,
              Tensor* gx, Tensor* gweight, Tensor* gbias, const char* op) {
  // Only a synchronised training dx needs the other replicas' sums; the parameter gradients alone, or eval
  // mode, are this replica's business.
  const bool synced = training && cross_replica && gx;
  auto ptr = [](Tensor* t, auto z) { return t ? t->data<decltype(z)>() : nullptr; };
  on_device(
      x, op,
      [&] {
        const PartialsScratch scratch(N, C, S);
        if (!synced) {
          // Σdy and Σdy·xhat per channel, passed from the reduction to the dx kernel.
          Tensor channel_sums = Tensor::empty({2, C}, DType::F32, Device::CUDA);
          batch_norm_backward_cuda(x.data<float>(), weight.data<float>(), mean.data<float>(), invstd.data<float>(),
                                   gy.data<float>(), N, C, S, training, channel_sums.data<float>(), ptr(gx, 0.f),
                                   ptr(gweight, 0.f), ptr(gbias, 0.f), scratch.data(), scratch.size);
          return;
        }
        Tensor sums = Tensor::empty({2, C}, DType::F64, Device::CUDA);
        batch_norm_backward_sums_cuda(x.data<float>(), mean.data<float>(), invstd.data<float>(), gy.data<float>(), N, C,
                                      S, sums.data<double>(), ptr(gweight, 0.f), ptr(gbias, 0.f), scratch.data(),
                                      scratch.size);
        cross_replica->sum_device(sums.data<double>(), 2 * C);
        batch_norm_input_grad_cuda(x.data<float>(), weight.data<float>(), mean.data<float>(), invstd.data<float>(),
                                   gy.data<float>(), sums.data<double>(), N, C, S, M, gx->data<float>());
      },
      [&](auto z) {
        using T = decltype(z);
        if (!synced) {
          batch_norm_backward_cpu<T>(x.data<T>(), weight.data<T>(), mean.data<T>(), invstd.data<T>(), gy.data<T>(), N,
                                     C, S, training, ptr(gx, z), ptr(gweight, z), ptr(gbias, z));
          return;
        }
        std::vector<double> sums(static_cast<size_t>(2 * C));
        batch_norm_backward_sums_cpu<T>(x.data<T>(), mean.data<T>(), invstd.data<T>(), gy.data<T>(), N, C, S,
                                        sums.data(), ptr(gweight, z), ptr(gbias, z));
        cross_replica->sum(sums.data(), 2 * C);
        batch_norm_input_grad_cpu<T>(x.data<T>(), weight.data<T>(), mean.data<T>(), invstd.data<T>(), gy.data<T>(),
                                     sums.data(), N, C, S, M, gx->data<T>());
      });
}
}  // namespace bn_detail

Tensor batch_norm(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormOptions opt) {
  const char* op = "batch_norm";
  const ChannelLayout d = validate(x, weight, bias, running_mean, running_var, opt);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor save_mean = Tensor::empty({d.C}, x.dtype(), x.device());
  Tensor save_invstd = Tensor::empty({d.C}, x.dtype(), x.device());
  const int64_t M =
      bn_detail::forward(x, weight, bias, running_mean, running_var, opt, d.N, d.C, d.S, y, save_mean, save_invstd, op);
  if (Tape::should_record({x, weight, bias})) {
    tape.record(op, {x, weight, bias}, {y},
                [x, weight, save_mean, save_invstd, d, M, training = opt.training, cross_replica = opt.cross_replica](
                    const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                  bn_detail::backward(x, weight, save_mean, save_invstd, gy[0], d.N, d.C, d.S, training, M,
                                      cross_replica, gx[0], gx[1], gx[2], "batch_norm backward");
                });
  }
  return y;
}

}  // namespace spikegrad::ops

// ---- fused BN + neuron (engine/ops_neuron_fused.h) ----------------------------------------------------------
namespace spikegrad::ops {

namespace neuron_detail {
BnLayout check_batch_norm_spike(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                                const Tensor& running_var, const BatchNormOptions& bn, int64_t time_steps,
                                const char* op) {
  const ChannelLayout d = validate(x, weight, bias, running_mean, running_var, bn);
  SG_CHECK(time_steps >= 1 && d.N % time_steps == 0,
           op << ": time_steps must be >= 1 and divide x.size(0) = T·B = " << d.N << ", got " << time_steps);
  return {d.N, d.C, d.S};
}
}  // namespace neuron_detail

// The built-in LIF/IF through the generic fused glue: the same code every registered neuron's fused layer runs.
Tensor batch_norm_spike(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, const BatchNormOptions& bn,
                        int64_t time_steps, const SpikeOptions& opt) {
  const char* op = "batch_norm_spike";
  const neuron_detail::BnLayout d =
      neuron_detail::check_batch_norm_spike(x, weight, bias, running_mean, running_var, bn, time_steps, op);
  const neuron_detail::LifSetup l = neuron_detail::lif_setup(opt);
  return neuron_detail::run_bn_neuron(tape, d, x, weight, bias, running_mean, running_var, bn, time_steps, l.neuron,
                                      l.firing, opt, l.rga_tau, Tensor(), op);
}

}  // namespace spikegrad::ops
