#include "kernels/cuda_utils.cuh"
#include "kernels/temporal.h"

namespace spikegrad {

namespace {
// One thread per output element; consecutive threads touch consecutive addresses in every step.
__global__ void repeat_forward_kernel(const float* x, float* y, int64_t steps, int64_t m) {
  SG_GRID_STRIDE(j, steps * m) y[j] = x[j % m];
}
__global__ void repeat_backward_kernel(const float* gy, float* gx, int64_t steps, int64_t m) {
  SG_GRID_STRIDE(i, m) {
    float s = 0.f;
    for (int64_t t = 0; t < steps; ++t) s += gy[t * m + i];
    gx[i] += s;
  }
}
__global__ void mean_forward_kernel(const float* x, float* y, int64_t steps, int64_t m) {
  SG_GRID_STRIDE(i, m) {
    float s = 0.f;
    for (int64_t t = 0; t < steps; ++t) s += x[t * m + i];
    y[i] = s / float(steps);
  }
}
__global__ void mean_backward_kernel(const float* gy, float* gx, int64_t steps, int64_t m) {
  SG_GRID_STRIDE(j, steps * m) gx[j] += gy[j % m] / float(steps);
}
// One thread per output element of (B,A,M): reads stride through x, writes are coalesced.
__global__ void swap_leading_forward_kernel(const float* x, float* y, int64_t a, int64_t b, int64_t m) {
  SG_GRID_STRIDE(o, a * b * m) {
    const int64_t k = o % m, ji = o / m, i = ji % a, j = ji / a;
    y[o] = x[(i * b + j) * m + k];
  }
}
// One thread per element of gx (A,B,M): each is owned by exactly one thread, so `+=` needs no atomics.
__global__ void swap_leading_backward_kernel(const float* gy, float* gx, int64_t a, int64_t b, int64_t m) {
  SG_GRID_STRIDE(o, a * b * m) {
    const int64_t k = o % m, ij = o / m, j = ij % b, i = ij / b;
    gx[o] += gy[(j * a + i) * m + k];
  }
}
}  // namespace

void repeat_time_forward_cuda(const float* x, float* y, int64_t steps, int64_t m) {
  SG_LAUNCH_1D(repeat_forward_kernel, steps * m, x, y, steps, m);
}
void repeat_time_backward_cuda(const float* gy, float* gx, int64_t steps, int64_t m) {
  SG_LAUNCH_1D(repeat_backward_kernel, m, gy, gx, steps, m);
}
void mean_time_forward_cuda(const float* x, float* y, int64_t steps, int64_t m) {
  SG_LAUNCH_1D(mean_forward_kernel, m, x, y, steps, m);
}
void mean_time_backward_cuda(const float* gy, float* gx, int64_t steps, int64_t m) {
  SG_LAUNCH_1D(mean_backward_kernel, steps * m, gy, gx, steps, m);
}

void swap_leading_dims_forward_cuda(const float* x, float* y, int64_t a, int64_t b, int64_t m) {
  SG_LAUNCH_1D(swap_leading_forward_kernel, a * b * m, x, y, a, b, m);
}
void swap_leading_dims_backward_cuda(const float* gy, float* gx, int64_t a, int64_t b, int64_t m) {
  SG_LAUNCH_1D(swap_leading_backward_kernel, a * b * m, gy, gx, a, b, m);
}

}  // namespace spikegrad
