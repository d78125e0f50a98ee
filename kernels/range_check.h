// Range check: every element of x lies in [lo, hi]; NaN fails (every comparison with it is false). The
// data-dependent validation an op or an attack needs before trusting values: pixels in [0,1], finite logits.
// CPU: the flat index of the first element outside, or -1. CUDA: one element outside is recorded into a
// deferred device check (engine/cuda_context.h), reported at the next synchronisation; nothing waits.
// Bytes: one read of x.
#pragma once
#include <cstdint>

#include "engine/cuda_context.h"
#include "kernels/common.h"

namespace spikegrad {

template <class T> SG_HD bool in_range(T v, T lo, T hi) { return v >= lo && v <= hi; }

template <class T> int64_t first_outside_range_cpu(const T* x, int64_t n, T lo, T hi);
void check_range_cuda(const float* x, int64_t n, float lo, float hi, const DeviceCheck& check);

}  // namespace spikegrad
