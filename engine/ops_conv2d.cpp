// Glue for conv2d (kernels/conv2d.h, kernels/conv2d_igemm.h, kernels/conv2d_sparse.h): validation, device dispatch
// (on CUDA, cuDNN or the implicit GEMM, each given the scratch its query asks for from the caching allocator; on
// the CPU, the dense path or the zero-skipping one for sparse inputs), one tape node.
#include <atomic>
#include <type_traits>

#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_igemm.h"
#include "kernels/conv2d_sparse.h"
#include "kernels/spike_pack.h"

namespace spikegrad::ops {

using detail::check_float;
using detail::check_like;
using detail::check_shape;
using detail::cuda_scratch;
using detail::CudaScratch;
using detail::on_device;

namespace {
// Read on every CUDA conv call, written rarely (start-up): atomics keep a concurrent set well defined.
std::atomic<int> g_backend{int(ConvBackend::cudnn)};
std::atomic<bool> g_tf32{false};
std::atomic<bool> g_cpu_sparse{true};

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

// ---- CUDA passes ---------------------------------------------------------------------------------
// inline, like the lambdas of SG_CUDA_CALL: emitted only where called (from on_device's CUDA branch), so
// a build without CUDA never references the launchers.

inline void forward_cuda(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dShape& s) {
  const float* bias = b.defined() ? b.data<float>() : nullptr;
  if (use_ours()) {
    const ConvMath math = conv_math();
    const CudaScratch ws = cuda_scratch(conv2d_igemm_forward_workspace_bytes(s, math));
    conv2d_igemm_forward_cuda<float>(x.data<float>(), 1.f, w.data<float>(), bias, y.data<float>(), s, math, ws.ptr,
                                     ws.bytes);
  } else {
    const CudaScratch ws = cuda_scratch(conv2d_forward_cuda_workspace_bytes(s));
    conv2d_forward_cuda(x.data<float>(), w.data<float>(), bias, y.data<float>(), s, ws.ptr, ws.bytes);
  }
}

// What the tape node keeps for backward: w (for dx) and x (for dw) — as given, or as one byte per
// element (input_levels), and then only when dw can be wanted at all.
struct ConvSaved {
  Tensor x;         // undefined when packed
  Tensor x_levels;  // uint8 levels (kernels/spike_pack.h), when packed
  int levels = 0;
  Tensor w;
  Conv2dShape s;
  int64_t x_nonzero = -1;  // x's non-zero count, counted once in the CPU forward (-1: not counted, no sparse pass)
};
// The gradients backward is asked for; null where not wanted.
struct ConvGrads {
  Tensor* dx;
  Tensor* dw;
  Tensor* db;
};
template <class T> T* grad_ptr(Tensor* g) { return g ? g->data<T>() : nullptr; }

// The hand-written implicit GEMM: dx, then dw and db, reading packed bytes directly (no float copy).
inline void backward_ours(const ConvSaved& k, const Tensor& gy, const ConvGrads& g) {
  const ConvMath math = conv_math();
  if (g.dx) {
    const CudaScratch ws = cuda_scratch(conv2d_igemm_backward_data_workspace_bytes(k.s, math));
    conv2d_igemm_backward_data_cuda(k.w.data<float>(), gy.data<float>(), g.dx->data<float>(), k.s, math, ws.ptr,
                                    ws.bytes);
  }
  if (!g.dw && !g.db) return;
  const CudaScratch ws =
      cuda_scratch(conv2d_igemm_backward_weight_workspace_bytes(k.s, math, g.dw != nullptr, g.db != nullptr));
  float* dw = grad_ptr<float>(g.dw);
  float* db = grad_ptr<float>(g.db);
  if (k.x_levels.defined())
    conv2d_igemm_backward_weight_cuda<uint8_t>(k.x_levels.data<uint8_t>(), 1.f / float(k.levels), gy.data<float>(),
                                               dw, db, k.s, math, ws.ptr, ws.bytes);
  else
    conv2d_igemm_backward_weight_cuda<float>(k.x.data<float>(), 1.f, gy.data<float>(), dw, db, k.s, math, ws.ptr,
                                             ws.bytes);
}

// cuDNN: all three gradients in one call; it reads float x, so packed bytes are unpacked first.
inline void backward_cudnn(const ConvSaved& k, const Tensor& gy, const ConvGrads& g) {
  Tensor x_float = k.x;
  if (k.x_levels.defined() && g.dw) {  // a transient copy, freed after this node
    x_float = Tensor::empty(k.x_levels.shape(), DType::F32, Device::CUDA);
    unpack_levels_cuda(k.x_levels.data<uint8_t>(), x_float.data<float>(), k.x_levels.numel(), k.levels);
  }
  const CudaScratch ws = cuda_scratch(conv2d_backward_cuda_workspace_bytes(k.s, g.dx != nullptr, g.dw != nullptr));
  conv2d_backward_cuda(x_float.defined() ? x_float.data<float>() : nullptr, k.w.data<float>(), gy.data<float>(),
                       grad_ptr<float>(g.dx), grad_ptr<float>(g.dw), grad_ptr<float>(g.db), k.s, ws.ptr, ws.bytes);
}

// ---- CPU -------------------------------------------------------------------------------------------
// The zero-skipping kernels (kernels/conv2d_sparse.h) take a float pass when the setting allows it, the shape is
// one they measured faster on, and x is sparse enough. x's non-zeros are counted on every forward — so a layer
// whose firing rate drifts above the threshold during training moves back to the dense path by itself — once for
// both passes (the backward reuses the forward's count), and only when one of the passes could use it.
template <class T> int64_t count_for_sparse(const T* x, const Conv2dShape& s, bool weight_grad_wanted) {
  if constexpr (std::is_same_v<T, float>) {
    if (g_cpu_sparse.load() &&
        (conv2d_sparse_forward_shape(s) || (weight_grad_wanted && conv2d_sparse_backward_weight_shape(s))))
      return count_nonzero_cpu(x, s.N * s.C * s.H * s.W);
  }
  return -1;
}
bool sparse_pays(bool shape_ok, int64_t x_nonzero, const Conv2dShape& s) {
  return g_cpu_sparse.load() && shape_ok && x_nonzero >= 0 && conv2d_sparse_pays(s, x_nonzero);
}

template <class T>
void forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s, int64_t x_nonzero) {
  if constexpr (std::is_same_v<T, float>) {
    if (sparse_pays(conv2d_sparse_forward_shape(s), x_nonzero, s)) return conv2d_forward_sparse_cpu(x, w, b, y, s);
  }
  conv2d_forward_cpu<T>(x, w, b, y, s);
}

template <class T>
void backward_cpu(const ConvSaved& k, const Tensor& gy, const ConvGrads& g) {
  T* dx = grad_ptr<T>(g.dx);
  T* dw = grad_ptr<T>(g.dw);
  T* db = grad_ptr<T>(g.db);
  if constexpr (std::is_same_v<T, float>) {
    if (sparse_pays(dw && conv2d_sparse_backward_weight_shape(k.s), k.x_nonzero, k.s)) {
      if (k.x_levels.defined())
        conv2d_backward_weight_sparse_packed_cpu(k.x_levels.data<uint8_t>(), k.levels, gy.data<T>(), dw, db, k.s);
      else
        conv2d_backward_weight_sparse_cpu(k.x.data<T>(), gy.data<T>(), dw, db, k.s);
      if (!dx) return;
      dw = db = nullptr;  // the input gradient alone, on the dense path
    }
  }
  if (k.x_levels.defined())
    conv2d_backward_packed_cpu<T>(k.x_levels.data<uint8_t>(), k.levels, k.w.data<T>(), gy.data<T>(), dx, dw, db, k.s);
  else
    conv2d_backward_cpu<T>(k.x.data<T>(), k.w.data<T>(), gy.data<T>(), dx, dw, db, k.s);
}

// x as one byte per element: the promise of input_levels is checked on the CPU (failing with the first
// element that breaks it) and trusted on CUDA (rounded to the nearest level; see Conv2dOptions).
Tensor pack_input(const Tensor& x, int levels) {
  Tensor x_levels = Tensor::empty(x.shape(), DType::U8, x.device());
  on_device(
      x, "conv2d", [&] { pack_levels_cuda(x.data<float>(), x_levels.data<uint8_t>(), x.numel(), levels); },
      [&](auto z) {
        using T = decltype(z);
        const int64_t bad = pack_levels_cpu<T>(x.data<T>(), x_levels.data<uint8_t>(), x.numel(), levels);
        SG_CHECK(bad < 0, "conv2d: input_levels = " << levels << " promises x holds multiples of 1/" << levels
                                                    << " in [0," << 255.0 / levels << "], but x[" << bad
                                                    << "] = " << double(x.data<T>()[bad]));
      });
  return x_levels;
}

// gy has y's device and dtype, which are x's.
void conv2d_backward(const ConvSaved& k, const Tensor& gy, const ConvGrads& g) {
  on_device(
      gy, "conv2d backward",
      [&] {
        if (use_ours())
          backward_ours(k, gy, g);
        else
          backward_cudnn(k, gy, g);
      },
      [&](auto z) { backward_cpu<decltype(z)>(k, gy, g); });
}

}  // namespace

void set_conv_settings(const ConvSettings& settings) {
  SG_CHECK(!settings.tf32 || settings.backend == ConvBackend::ours,
           "conv settings: tf32 needs the hand-written backend (--conv ours); the cuDNN path is fp32 only");
  g_backend = int(settings.backend);
  g_tf32 = settings.tf32;
  g_cpu_sparse = settings.cpu_sparse;
}

ConvSettings conv_settings() { return {ConvBackend(g_backend.load()), g_tf32.load(), g_cpu_sparse.load()}; }

Tensor conv2d(Tape& tape, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dOptions opt) {
  const Conv2dShape s = validated_shape(x, w, b, opt);
  const bool has_bias = b.defined();
  Tensor y = Tensor::empty({s.N, s.K, s.P, s.Q}, x.dtype(), x.device());
  std::vector<Tensor> inputs{x, w};
  if (has_bias) inputs.push_back(b);
  const bool record = Tape::should_record(inputs);
  ConvSaved saved;
  on_device(
      x, "conv2d", [&] { forward_cuda(x, w, b, y, s); },
      [&](auto z) {
        using T = decltype(z);
        saved.x_nonzero = count_for_sparse(x.data<T>(), s, record && w.requires_grad());
        forward_cpu<T>(x.data<T>(), w.data<T>(), has_bias ? b.data<T>() : nullptr, y.data<T>(), s, saved.x_nonzero);
      });
  if (!record) return y;

  // With input_levels, x is kept as bytes, and only when dw can be wanted at all (x itself is then not
  // held by this node).
  saved.levels = opt.input_levels;
  const bool pack = saved.levels > 0 && w.requires_grad();
  if (pack)
    saved.x_levels = pack_input(x, saved.levels);
  else
    saved.x = x;
  saved.w = w;
  saved.s = s;
  tape.record("conv2d", inputs, {y},
              [saved, has_bias](const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx) {
                const ConvGrads g{gx[0], gx[1], has_bias ? gx[2] : nullptr};
                if (!g.dx && !g.dw && !g.db) return;
                conv2d_backward(saved, gy[0], g);
              });
  return y;
}

}  // namespace spikegrad::ops
