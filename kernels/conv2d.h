// 2-D convolution (cross-correlation, as PyTorch), NCHW activations and OIHW weights.
//
// Shapes: x (N,C,H,W), w (K,C,R,S), b (K) or none, y (N,K,P,Q) with
//         P = (H + 2·pad - R) / stride + 1,  Q = (W + 2·pad - S) / stride + 1 (floor division).
// Math:   y[n,k,p,q] = b[k] + Σ_{c,r,s} w[k,c,r,s] · x[n,c, p·stride - pad + r, q·stride - pad + s]
//         with x = 0 outside the image (zero padding).
// Backward (accumulating, +=; each gradient only when its pointer is non-null):
//         dx[n,c,h,w] += Σ_{k,r,s : h = p·stride-pad+r, w = q·stride-pad+s} w[k,c,r,s] · gy[n,k,p,q]
//         dw[k,c,r,s] += Σ_{n,p,q} gy[n,k,p,q] · x[n,c, p·stride-pad+r, q·stride-pad+s]
//         db[k]       += Σ_{n,p,q} gy[n,k,p,q]
// Saved for backward: x and w (the op's inputs; nothing extra).
// FLOPs: forward 2·N·K·C·R·S·P·Q (one multiply-add per weight tap per output); backward data and
//        backward weight the same each.
//
// Two CPU implementations:
//   - `*_naive_cpu`: the loops above, written to be read; the reference every other path is tested
//     against.
//   - `*_cpu`: what the op uses. Per image, im2col turns the receptive fields into a (C·R·S, P·Q)
//     matrix, so forward is one GEMM  Y_n(K,PQ) = W(K,CRS) · col_n(CRS,PQ);  backward data is
//     col_grad = Wᵀ·GY_n followed by col2im (a scatter-add back to the image); backward weight is
//     dW += GY_n · col_nᵀ. Images are processed in parallel (OpenMP) with per-thread column buffers;
//     dW is summed into per-thread partials that are reduced in a fixed order (deterministic for a
//     given thread count).
//   - float `*_cpu` built with oneDNN (SPIKEGRAD_WITH_ONEDNN): oneDNN's direct convolution for the passes
//     where it measured faster (kernels/conv2d_onednn.h, conv2d_cpu.cpp); `*_im2col_cpu` is always the
//     im2col + Eigen path (the double path, and the baseline the benchmark and tests compare oneDNN with).
// CUDA: cuDNN, float32 with FMA-only math (no TF32), deterministic algorithms (see conv2d.cu).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

struct Conv2dShape {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // filters
  int64_t P = 0, Q = 0;                // output spatial size
  int64_t stride = 1, pad = 0;
};

// Output extent along one axis; <= 0 when the (padded) input is smaller than the kernel.
inline int64_t conv2d_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  const int64_t span = in + 2 * pad - kernel;
  return span < 0 ? 0 : span / stride + 1;
}
inline Conv2dShape make_conv2d_shape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                                     int64_t stride, int64_t pad) {
  return Conv2dShape{N, C, H, W, K, R, S, conv2d_out_size(H, R, stride, pad), conv2d_out_size(W, S, stride, pad), stride,
                     pad};
}
inline double conv2d_flops(const Conv2dShape& s) {
  return 2.0 * double(s.N) * double(s.K) * double(s.C) * double(s.R) * double(s.S) * double(s.P) * double(s.Q);
}

// Plain loops (reference). b / gx / gw / gb may be null.
template <class T> void conv2d_forward_naive_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s);
template <class T>
void conv2d_backward_naive_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s);

// The op's CPU path: im2col + Eigen GEMM, OpenMP over the batch; float passes on oneDNN where the build has
// it and it is the faster (see above). b / gx / gw / gb may be null.
template <class T> void conv2d_forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s);
template <class T>
void conv2d_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s);

// Always im2col + Eigen, whatever the build (see above). b / gx / gw / gb may be null.
template <class T> void conv2d_forward_im2col_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s);
template <class T>
void conv2d_backward_im2col_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s);
template <class T>
void conv2d_backward_packed_im2col_cpu(const uint8_t* x_levels, int levels, const T* w, const T* gy, T* gx, T* gw,
                                       T* gb, const Conv2dShape& s);

// The same backward with x given as levels (kernels/spike_pack.h): x = x_levels / levels, one byte per
// element (conv2d's saved input when Conv2dOptions::input_levels is set). Each image is unpacked into a
// per-thread buffer just before its GEMMs; results equal conv2d_backward_cpu on the unpacked x exactly.
template <class T>
void conv2d_backward_packed_cpu(const uint8_t* x_levels, int levels, const T* w, const T* gy, T* gx, T* gw, T* gb,
                                const Conv2dShape& s);

// Building blocks of the fast path, exposed so tests can check them on their own.
// im2col: one image x_n (C,H,W) -> col (C·R·S, P·Q), row (c,r,s), column (p,q); zeros where padded.
template <class T> void im2col_cpu(const T* image, T* col, const Conv2dShape& s);
// col2im: the adjoint of im2col; ADDS col (C·R·S, P·Q) into image (C,H,W).
template <class T> void col2im_add_cpu(const T* col, T* image, const Conv2dShape& s);

// CUDA (cuDNN), float32. b / gx / gw / gb may be null; backward accumulates (beta = 1).
// Scratch is the caller's: `workspace` is device memory of workspace_bytes >= the *_workspace_bytes query for
// the same shape (and, in backward, the same wanted gradients), null when that is 0; in use until the
// launches have run (stream order: a caching allocator may release it right after the call).
void conv2d_forward_cuda(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                         void* workspace, size_t workspace_bytes);
size_t conv2d_forward_cuda_workspace_bytes(const Conv2dShape& s);
void conv2d_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          const Conv2dShape& s, void* workspace, size_t workspace_bytes);
size_t conv2d_backward_cuda_workspace_bytes(const Conv2dShape& s, bool want_gx, bool want_gw);

}  // namespace spikegrad
