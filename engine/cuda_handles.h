// The library handles of the CUDA context: one cuBLAS and one cuDNN handle per process, created on first use
// by engine/cuda_context.cpp and bound to the default stream every CUDA call runs on. CUDA builds only; a
// kernel that calls cuBLAS or cuDNN takes its handle from here (errors go through engine/cuda_check.h).
#pragma once
#ifdef SPIKEGRAD_CUDA
#include <cublas_v2.h>
#include <cudnn.h>

namespace spikegrad {
cublasHandle_t cublas_handle();
cudnnHandle_t cudnn_handle();
}  // namespace spikegrad
#endif
