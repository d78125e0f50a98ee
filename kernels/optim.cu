#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/optim.h"

namespace spikegrad {

namespace {

// Each element is loaded into registers once and stored once: the update is memory bound, so the
// traffic is the whole cost (see the byte counts in kernels/optim.h).
__global__ void sgd_step_kernel(float* p, const float* g, float* buf, int64_t n, SgdScalars<float> s) {
  SG_GRID_STRIDE(i, n) {
    float pi = p[i];
    if (buf) {
      float bi = s.first_step ? 0.f : buf[i];  // the first step overwrites buf without reading it
      sgd_element(pi, g[i], &bi, s);
      buf[i] = bi;
    } else {
      sgd_element(pi, g[i], static_cast<float*>(nullptr), s);
    }
    p[i] = pi;
  }
}

__global__ void adam_step_kernel(float* p, const float* g, float* m, float* v, int64_t n, AdamScalars<float> s) {
  SG_GRID_STRIDE(i, n) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_element(pi, g[i], mi, vi, s);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

// ---- multi-tensor ---------------------------------------------------------------------------------------
template <class Args> struct MultiTensorPack {
  Args t[kMultiTensorMax];
  int64_t chunk_begin[kMultiTensorMax + 1];  // tensor k owns chunks [chunk_begin[k], chunk_begin[k+1])
  int count;
};

// The tensor owning chunk c (binary search over at most kMultiTensorMax prefix entries, once per chunk).
template <class Args> __device__ int owner_of(const MultiTensorPack<Args>& pack, int64_t c) {
  int lo = 0, hi = pack.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (pack.chunk_begin[mid] <= c) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Calls body(args, begin, end) for every chunk this block owns: [begin, end) lies within tensor args.
template <class Args, class Body> __device__ void for_each_chunk(const MultiTensorPack<Args>& pack, Body body) {
  const int64_t chunks = pack.chunk_begin[pack.count];
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) {
    const int k = owner_of(pack, c);
    const Args& a = pack.t[k];
    const int64_t begin = (c - pack.chunk_begin[k]) * kMultiTensorChunk;
    body(a, begin, min(a.n, begin + kMultiTensorChunk));
  }
}

__global__ void adam_multi_kernel(const MultiTensorPack<AdamTensorArgs> pack, AdamScalars<float> s) {
  for_each_chunk(pack, [&](const AdamTensorArgs& a, int64_t begin, int64_t end) {
    AdamScalars<float> sk = s;
    sk.step_size = a.step_size;
    sk.bc2_sqrt = a.bc2_sqrt;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      float pi = a.p[i], mi = a.m[i], vi = a.v[i];
      adam_element(pi, a.g[i], mi, vi, sk);
      a.p[i] = pi;
      a.m[i] = mi;
      a.v[i] = vi;
    }
  });
}

__global__ void sgd_multi_kernel(const MultiTensorPack<SgdTensorArgs> pack, SgdScalars<float> s) {
  for_each_chunk(pack, [&](const SgdTensorArgs& a, int64_t begin, int64_t end) {
    SgdScalars<float> sk = s;
    sk.first_step = a.first_step;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      float pi = a.p[i];
      if (a.buf) {
        float bi = sk.first_step ? 0.f : a.buf[i];
        sgd_element(pi, a.g[i], &bi, sk);
        a.buf[i] = bi;
      } else {
        sgd_element(pi, a.g[i], static_cast<float*>(nullptr), sk);
      }
      a.p[i] = pi;
    }
  });
}

template <class Args, class Scalars, class Kernel>
void launch_multi(const Args* tensors, int count, const Scalars& s, Kernel kernel) {
  static_assert(sizeof(MultiTensorPack<Args>) + sizeof(Scalars) < 4000, "kernel parameters must stay under 4 KB");
  for (int first = 0; first < count; first += kMultiTensorMax) {
    MultiTensorPack<Args> pack{};
    pack.count = std::min(kMultiTensorMax, count - first);
    pack.chunk_begin[0] = 0;
    for (int k = 0; k < pack.count; ++k) {
      pack.t[k] = tensors[first + k];
      pack.chunk_begin[k + 1] = pack.chunk_begin[k] + ceil_div(pack.t[k].n, kMultiTensorChunk);
    }
    const int64_t chunks = pack.chunk_begin[pack.count];
    if (chunks == 0) continue;
    kernel<<<unsigned(std::min<int64_t>(chunks, 65535)), kBlock>>>(pack, s);
    SG_LAUNCH_CHECK();
  }
}

// Two-pass deterministic reduction: the grid size depends only on n, every thread walks its elements
// in a fixed order and the block reduction has a fixed shape (kernels/block_reduce.cuh), so the same input
// always gives the same bits (no atomics, whose order would vary).
constexpr int kReduceBlock = 256;        // a multiple of the warp size, as block_sum requires
constexpr int64_t kReducePerThread = 8;  // enough work per thread to hide the reduction's cost
constexpr int64_t kMaxReduceBlocks = 1024;

__global__ void sum_squares_partials_kernel(const float* x, int64_t n, double* partials) {
  double acc = 0;
  SG_GRID_STRIDE(i, n) {
    const double xi = x[i];
    acc += xi * xi;
  }
  const double total = block_sum<kReduceBlock>(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void sum_partials_kernel(const double* partials, int64_t count, double* out) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += kReduceBlock) acc += partials[i];
  const double total = block_sum<kReduceBlock>(acc);
  if (threadIdx.x == 0) *out = total;
}

}  // namespace

void sgd_step_cuda(float* p, const float* g, float* buf, int64_t n, const SgdScalars<float>& s) {
  SG_LAUNCH_1D(sgd_step_kernel, n, p, g, buf, n, s);
}

void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars<float>& s) {
  SG_LAUNCH_1D(adam_step_kernel, n, p, g, m, v, n, s);
}

void adam_multi_step_cuda(const AdamTensorArgs* tensors, int count, const AdamScalars<float>& shared) {
  launch_multi(tensors, count, shared, adam_multi_kernel);
}

void sgd_multi_step_cuda(const SgdTensorArgs* tensors, int count, const SgdScalars<float>& shared) {
  launch_multi(tensors, count, shared, sgd_multi_kernel);
}

int64_t sum_squares_partial_count(int64_t n) {
  const int64_t blocks = ceil_div(n, kReduceBlock * kReducePerThread);
  return std::max<int64_t>(1, std::min<int64_t>(blocks, kMaxReduceBlocks));
}

void sum_squares_partials_cuda(const float* x, int64_t n, double* partials) {
  // Launched even for n == 0 so that the partial is written (as 0).
  sum_squares_partials_kernel<<<unsigned(sum_squares_partial_count(n)), kReduceBlock>>>(x, n, partials);
  SG_LAUNCH_CHECK();
}

void sum_partials_cuda(const double* partials, int64_t count, double* out) {
  sum_partials_kernel<<<1, kReduceBlock>>>(partials, count, out);
  SG_LAUNCH_CHECK();
}

}  // namespace spikegrad
