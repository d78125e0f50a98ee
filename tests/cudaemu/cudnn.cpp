// cudaemu cuDNN stand-in: descriptors are checked like cuDNN checks them, and the convolutions run on
// spikegrad's CPU convolution (kernels/conv2d_cpu.cpp), so a test of the CUDA conv path through cuDNN
// checks only spikegrad's glue: shapes, descriptors, algorithm choice, alpha/beta and accumulation.
#include <cstdio>
#include <string>
#include <vector>

#include "cudnn.h"
#include "internal.h"
#include "kernels/conv2d.h"

struct cudnnContext {};
struct cudnnTensorStruct {
  int n = 0, c = 0, h = 0, w = 0;
  bool set = false;
};
struct cudnnFilterStruct {
  int k = 0, c = 0, r = 0, s = 0;
  bool set = false;
};
struct cudnnConvolutionStruct {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  bool set = false;
};

namespace {
cudnnStatus_t bad(const std::string& what) {
  cudaemu::count_violation();
  std::fprintf(stderr, "cudaemu: %s\n", what.c_str());
  cudaemu::set_error(cudaErrorInvalidValue, what);
  return CUDNN_STATUS_BAD_PARAM;
}

// The shape cuDNN would convolve, or an error when the descriptors disagree.
cudnnStatus_t shape_of(const char* api, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                       cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y, spikegrad::Conv2dShape& s) {
  if (!x || !w || !conv || !y || !x->set || !w->set || !conv->set || !y->set)
    return bad(std::string(api) + ": a descriptor is null or was never set");
  if (conv->pad_h != conv->pad_w || conv->stride_h != conv->stride_w)
    return bad(std::string(api) + ": unequal padding or stride per axis is not emulated");
  if (x->c != w->c) return bad(std::string(api) + ": input channels " + std::to_string(x->c) + " != filter channels " +
                               std::to_string(w->c));
  s = spikegrad::make_conv2d_shape(x->n, x->c, x->h, x->w, w->k, w->r, w->s, conv->stride_h, conv->pad_h);
  if (y->n != s.N || y->c != s.K || y->h != s.P || y->w != s.Q)
    return bad(std::string(api) + ": output descriptor (" + std::to_string(y->n) + "," + std::to_string(y->c) + "," +
               std::to_string(y->h) + "," + std::to_string(y->w) + ") is not the convolution's output");
  return CUDNN_STATUS_SUCCESS;
}

bool on_device(const void* p, int64_t floats) { return cudaemu::is_device_range(p, size_t(floats) * sizeof(float)); }

// alpha must be 1 and beta 0 or 1: all spikegrad uses, and all the stand-in implements.
cudnnStatus_t scales(const char* api, const void* alpha, const void* beta, bool& accumulate) {
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  if (a != 1.f || (b != 0.f && b != 1.f))
    return bad(std::string(api) + ": the stand-in implements alpha = 1 and beta in {0, 1} only");
  accumulate = b == 1.f;
  return CUDNN_STATUS_SUCCESS;
}

// The common head of the three convolutions: a handle, descriptors that agree, and supported scales.
cudnnStatus_t convolution_call(const char* api, cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                               cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y, const void* alpha,
                               const void* beta, spikegrad::Conv2dShape& s, bool& accumulate) {
  if (!h) return bad(std::string(api) + ": null handle");
  if (cudnnStatus_t st = shape_of(api, x, w, conv, y, s)) return st;
  return scales(api, alpha, beta, accumulate);
}


template <class Descriptor>
cudnnStatus_t create(Descriptor** d) {
  *d = new Descriptor;
  return CUDNN_STATUS_SUCCESS;
}
template <class Descriptor>
cudnnStatus_t destroy(Descriptor* d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

template <class Perf, class Algo>
cudnnStatus_t one_algorithm(cudnnHandle_t h, int requested, int* returned, Perf* perf, Algo algo) {
  if (!h || requested < 1 || !returned || !perf) return bad("cudnnGet*Algorithm_v7: bad handle or output array");
  perf[0] = Perf{algo, CUDNN_STATUS_SUCCESS, 0.f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH};
  *returned = 1;
  return CUDNN_STATUS_SUCCESS;
}
}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM (see the cudaemu line on stderr)";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "unknown cuDNN status";
}
cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) { return create(handle); }
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) { return destroy(handle); }
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) { return create(d); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
  if (!d || format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT || n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return bad("cudnnSetTensor4dDescriptor: needs NCHW float with positive sizes");
  *d = cudnnTensorStruct{n, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) { return create(d); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  if (!d || format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT || k <= 0 || c <= 0 || h <= 0 || w <= 0)
    return bad("cudnnSetFilter4dDescriptor: needs NCHW float with positive sizes");
  *d = cudnnFilterStruct{k, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) { return create(d); }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int stride_h,
                                              int stride_w, int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute_type) {
  if (!d || pad_h < 0 || pad_w < 0 || stride_h <= 0 || stride_w <= 0)
    return bad("cudnnSetConvolution2dDescriptor: negative padding or non-positive stride");
  if (dilation_h != 1 || dilation_w != 1 || mode != CUDNN_CROSS_CORRELATION || compute_type != CUDNN_DATA_FLOAT)
    return bad("cudnnSetConvolution2dDescriptor: the stand-in emulates undilated float cross-correlation only");
  d->pad_h = pad_h;
  d->pad_w = pad_w;
  d->stride_h = stride_h;
  d->stride_w = stride_w;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (!d) return bad("cudnnSetConvolutionMathType: null descriptor");
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int* n, int* c, int* h, int* wd) {
  if (!conv || !x || !w || !conv->set || !x->set || !w->set) return bad("cudnnGetConvolution2dForwardOutputDim: unset descriptor");
  *n = x->n;
  *c = w->k;
  *h = int(spikegrad::conv2d_out_size(x->h, w->r, conv->stride_h, conv->pad_h));
  *wd = int(spikegrad::conv2d_out_size(x->w, w->s, conv->stride_w, conv->pad_w));
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t, int* count) {
  *count = 1;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t, int* count) {
  *count = 1;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t, int* count) {
  *count = 1;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t conv,
                                                     cudnnTensorDescriptor_t y, int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  spikegrad::Conv2dShape s;
  if (cudnnStatus_t st = shape_of("cudnnGetConvolutionForwardAlgorithm_v7", x, w, conv, y, s)) return st;
  return one_algorithm(h, requested, returned, perf, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, cudnnFilterDescriptor_t w,
                                                          cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t conv,
                                                          cudnnTensorDescriptor_t dx, int requested, int* returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  spikegrad::Conv2dShape s;
  if (cudnnStatus_t st = shape_of("cudnnGetConvolutionBackwardDataAlgorithm_v7", dx, w, conv, dy, s)) return st;
  return one_algorithm(h, requested, returned, perf, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                            cudnnTensorDescriptor_t dy,
                                                            cudnnConvolutionDescriptor_t conv,
                                                            cudnnFilterDescriptor_t dw, int requested, int* returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  spikegrad::Conv2dShape s;
  if (cudnnStatus_t st = shape_of("cudnnGetConvolutionBackwardFilterAlgorithm_v7", x, dw, conv, dy, s)) return st;
  return one_algorithm(h, requested, returned, perf, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
                                                      cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t,
                                                      cudnnConvolutionFwdAlgo_t, size_t* bytes) {
  *bytes = 0;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, cudnnFilterDescriptor_t,
                                                           cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
                                                           cudnnTensorDescriptor_t, cudnnConvolutionBwdDataAlgo_t,
                                                           size_t* bytes) {
  *bytes = 0;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                             cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
                                                             cudnnFilterDescriptor_t, cudnnConvolutionBwdFilterAlgo_t,
                                                             size_t* bytes) {
  *bytes = 0;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd, const void* x,
                                      cudnnFilterDescriptor_t wd, const void* w, cudnnConvolutionDescriptor_t conv,
                                      cudnnConvolutionFwdAlgo_t, void*, size_t, const void* beta,
                                      cudnnTensorDescriptor_t yd, void* y) {
  spikegrad::Conv2dShape s;
  bool accumulate = false;
  if (cudnnStatus_t st = convolution_call("cudnnConvolutionForward", h, xd, wd, conv, yd, alpha, beta, s, accumulate)) return st;
  const int64_t ny = s.N * s.K * s.P * s.Q;
  if (!on_device(x, s.N * s.C * s.H * s.W) || !on_device(w, s.K * s.C * s.R * s.S) || !on_device(y, ny))
    return bad("cudnnConvolutionForward: x, w or y is not device memory of its descriptor's size");
  float* out = static_cast<float*>(y);
  std::vector<float> fresh(static_cast<size_t>(ny));
  spikegrad::conv2d_forward_cpu<float>(static_cast<const float*>(x), static_cast<const float*>(w), nullptr, fresh.data(), s);
  for (int64_t i = 0; i < ny; ++i) out[i] = accumulate ? out[i] + fresh[size_t(i)] : fresh[size_t(i)];
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha, cudnnFilterDescriptor_t wd,
                                           const void* w, cudnnTensorDescriptor_t dyd, const void* dy,
                                           cudnnConvolutionDescriptor_t conv, cudnnConvolutionBwdDataAlgo_t, void*,
                                           size_t, const void* beta, cudnnTensorDescriptor_t dxd, void* dx) {
  spikegrad::Conv2dShape s;
  bool accumulate = false;
  if (cudnnStatus_t st = convolution_call("cudnnConvolutionBackwardData", h, dxd, wd, conv, dyd, alpha, beta, s, accumulate)) return st;
  const int64_t nx = s.N * s.C * s.H * s.W;
  if (!on_device(w, s.K * s.C * s.R * s.S) || !on_device(dy, s.N * s.K * s.P * s.Q) || !on_device(dx, nx))
    return bad("cudnnConvolutionBackwardData: w, dy or dx is not device memory of its descriptor's size");
  float* out = static_cast<float*>(dx);
  if (!accumulate) std::fill(out, out + nx, 0.f);
  spikegrad::conv2d_backward_cpu<float>(nullptr, static_cast<const float*>(w), static_cast<const float*>(dy), out,
                                        nullptr, nullptr, s);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t xd,
                                             const void* x, cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t conv, cudnnConvolutionBwdFilterAlgo_t, void*,
                                             size_t, const void* beta, cudnnFilterDescriptor_t dwd, void* dw) {
  spikegrad::Conv2dShape s;
  bool accumulate = false;
  if (cudnnStatus_t st = convolution_call("cudnnConvolutionBackwardFilter", h, xd, dwd, conv, dyd, alpha, beta, s, accumulate)) return st;
  const int64_t nw = s.K * s.C * s.R * s.S;
  if (!on_device(x, s.N * s.C * s.H * s.W) || !on_device(dy, s.N * s.K * s.P * s.Q) || !on_device(dw, nw))
    return bad("cudnnConvolutionBackwardFilter: x, dy or dw is not device memory of its descriptor's size");
  float* out = static_cast<float*>(dw);
  if (!accumulate) std::fill(out, out + nw, 0.f);
  spikegrad::conv2d_backward_cpu<float>(static_cast<const float*>(x), nullptr, static_cast<const float*>(dy), nullptr,
                                        out, nullptr, s);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t dyd,
                                           const void* dy, const void* beta, cudnnTensorDescriptor_t dbd, void* db) {
  bool accumulate = false;
  if (!h || !dyd || !dbd || !dyd->set || !dbd->set) return bad("cudnnConvolutionBackwardBias: unset handle or descriptor");
  if (cudnnStatus_t st = scales("cudnnConvolutionBackwardBias", alpha, beta, accumulate)) return st;
  if (dbd->n != 1 || dbd->c != dyd->c || dbd->h != 1 || dbd->w != 1)
    return bad("cudnnConvolutionBackwardBias: the bias descriptor must be (1, C, 1, 1)");
  const int64_t plane = int64_t(dyd->h) * dyd->w;
  if (!on_device(dy, dyd->n * dyd->c * plane) || !on_device(db, dyd->c))
    return bad("cudnnConvolutionBackwardBias: dy or db is not device memory of its descriptor's size");
  const float* g = static_cast<const float*>(dy);
  float* out = static_cast<float*>(db);
  for (int k = 0; k < dyd->c; ++k) {
    float acc = 0.f;
    for (int n = 0; n < dyd->n; ++n)
      for (int64_t i = 0; i < plane; ++i) acc += g[(int64_t(n) * dyd->c + k) * plane + i];
    out[k] = accumulate ? out[k] + acc : acc;
  }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void* alpha, cudnnTensorDescriptor_t ad, const void* a,
                             const void* beta, cudnnTensorDescriptor_t cd, void* c) {
  bool accumulate = false;
  if (!h || !ad || !cd || !ad->set || !cd->set) return bad("cudnnAddTensor: unset handle or descriptor");
  if (cudnnStatus_t st = scales("cudnnAddTensor", alpha, beta, accumulate)) return st;
  if (ad->n != 1 || ad->c != cd->c || ad->h != 1 || ad->w != 1)
    return bad("cudnnAddTensor: the stand-in emulates a (1, C, 1, 1) bias added to (N, C, H, W) only");
  const int64_t plane = int64_t(cd->h) * cd->w;
  if (!on_device(a, ad->c) || !on_device(c, cd->n * cd->c * plane))
    return bad("cudnnAddTensor: a or c is not device memory of its descriptor's size");
  const float* b = static_cast<const float*>(a);
  float* y = static_cast<float*>(c);
  for (int n = 0; n < cd->n; ++n)
    for (int k = 0; k < cd->c; ++k)
      for (int64_t i = 0; i < plane; ++i) {
        float& v = y[(int64_t(n) * cd->c + k) * plane + i];
        v = accumulate ? v + b[k] : b[k];
      }
  return CUDNN_STATUS_SUCCESS;
}
