// The CUDA context seen from host code that must also build without CUDA: availability, raw memory,
// copies. Every CUDA call runs on the default stream (one stream keeps the caching allocator's reuse
// trivially safe). In a CPU-only build these functions exist and report "no CUDA" instead of failing
// to link, so common code needs no #ifdef.
#pragma once
#include <cstddef>

#include "engine/dtype.h"

namespace spikegrad {

bool cuda_available();   // built with CUDA and at least one device usable
bool cuda_compiled();    // built with CUDA
void require_cuda(const char* what);  // throws "<what>: needs CUDA, but ..." with the reason

void* cuda_raw_malloc(size_t bytes);
void cuda_raw_free(void* ptr);
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void zero_bytes(void* ptr, Device device, size_t bytes);
void cuda_synchronize();

}  // namespace spikegrad
