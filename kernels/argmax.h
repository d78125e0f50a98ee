// Row-wise argmax: x (N,K) -> int32 (N), the index of the first maximum of each row (ties go to the
// lowest index on both backends, so predictions agree exactly). Not differentiable.
// Bytes: N·K·sizeof(T) read, 4·N written.
#pragma once
#include <cstdint>

namespace spikegrad {

template <class T> void argmax_rows_cpu(const T* x, int32_t* out, int64_t n, int64_t k);
void argmax_rows_cuda(const float* x, int32_t* out, int64_t n, int64_t k);

}  // namespace spikegrad
