// Fully connected layer, as PyTorch's nn.Linear.
//
// Shapes: x (N,I), w (O,I), b (O) or none, y (N,O)   (I = in_features, O = out_features).
// Math:   y = x·wᵀ + b, i.e. y[n,o] = b[o] + Σ_i x[n,i]·w[o,i].
// Backward (accumulating, +=; each gradient only when its pointer is non-null):
//         dx += gy·w   (N,O)·(O,I)     dw += gyᵀ·x   (O,N)·(N,I)     db[o] += Σ_n gy[n,o]
// Saved for backward: x (for dw) and w (for dx), the op's own inputs.
// FLOPs: forward 2·N·I·O; backward data and backward weight the same each.
//
// CPU: Eigen GEMM over row-major maps (Eigen parallelises large products with OpenMP), float and
// double; `linear_forward_naive_cpu` is the plain-loop reference the tests compare it with.
// CUDA: cuBLAS sgemm with fp32 math (the handle's default math mode: no TF32). cuBLAS is
// column-major; a row-major (rows,cols) buffer is the column-major (cols,rows) transpose, so each
// product is computed transposed (y ᵀ = w·xᵀ, ...) and no data is ever transposed in memory.
// The bias is a broadcast-add kernel; db is a column-sum kernel that writes each db[o] from one
// block (no atomics, so the result is deterministic).
#pragma once
#include <cstdint>

namespace spikegrad {

struct LinearShape {
  int64_t N = 0;  // rows of x
  int64_t I = 0;  // in_features
  int64_t O = 0;  // out_features
};

// CPU, instantiated for float and double. b / gx / gw / gb may be null.
template <class T> void linear_forward_naive_cpu(const T* x, const T* w, const T* b, T* y, const LinearShape& s);
template <class T> void linear_forward_cpu(const T* x, const T* w, const T* b, T* y, const LinearShape& s);
template <class T>
void linear_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const LinearShape& s);

// CUDA (cuBLAS + two small kernels), float32. b / gx / gw / gb may be null.
void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, const LinearShape& s);
void linear_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          const LinearShape& s);

}  // namespace spikegrad
