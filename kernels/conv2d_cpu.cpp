// CPU conv2d: the plain-loop reference, the im2col + Eigen GEMM path, and the per-pass choice between it and
// oneDNN for float (see kernels/conv2d.h).
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/spike_pack.h"
#ifdef SPIKEGRAD_ONEDNN
#include "engine/allocator.h"
#include "kernels/conv2d_onednn.h"
#endif

namespace spikegrad {

namespace {
template <class T> using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <class T> using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;
template <class T> using ConstVectorMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;

// A 1x1, stride-1, unpadded convolution reads each pixel exactly once in order: im2col would be a
// copy of the image, so the GEMMs use the image directly.
bool is_pointwise(const Conv2dShape& s) { return s.R == 1 && s.S == 1 && s.stride == 1 && s.pad == 0; }
}  // namespace

// ---- plain loops ---------------------------------------------------------------------------------

template <class T> void conv2d_forward_naive_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t p = 0; p < s.P; ++p)
        for (int64_t q = 0; q < s.Q; ++q) {
          T acc = b ? b[k] : T(0);
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t h = p * s.stride - s.pad + r, wi = q * s.stride - s.pad + t;
                if (h < 0 || h >= s.H || wi < 0 || wi >= s.W) continue;  // zero padding
                acc += w[((k * s.C + c) * s.R + r) * s.S + t] * x[((n * s.C + c) * s.H + h) * s.W + wi];
              }
          y[((n * s.K + k) * s.P + p) * s.Q + q] = acc;
        }
}

template <class T>
void conv2d_backward_naive_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t p = 0; p < s.P; ++p)
        for (int64_t q = 0; q < s.Q; ++q) {
          const T g = gy[((n * s.K + k) * s.P + p) * s.Q + q];
          if (gb) gb[k] += g;
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t h = p * s.stride - s.pad + r, wi = q * s.stride - s.pad + t;
                if (h < 0 || h >= s.H || wi < 0 || wi >= s.W) continue;
                const int64_t xi = ((n * s.C + c) * s.H + h) * s.W + wi;
                const int64_t wk = ((k * s.C + c) * s.R + r) * s.S + t;
                if (gx) gx[xi] += w[wk] * g;
                if (gw) gw[wk] += x[xi] * g;
              }
        }
}

// ---- im2col / col2im -----------------------------------------------------------------------------

// The output columns q whose input column q·stride − pad + t lies inside the image: [lo, hi). `left` is
// pad − t, so that input column is q·stride − left.
struct InBoundsColumns {
  int64_t left, lo, hi;
  InBoundsColumns(const Conv2dShape& s, int64_t t) : left(s.pad - t) {
    const int64_t right = s.W + s.pad - t;  // q·stride must be in [left, right)
    lo = std::min(s.Q, left <= 0 ? int64_t(0) : (left + s.stride - 1) / s.stride);
    hi = std::max(lo, std::min(s.Q, right <= 0 ? int64_t(0) : (right + s.stride - 1) / s.stride));
  }
};

template <class T> void im2col_cpu(const T* image, T* col, const Conv2dShape& s) {
  const int64_t PQ = s.P * s.Q;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t t = 0; t < s.S; ++t) {
        T* row = col + ((c * s.R + r) * s.S + t) * PQ;
        const T* channel = image + c * s.H * s.W;
        for (int64_t p = 0; p < s.P; ++p) {
          T* out = row + p * s.Q;
          const int64_t h = p * s.stride - s.pad + r;
          if (h < 0 || h >= s.H) {
            for (int64_t q = 0; q < s.Q; ++q) out[q] = T(0);
            continue;
          }
          // Zeros outside [q_lo, q_hi), and in between a copy (contiguous at stride 1) without a bounds test
          // per element.
          const T* line = channel + h * s.W;
          const InBoundsColumns k(s, t);
          for (int64_t q = 0; q < k.lo; ++q) out[q] = T(0);
          if (s.stride == 1) {
            for (int64_t q = k.lo; q < k.hi; ++q) out[q] = line[q - k.left];
          } else {
            for (int64_t q = k.lo; q < k.hi; ++q) out[q] = line[q * s.stride - k.left];
          }
          for (int64_t q = k.hi; q < s.Q; ++q) out[q] = T(0);
        }
      }
}

template <class T> void col2im_add_cpu(const T* col, T* image, const Conv2dShape& s) {
  const int64_t PQ = s.P * s.Q;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t t = 0; t < s.S; ++t) {
        const T* row = col + ((c * s.R + r) * s.S + t) * PQ;
        T* channel = image + c * s.H * s.W;
        for (int64_t p = 0; p < s.P; ++p) {
          const int64_t h = p * s.stride - s.pad + r;
          if (h < 0 || h >= s.H) continue;  // padding rows receive nothing
          const T* in = row + p * s.Q;
          T* line = channel + h * s.W;
          const InBoundsColumns k(s, t);  // each image element gets at most one add per (r, t): same sums
          if (s.stride == 1) {
            for (int64_t q = k.lo; q < k.hi; ++q) line[q - k.left] += in[q];
          } else {
            for (int64_t q = k.lo; q < k.hi; ++q) line[q * s.stride - k.left] += in[q];
          }
        }
      }
}

// ---- im2col + GEMM -------------------------------------------------------------------------------
// Parallel over images when there are several; with a single image the region runs on one thread
// and Eigen is free to parallelise the GEMM itself (it stays serial inside a multi-thread region).

template <class T> void conv2d_forward_im2col_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
  const int64_t CRS = s.C * s.R * s.S, PQ = s.P * s.Q, image_size = s.C * s.H * s.W;
  const bool pointwise = is_pointwise(s);
  const ConstMatrixMap<T> weights(w, s.K, CRS);
#pragma omp parallel if (s.N > 1)
  {
    std::vector<T> col_buffer(pointwise ? 0 : size_t(CRS * PQ));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const T* image = x + n * image_size;
      const T* col = image;
      if (!pointwise) {
        im2col_cpu(image, col_buffer.data(), s);
        col = col_buffer.data();
      }
      MatrixMap<T> out(y + n * s.K * PQ, s.K, PQ);
      out.noalias() = weights * ConstMatrixMap<T>(col, CRS, PQ);
      if (b) out.colwise() += ConstVectorMap<T>(b, s.K);
    }
  }
}

namespace {
// The backward of both public entry points; XIn is T (x as is) or uint8_t (x as levels, x = q / levels,
// unpacked one image at a time into a per-thread buffer, so the float input never exists whole).
template <class T, class XIn>
void conv2d_backward_impl(const XIn* x, int levels, const T* w, const T* gy, T* gx, T* gw, T* gb,
                          const Conv2dShape& s) {
  constexpr bool packed = !std::is_same_v<T, XIn>;
  const int64_t CRS = s.C * s.R * s.S, PQ = s.P * s.Q, image_size = s.C * s.H * s.W;
  const bool pointwise = is_pointwise(s);
  const ConstMatrixMap<T> weights(w, s.K, CRS);

  if (gx || gw) {
    // dW partial sums, one slab per thread, reduced below in thread order so the result does not
    // depend on which thread finished first. Never more threads than images: each extra slab costs
    // K·C·R·S elements to zero and to reduce.
    const int max_threads = int(std::min<int64_t>(omp_get_max_threads(), s.N));
    std::vector<T> dw_partials(gw ? size_t(max_threads) * size_t(s.K * CRS) : 0, T(0));
#pragma omp parallel if (s.N > 1) num_threads(max_threads)
    {
      const int tid = omp_get_thread_num();
      std::vector<T> col_buffer(pointwise ? 0 : size_t(CRS * PQ));
      std::vector<T> image_buffer(packed && gw ? size_t(image_size) : 0);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < s.N; ++n) {
        const T* image = nullptr;
        if constexpr (packed) {
          if (gw) unpack_levels_cpu<T>(x + n * image_size, image_buffer.data(), image_size, levels);
          image = image_buffer.data();
        } else {
          image = x + n * image_size;
        }
        const ConstMatrixMap<T> gy_matrix(gy + n * s.K * PQ, s.K, PQ);
        if (gw) {
          const T* col = image;
          if (!pointwise) {
            im2col_cpu(image, col_buffer.data(), s);
            col = col_buffer.data();
          }
          MatrixMap<T> dw_local(dw_partials.data() + size_t(tid) * size_t(s.K * CRS), s.K, CRS);
          dw_local.noalias() += gy_matrix * ConstMatrixMap<T>(col, CRS, PQ).transpose();
        }
        if (gx) {
          if (pointwise) {
            MatrixMap<T>(gx + n * image_size, s.C, PQ).noalias() += weights.transpose() * gy_matrix;
          } else {
            MatrixMap<T> col_grad(col_buffer.data(), CRS, PQ);  // the im2col above is no longer needed
            col_grad.noalias() = weights.transpose() * gy_matrix;
            col2im_add_cpu(col_buffer.data(), gx + n * image_size, s);
          }
        }
      }
    }
    if (gw) {
      const int64_t weight_count = s.K * CRS;
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < weight_count; ++i) {
        T acc = T(0);
        for (int t = 0; t < max_threads; ++t) acc += dw_partials[size_t(t) * size_t(weight_count) + size_t(i)];
        gw[i] += acc;
      }
    }
  }

  if (gb) {
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < s.K; ++k) {
      T acc = T(0);
      for (int64_t n = 0; n < s.N; ++n) acc += ConstVectorMap<T>(gy + (n * s.K + k) * PQ, PQ).sum();
      gb[k] += acc;
    }
  }
}

}  // namespace

template <class T>
void conv2d_backward_im2col_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s) {
  conv2d_backward_impl<T, T>(x, 1, w, gy, gx, gw, gb, s);
}

template <class T>
void conv2d_backward_packed_im2col_cpu(const uint8_t* x_levels, int levels, const T* w, const T* gy, T* gx, T* gw,
                                       T* gb, const Conv2dShape& s) {
  conv2d_backward_impl<T, uint8_t>(x_levels, levels, w, gy, gx, gw, gb, s);
}

// ---- the op's path: per pass, oneDNN or im2col + Eigen ----------------------------------------------
#ifdef SPIKEGRAD_ONEDNN
namespace {
// Which float passes run on oneDNN: what bench_conv measured on the zoo's shapes on an idle machine (VGGSNN at
// N = 64, small_cnn at N = 256; docs/perf.md "oneDNN vs im2col + Eigen (issue 19 item 2)"), as Eigen time /
// oneDNN time of interleaved calls. oneDNN's blocked layouts, reorders in and out included, won every pass:
//   forward          1.3–4.9× on every shape;
//   backward data    1.06–5.3× from C = 16 input channels up; 0.12–0.36× at C = 1 and 3 (reorders of a tiny
//                    image dominate; training never asks for those layers' input gradient anyway): Eigen there;
//   backward weight  1.08–2.5× on every shape, from float or from spike bytes (unpacked whole first).
// oneDNN's NCHW path (im2col + its JIT SGEMM) was never the fastest by a margin worth its own case.
constexpr OnednnLayout kLayout = OnednnLayout::blocked;
bool backward_data_on_onednn(const Conv2dShape& s) { return s.C >= 16; }
}  // namespace
#endif

template <class T> void conv2d_forward_cpu(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
#ifdef SPIKEGRAD_ONEDNN
  if constexpr (std::is_same_v<T, float>) return conv2d_forward_onednn(x, w, b, y, s, kLayout);
#endif
  conv2d_forward_im2col_cpu(x, w, b, y, s);
}

template <class T>
void conv2d_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const Conv2dShape& s) {
#ifdef SPIKEGRAD_ONEDNN
  if constexpr (std::is_same_v<T, float>) {
    const bool data_on_onednn = gx && backward_data_on_onednn(s);
    if (data_on_onednn) conv2d_backward_data_onednn(w, gy, gx, s, kLayout);
    if (gw) conv2d_backward_weight_onednn(x, gy, gw, gb, s, kLayout);  // and the bias gradient with it
    T* const gx_left = data_on_onednn ? nullptr : gx;
    T* const gb_left = gw ? nullptr : gb;  // the bias gradient alone is Eigen's sum over gy
    if (gx_left || gb_left) conv2d_backward_im2col_cpu(x, w, gy, gx_left, static_cast<T*>(nullptr), gb_left, s);
    return;
  }
#endif
  conv2d_backward_im2col_cpu(x, w, gy, gx, gw, gb, s);
}

template <class T>
void conv2d_backward_packed_cpu(const uint8_t* x_levels, int levels, const T* w, const T* gy, T* gx, T* gw, T* gb,
                                const Conv2dShape& s) {
#ifdef SPIKEGRAD_ONEDNN
  if constexpr (std::is_same_v<T, float>) {
    // oneDNN reads float x: when dw is wanted the bytes are unpacked whole into a copy that lives for this call
    // (N·C·H·W floats), and the float path runs on it — so the results equal it exactly, as promised.
    // From the caching allocator (engine/allocator.h): the same size every step, so no fresh pages to fault in.
    const int64_t x_count = gw ? s.N * s.C * s.H * s.W : 0;
    const CpuScratch x_block(size_t(x_count) * sizeof(float));
    float* const x = static_cast<float*>(x_block.data());  // uninitialised: unpack writes every element
    if (gw) unpack_levels_cpu<float>(x_levels, x, x_count, levels);
    return conv2d_backward_cpu<float>(x, w, gy, gx, gw, gb, s);
  }
#endif
  conv2d_backward_packed_im2col_cpu(x_levels, levels, w, gy, gx, gw, gb, s);
}

#define SG_INSTANTIATE(T)                                                                                   \
  template void conv2d_forward_naive_cpu<T>(const T*, const T*, const T*, T*, const Conv2dShape&);          \
  template void conv2d_backward_naive_cpu<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dShape&); \
  template void conv2d_forward_cpu<T>(const T*, const T*, const T*, T*, const Conv2dShape&);                \
  template void conv2d_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dShape&);       \
  template void conv2d_backward_packed_cpu<T>(const uint8_t*, int, const T*, const T*, T*, T*, T*,          \
                                              const Conv2dShape&);                                          \
  template void conv2d_forward_im2col_cpu<T>(const T*, const T*, const T*, T*, const Conv2dShape&);         \
  template void conv2d_backward_im2col_cpu<T>(const T*, const T*, const T*, T*, T*, T*, const Conv2dShape&); \
  template void conv2d_backward_packed_im2col_cpu<T>(const uint8_t*, int, const T*, const T*, T*, T*, T*,   \
                                                     const Conv2dShape&);                                   \
  template void im2col_cpu<T>(const T*, T*, const Conv2dShape&);                                            \
  template void col2im_add_cpu<T>(const T*, T*, const Conv2dShape&);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
