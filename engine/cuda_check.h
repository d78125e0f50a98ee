// Checked CUDA / cuBLAS / cuDNN calls: the failing call and the library's own error string.
#pragma once
#ifdef SPIKEGRAD_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "engine/check.h"

namespace spikegrad {
const char* cublas_status_string(cublasStatus_t s);
}  // namespace spikegrad

#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    cudaError_t sg_err_ = (call);                                                        \
    SG_CHECK(sg_err_ == cudaSuccess, #call << " failed: " << cudaGetErrorString(sg_err_)); \
  } while (0)
#define CUBLAS_CHECK(call)                                                                         \
  do {                                                                                             \
    cublasStatus_t sg_st_ = (call);                                                                \
    SG_CHECK(sg_st_ == CUBLAS_STATUS_SUCCESS, #call << " failed: " << ::spikegrad::cublas_status_string(sg_st_)); \
  } while (0)
#define CUDNN_CHECK(call)                                                                  \
  do {                                                                                     \
    cudnnStatus_t sg_st_ = (call);                                                         \
    SG_CHECK(sg_st_ == CUDNN_STATUS_SUCCESS, #call << " failed: " << cudnnGetErrorString(sg_st_)); \
  } while (0)
#endif
