// conv2d (kernels/conv2d.h) on oneDNN — Intel's deep-learning primitives library (Debian libdnnl-dev), the
// library PyTorch's CPU convolutions call. Float32 only: the double path (finite-difference tests) and the
// plain-loop reference stay in conv2d_cpu.cpp. Built only when CMake finds oneDNN (SPIKEGRAD_WITH_ONEDNN,
// which defines SPIKEGRAD_ONEDNN=1); conv2d_forward_cpu / conv2d_backward_cpu call it for the passes where
// it measured faster than im2col + Eigen (conv2d_cpu.cpp says which, docs/perf.md has the numbers).
//
// Same math, shapes and accumulation rule as kernels/conv2d.h: forward overwrites y; the backward passes ADD
// into gx / gw / gb (oneDNN writes a gradient, so it goes to a scratch that a reorder with a `sum` post-op
// adds into the caller's array). Direct convolution only (never Winograd: different rounding). Summation
// order differs from the im2col GEMMs (oneDNN blocks the reduction over C·R·S — and, for dw, over N·P·Q —
// its own way), so results agree with the Eigen path and the reference to float rounding, not bit for bit.
// Run to run they are bit-identical for a given thread count: oneDNN's CPU primitives split work statically
// over OpenMP threads and reduce per-thread partial weight gradients in a fixed order
// (tests/test_conv2d_onednn.cpp checks this).
//
// Layouts: the caller's arrays are NCHW / OIHW. `plain` runs the primitive on them directly (oneDNN then
// uses its im2col + JIT-SGEMM or plain-layout JIT kernels); `blocked` lets oneDNN choose its layouts
// (nChw16c, OIhw16i16o, …) and reorders the arguments in and the results out on every call.
// Primitives are created once per (pass, shape, layout, bias) and cached (mutex-guarded); each call uses its
// own scratch (staging memories and a scratchpad, blocks of the engine's CPU caching allocator: counted in its
// stats, served from its cache once warm), so calls may run concurrently. Threads: oneDNN's Debian build uses the
// same OpenMP runtime (libgomp) as the engine, so it shares the engine's thread pool (OMP_NUM_THREADS) instead of
// adding one.
// Scratch from inside the kernel, not from the caller (design.md's rule for kernels): its sizes are known only
// once oneDNN has picked its layouts, inside the cached plan. engine/allocator.h's CpuScratch is the one engine
// header besides check.h that CPU kernels include for this (conv2d_cpu.cpp, conv2d_sparse_cpu.cpp likewise).
#pragma once
#include "kernels/conv2d.h"

namespace spikegrad {

enum class OnednnLayout { plain, blocked };

// y = conv(x, w) + b. b may be null.
void conv2d_forward_onednn(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                           OnednnLayout layout);
// gx += backward data (w, gy).
void conv2d_backward_data_onednn(const float* w, const float* gy, float* gx, const Conv2dShape& s,
                                 OnednnLayout layout);
// gw += backward weight (x, gy); gb += Σ gy over n,p,q. gb may be null, gw not (oneDNN always computes it).
void conv2d_backward_weight_onednn(const float* x, const float* gy, float* gw, float* gb, const Conv2dShape& s,
                                   OnednnLayout layout);

}  // namespace spikegrad
