// Histogram mutual information on CUDA: one block per sample. The slots (two bins and weights per step
// and side) live in shared memory; threads then split the sample's 8T entropy cells (kernels/hist_mi.h:
// x's and z's slots, then the joint's slot pairs; owner rule) and reduce three partial entropies with a
// fixed tree (kernels/block_reduce.cuh). The batch mean is the KDE family's kernel (same stats layout).
//
// Napkin math at B=64, T=4: 64 * 8T cells * ~3T terms = 25k FMAs -- launch bound, like the KDE kernel.
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/hist_mi.h"
#include "kernels/kde_mi.h"  // kde_mi_batch_mean_cuda

namespace spikegrad {

namespace {

constexpr int kHistBlock = 128;

struct HistArgs {
  int T, B, bins;
  float eps;
  bool soft;
};

// Shared-memory views of one sample's slots: [bx 2T | bz 2T] ints, then [wx 2T | wz 2T | ax T | az T] floats.
struct SharedSlots {
  HistSlots<float> x, z;
  const float *ax, *az;
};

// Fills the dynamic shared buffer with sample b's slots; ends with a barrier.
__device__ SharedSlots load_slots(const float* x, const float* z, int b, const HistArgs& a, char* dyn) {
  int* bx = reinterpret_cast<int*>(dyn);
  int* bz = bx + 2 * a.T;
  float* wx = reinterpret_cast<float*>(bz + 2 * a.T);
  float* wz = wx + 2 * a.T;
  float* ax = wz + 2 * a.T;
  float* az = ax + a.T;
  for (int t = threadIdx.x; t < a.T; t += blockDim.x) {
    hist_slots(x[int64_t(t) * a.B + b], a.bins, a.soft, bx[2 * t], bx[2 * t + 1], wx[2 * t], wx[2 * t + 1], ax[t]);
    hist_slots(z[int64_t(t) * a.B + b], a.bins, a.soft, bz[2 * t], bz[2 * t + 1], wz[2 * t], wz[2 * t + 1], az[t]);
  }
  __syncthreads();
  return SharedSlots{HistSlots<float>{bx, wx, a.T}, HistSlots<float>{bz, wz, a.T}, ax, az};
}

size_t shared_bytes(int T) { return size_t(T) * (4 * sizeof(int) + 6 * sizeof(float)); }

__global__ void __launch_bounds__(kHistBlock) hist_forward_kernel(const float* x, const float* z, float* stats,
                                                                  HistArgs a) {
  extern __shared__ char dyn[];
  const int b = blockIdx.x;
  const SharedSlots s = load_slots(x, z, b, a, dyn);
  float h[3] = {0.f, 0.f, 0.f};
  for (int64_t c = threadIdx.x; c < 8 * int64_t(a.T); c += blockDim.x) hist_entropy_cell(s.x, s.z, c, a.eps, h);
  block_reduce_each<kHistBlock>(h, SumOp{});
  if (threadIdx.x == 0) {
    float* st = stats + int64_t(b) * kKdeStatCount;
    for (int k = 0; k < kKdeStatCount; ++k) st[k] = 0.f;
    st[kKdeMi] = h[0] + h[1] - h[2];
    st[kKdeHx] = h[0];
    st[kKdeHz] = h[1];
    st[kKdeHxz] = h[2];
  }
}

// One thread per step t adds both sides, x then z (the CPU's order): gx and gz are the same buffer when x
// and z are one tensor, and two threads doing `+=` on one address would lose an update.
__global__ void __launch_bounds__(kHistBlock) hist_backward_kernel(const float* x, const float* z, const float* gmean,
                                                                   float* gx, float* gz, HistArgs a) {
  extern __shared__ char dyn[];
  const int b = blockIdx.x;
  const SharedSlots s = load_slots(x, z, b, a, dyn);
  const float gm = gmean[0] / float(a.B);
  for (int t = threadIdx.x; t < a.T; t += blockDim.x) {
    if (gx) gx[int64_t(t) * a.B + b] += gm * hist_step_grad(s.x, s.z, s.ax, t, a.eps, true);
    if (gz) gz[int64_t(t) * a.B + b] += gm * hist_step_grad(s.z, s.x, s.az, t, a.eps, false);
  }
}

HistArgs hist_args(const HistMiParams& p, bool soft, const char* op) {
  SG_CHECK(p.T >= 1 && p.T <= kHistCudaMaxT,
           op << ": the CUDA kernel supports 1 <= T <= " << kHistCudaMaxT << ", got T=" << p.T);
  SG_CHECK(p.B >= 1 && p.B <= int64_t(INT32_MAX), op << ": B must be in [1, 2^31-1], got " << p.B);
  return HistArgs{int(p.T), int(p.B), p.bins, float(p.eps), soft};
}

}  // namespace

void hist_mi_forward_cuda(const float* x, const float* z, float* stats, float* mean_mi, const HistMiParams& p) {
  const HistArgs a = hist_args(p, p.soft_forward, "hist_mi");
  hist_forward_kernel<<<unsigned(a.B), kHistBlock, shared_bytes(a.T)>>>(x, z, stats, a);
  SG_LAUNCH_CHECK();
  kde_mi_batch_mean_cuda(stats, a.B, mean_mi);
}

void hist_mi_backward_cuda(const float* x, const float* z, const float* gmean, float* gx, float* gz,
                           const HistMiParams& p) {
  const HistArgs a = hist_args(p, /*soft=*/true, "hist_mi backward");  // the surrogate, whatever the forward
  if (!gx && !gz) return;
  hist_backward_kernel<<<unsigned(a.B), kHistBlock, shared_bytes(a.T)>>>(x, z, gmean, gx, gz, a);
  SG_LAUNCH_CHECK();
}

}  // namespace spikegrad
