// Elementwise ops on contiguous buffers of n elements.
//
// Math (per element i):  add y=a+b | mul y=a*b | scale y=s*a | add_scalar y=a+s | clamp y=min(max(a,lo),hi)
//                        sign y=(a>0)-(a<0) | axpy y+=alpha*x
// Backward (accumulating, +=): add ga+=g, gb+=g | mul ga+=g*b, gb+=g*a | scale ga+=s*g
//                        clamp ga+=g*[lo<=a<=hi]. Saved for backward: mul keeps a and b; clamp keeps a;
//                        add/scale keep nothing.
// Bytes moved (for the bandwidth benchmark): add/mul 3n·sizeof(T), scale/axpy 2n-3n, clamp 2n.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

template <class T> SG_HD T clamp_value(T a, T lo, T hi) { return a < lo ? lo : (a > hi ? hi : a); }
template <class T> SG_HD T clamp_grad(T a, T lo, T hi, T g) { return (a >= lo && a <= hi) ? g : T(0); }
template <class T> SG_HD T sign_value(T a) { return T((a > T(0)) - (a < T(0))); }

// CPU reference, instantiated for float and double.
template <class T> void add_forward_cpu(const T* a, const T* b, T* y, int64_t n);
template <class T> void mul_forward_cpu(const T* a, const T* b, T* y, int64_t n);
template <class T> void mul_backward_cpu(const T* a, const T* b, const T* gy, T* ga, T* gb, int64_t n);  // ga/gb may be null
template <class T> void scale_forward_cpu(const T* a, T s, T* y, int64_t n);
template <class T> void add_scalar_forward_cpu(const T* a, T s, T* y, int64_t n);
template <class T> void clamp_forward_cpu(const T* a, T lo, T hi, T* y, int64_t n);
template <class T> void clamp_backward_cpu(const T* a, T lo, T hi, const T* gy, T* ga, int64_t n);
template <class T> void sign_forward_cpu(const T* a, T* y, int64_t n);
template <class T> void axpy_cpu(T* y, const T* x, T alpha, int64_t n);

// CUDA, float32.
void add_forward_cuda(const float* a, const float* b, float* y, int64_t n);
void mul_forward_cuda(const float* a, const float* b, float* y, int64_t n);
void mul_backward_cuda(const float* a, const float* b, const float* gy, float* ga, float* gb, int64_t n);
void scale_forward_cuda(const float* a, float s, float* y, int64_t n);
void add_scalar_forward_cuda(const float* a, float s, float* y, int64_t n);
void clamp_forward_cuda(const float* a, float lo, float hi, float* y, int64_t n);
void clamp_backward_cuda(const float* a, float lo, float hi, const float* gy, float* ga, int64_t n);
void sign_forward_cuda(const float* a, float* y, int64_t n);
void axpy_cuda(float* y, const float* x, float alpha, int64_t n);

}  // namespace spikegrad
