// Glue for conv2d (kernels/conv2d.h): validation, device dispatch, one tape node.
#include <atomic>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_igemm.h"
#include "kernels/spike_pack.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::check_shape;
using detail::dispatch_float;

namespace {
// Read on every CUDA conv call, written rarely (start-up): atomics keep a concurrent set well defined.
std::atomic<int> g_backend{int(ConvBackend::cudnn)};
std::atomic<bool> g_tf32{false};

ConvMath conv_math() { return g_tf32.load() ? ConvMath::tf32 : ConvMath::fp32; }
bool use_ours() { return g_backend.load() == int(ConvBackend::ours); }

Conv2dShape validated_shape(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opt) {
  check_float(x, "conv2d", "x");
  check_like(w, x, "conv2d", "w", "x");
  SG_CHECK(x.ndim() == 4, "conv2d: x must be 4-D (N,C,H,W), got shape " << shape_str(x.shape()));
  SG_CHECK(w.ndim() == 4, "conv2d: w must be 4-D (K,C,R,S), got shape " << shape_str(w.shape()));
  SG_CHECK(x.numel() > 0, "conv2d: x must not be empty, got shape " << shape_str(x.shape()));
  SG_CHECK(w.numel() > 0, "conv2d: w must not be empty, got shape " << shape_str(w.shape()));
  SG_CHECK(w.size(1) == x.size(1), "conv2d: w must have C=" << x.size(1) << " input channels to match x "
                                                             << shape_str(x.shape()) << ", got w " << shape_str(w.shape()));
  SG_CHECK(opt.stride >= 1, "conv2d: stride must be >= 1, got " << opt.stride);
  SG_CHECK(opt.padding >= 0, "conv2d: padding must be >= 0, got " << opt.padding);
  SG_CHECK(opt.input_levels >= 0 && opt.input_levels <= 128 && (opt.input_levels & (opt.input_levels - 1)) == 0,
           "conv2d: input_levels must be 0 (off) or a power of two in [1,128], got " << opt.input_levels);
  const Conv2dShape s = make_conv2d_shape(x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3),
                                          opt.stride, opt.padding);
  SG_CHECK(s.P >= 1 && s.Q >= 1, "conv2d: a " << s.R << "x" << s.S << " kernel does not fit the " << s.H << "x" << s.W
                                              << " input with padding " << s.pad);
  if (b.defined()) {
    check_like(b, x, "conv2d", "b", "x");
    check_shape(b, {s.K}, "conv2d", "b");
  }
  return s;
}
}  // namespace

void set_conv_settings(const ConvSettings& settings) {
  SG_CHECK(!settings.tf32 || settings.backend == ConvBackend::ours,
           "conv settings: tf32 needs the hand-written backend (--conv ours); the cuDNN path is fp32 only");
  g_backend = int(settings.backend);
  g_tf32 = settings.tf32;
}

ConvSettings conv_settings() { return {ConvBackend(g_backend.load()), g_tf32.load()}; }

Tensor conv2d(Tape& tape, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dOptions opt) {
  const Conv2dShape s = validated_shape(x, w, b, opt);
  const bool has_bias = b.defined();
  Tensor y = Tensor::empty({s.N, s.K, s.P, s.Q}, x.dtype(), x.device());
  if (x.is_cuda()) {
    const float* bias = has_bias ? b.data<float>() : nullptr;
    if (use_ours())
      SG_CUDA_CALL("conv2d", conv2d_igemm_forward_cuda<float>(x.data<float>(), 1.f, w.data<float>(), bias,
                                                              y.data<float>(), s, conv_math()));
    else
      SG_CUDA_CALL("conv2d", conv2d_forward_cuda(x.data<float>(), w.data<float>(), bias, y.data<float>(), s));
  } else {
    dispatch_float(x.dtype(), "conv2d", [&](auto z) {
      using T = decltype(z);
      conv2d_forward_cpu<T>(x.data<T>(), w.data<T>(), has_bias ? b.data<T>() : nullptr, y.data<T>(), s);
    });
  }

  std::vector<Tensor> inputs{x, w};
  if (has_bias) inputs.push_back(b);
  if (!Tape::should_record(inputs)) return y;

  // Backward needs x (for dw) and w (for dx); the bias gradient needs only gy. With input_levels, x is
  // kept as bytes, and only when dw can be wanted at all (x itself is then not held by this node).
  const int levels = opt.input_levels;
  const bool pack = levels > 0 && w.requires_grad();
  Tensor x_saved = pack ? Tensor() : x;
  Tensor x_levels;
  if (pack) {
    x_levels = Tensor::empty(x.shape(), DType::U8, x.device());
    if (x.is_cuda()) {
      SG_CUDA_CALL("conv2d", pack_levels_cuda(x.data<float>(), x_levels.data<uint8_t>(), x.numel(), levels));
    } else {
      dispatch_float(x.dtype(), "conv2d", [&](auto z) {
        using T = decltype(z);
        const int64_t bad = pack_levels_cpu<T>(x.data<T>(), x_levels.data<uint8_t>(), x.numel(), levels);
        SG_CHECK(bad < 0, "conv2d: input_levels = " << levels << " promises x holds multiples of 1/" << levels
                                                    << " in [0," << 255.0 / levels << "], but x[" << bad
                                                    << "] = " << double(x.data<T>()[bad]));
      });
    }
  }
  tape.record("conv2d", inputs, {y},
              [x_saved, x_levels, levels, w, has_bias, s](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                Tensor* dx = gx[0];
                Tensor* dw = gx[1];
                Tensor* db = has_bias ? gx[2] : nullptr;
                if (!dx && !dw && !db) return;
                const Tensor& ref = x_levels.defined() ? w : x_saved;  // device and dtype of the computation
                if (ref.is_cuda() && use_ours()) {
                  const ConvMath math = conv_math();
                  if (dx)
                    SG_CUDA_CALL("conv2d backward", conv2d_igemm_backward_data_cuda(w.data<float>(), gy[0].data<float>(),
                                                                                    dx->data<float>(), s, math));
                  if (!dw && !db) return;
                  float* dw_p = dw ? dw->data<float>() : nullptr;
                  float* db_p = db ? db->data<float>() : nullptr;
                  if (x_levels.defined())  // the bytes are read directly: no float copy of the input
                    SG_CUDA_CALL("conv2d backward", conv2d_igemm_backward_weight_cuda<uint8_t>(
                                                        x_levels.data<uint8_t>(), 1.f / float(levels),
                                                        gy[0].data<float>(), dw_p, db_p, s, math));
                  else
                    SG_CUDA_CALL("conv2d backward",
                                 conv2d_igemm_backward_weight_cuda<float>(x_saved.data<float>(), 1.f, gy[0].data<float>(),
                                                                          dw_p, db_p, s, math));
                  return;
                }
                if (ref.is_cuda()) {
                  Tensor x_float = x_saved;
                  if (x_levels.defined() && dw) {  // cuDNN reads float: a transient copy, freed after this node
                    x_float = Tensor::empty(x_levels.shape(), DType::F32, Device::CUDA);
                    SG_CUDA_CALL("conv2d backward", unpack_levels_cuda(x_levels.data<uint8_t>(), x_float.data<float>(),
                                                                       x_levels.numel(), levels));
                  }
                  SG_CUDA_CALL("conv2d backward",
                               conv2d_backward_cuda(x_float.defined() ? x_float.data<float>() : nullptr, w.data<float>(),
                                                    gy[0].data<float>(), dx ? dx->data<float>() : nullptr,
                                                    dw ? dw->data<float>() : nullptr, db ? db->data<float>() : nullptr, s));
                  return;
                }
                dispatch_float(ref.dtype(), "conv2d backward", [&](auto z) {
                  using T = decltype(z);
                  T* dx_p = dx ? dx->data<T>() : nullptr;
                  T* dw_p = dw ? dw->data<T>() : nullptr;
                  T* db_p = db ? db->data<T>() : nullptr;
                  if (x_levels.defined())
                    conv2d_backward_packed_cpu<T>(x_levels.data<uint8_t>(), levels, w.data<T>(), gy[0].data<T>(), dx_p,
                                                  dw_p, db_p, s);
                  else
                    conv2d_backward_cpu<T>(x_saved.data<T>(), w.data<T>(), gy[0].data<T>(), dx_p, dw_p, db_p, s);
                });
              });
  return y;
}

}  // namespace spikegrad::ops
