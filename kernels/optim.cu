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

// Two-pass deterministic reduction: the grid size depends only on n, every thread walks its elements
// in a fixed order and the block tree has a fixed shape, so the same input always gives the same bits
// (no atomics, whose order would vary).
constexpr int kReduceBlock = 256;        // power of two, required by the tree below
constexpr int64_t kReducePerThread = 8;  // enough work per thread to hide the tree's cost
constexpr int64_t kMaxReduceBlocks = 1024;

__device__ void block_tree_sum(double* shm, double acc, double* out) {
  shm[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = kReduceBlock / 2; stride > 0; stride >>= 1) {
    if (int(threadIdx.x) < stride) shm[threadIdx.x] += shm[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = shm[0];
}

__global__ void sum_squares_partials_kernel(const float* x, int64_t n, double* partials) {
  __shared__ double shm[kReduceBlock];
  double acc = 0;
  SG_GRID_STRIDE(i, n) {
    const double xi = x[i];
    acc += xi * xi;
  }
  block_tree_sum(shm, acc, partials + blockIdx.x);
}

__global__ void sum_partials_kernel(const double* partials, int64_t count, double* out) {
  __shared__ double shm[kReduceBlock];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += kReduceBlock) acc += partials[i];
  block_tree_sum(shm, acc, out);
}

}  // namespace

void sgd_step_cuda(float* p, const float* g, float* buf, int64_t n, const SgdScalars<float>& s) {
  SG_LAUNCH_1D(sgd_step_kernel, n, p, g, buf, n, s);
}

void adam_step_cuda(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars<float>& s) {
  SG_LAUNCH_1D(adam_step_kernel, n, p, g, m, v, n, s);
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
