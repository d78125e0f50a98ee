// Fused KDE mutual information on CUDA: one block per sample. The windows, the (T, window) kernel values
// and their row sums live in shared memory; threads then sweep the marginal bins and the joint cells of
// the T window rectangles (owner rule, see kernels/kde_mi.h) and reduce six partial sums with a fixed
// tree (kernels/block_reduce.cuh). The same loops as kernels/kde_mi_cpu.cpp, so the two can be read side
// by side.
//
// Napkin math at B=64, T=4, s=0.32 (window 10): forward ~ 64 * (T*10*10 cells * T terms) = 100k FMAs plus
// 26k log2 -- launch bound. The dense formulation (kernels/kde_mi_dense.cu) does 64 * 256^2 * T = 17M FMAs
// in a batched GEMM and 4M log2, plus 16 MiB of joint written and read several times.
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/kde_mi.h"

namespace spikegrad {

namespace {

constexpr int kKdeBlock = 128;

// Per-sample state in shared memory; kx/kz point into the dynamic buffer.
struct SampleShared {
  float xv[kKdeCudaMaxT], zv[kKdeCudaMaxT], sx[kKdeCudaMaxT], sz[kKdeCudaMaxT];
  int lo_x[kKdeCudaMaxT], len_x[kKdeCudaMaxT], lo_z[kKdeCudaMaxT], len_z[kKdeCudaMaxT];
};

struct KernelArgs {
  int T, B, bins, W;
  float sigma, eps, radius;
};

// The sample's two sides as kernels/kde_mi_math.h views of the shared windows and kernel values.
__device__ __forceinline__ KdeWindows<float> x_side(const SampleShared& s, const float* kx, const KernelArgs& a) {
  return KdeWindows<float>{kx, s.lo_x, s.len_x, a.W, a.T};
}
__device__ __forceinline__ KdeWindows<float> z_side(const SampleShared& s, const float* kz, const KernelArgs& a) {
  return KdeWindows<float>{kz, s.lo_z, s.len_z, a.W, a.T};
}

// Windows, kernel values and row sums of sample b; ends with a barrier.
__device__ void load_sample(const float* x, const float* z, int b, const KernelArgs& a, SampleShared& s, float* kx,
                            float* kz) {
  for (int t = threadIdx.x; t < a.T; t += blockDim.x) {
    s.xv[t] = x[int64_t(t) * a.B + b];
    s.zv[t] = z[int64_t(t) * a.B + b];
    kde_window(s.xv[t], a.radius, a.bins, a.W, s.lo_x[t], s.len_x[t]);
    kde_window(s.zv[t], a.radius, a.bins, a.W, s.lo_z[t], s.len_z[t]);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < a.T * a.W; c += blockDim.x) {
    const int t = c / a.W, k = c % a.W;
    kx[c] = kde_window_value(s.xv[t], s.lo_x[t], s.len_x[t], k, a.sigma);
    kz[c] = kde_window_value(s.zv[t], s.lo_z[t], s.len_z[t], k, a.sigma);
  }
  __syncthreads();
  const KdeWindows<float> xw = x_side(s, kx, a), zw = z_side(s, kz, a);
  for (int t = threadIdx.x; t < a.T; t += blockDim.x) {
    s.sx[t] = xw.row_sum(t);
    s.sz[t] = zw.row_sum(t);
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kKdeBlock) kde_forward_kernel(const float* x, const float* z, float* stats, KernelArgs a) {
  extern __shared__ float dyn[];
  float* kx = dyn;
  float* kz = dyn + a.T * a.W;
  __shared__ SampleShared s;
  const int b = blockIdx.x;
  load_sample(x, z, b, a, s, kx, kz);
  const KdeWindows<float> xw = x_side(s, kx, a), zw = z_side(s, kz, a);

  // Every thread forms the normalisers itself (T is small), in the CPU's order.
  float ux, uz, uxz;
  kde_normalisers(s.sx, s.sz, a.T, ux, uz, uxz);

  float acc[kKdeEntropySums] = {};  // hx, cx, hz, cz, hxz, cxz
  for (int c = threadIdx.x; c < a.T * a.W; c += blockDim.x) {
    const int t = c / a.W, k = c % a.W;
    if (k < s.len_x[t]) {
      const int i = s.lo_x[t] + k;
      if (!xw.owned_before(t, i)) kde_entropy_add(xw.marginal(i) / (ux + a.eps), a.eps, acc[0], acc[1]);
    }
    if (k < s.len_z[t]) {
      const int j = s.lo_z[t] + k;
      if (!zw.owned_before(t, j)) kde_entropy_add(zw.marginal(j) / (uz + a.eps), a.eps, acc[2], acc[3]);
    }
  }
  const int cells = a.W * a.W;
  for (int c = threadIdx.x; c < a.T * cells; c += blockDim.x) {
    const int t = c / cells, ki = (c % cells) / a.W, kj = c % a.W;
    if (ki >= s.len_x[t] || kj >= s.len_z[t]) continue;
    const int i = s.lo_x[t] + ki, j = s.lo_z[t] + kj;
    if (kde_cell_owned_before(xw, zw, t, i, j)) continue;
    kde_entropy_add(kde_joint(xw, zw, i, j) / (uxz + a.eps), a.eps, acc[4], acc[5]);
  }

  block_reduce_each<kKdeBlock>(acc, SumOp{});
  if (threadIdx.x == 0) {
    float* st = stats + int64_t(b) * kKdeStatCount;
    kde_store_stats(st, acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], ux, uz, uxz);
  }
}

// Batch mean of MI_b with one block and a fixed tree: deterministic, unlike an atomicAdd per sample.
__global__ void __launch_bounds__(kKdeBlock) kde_mean_kernel(const float* stats, int B, float* mean_mi) {
  float acc = 0.f;
  for (int b = threadIdx.x; b < B; b += blockDim.x) acc += stats[int64_t(b) * kKdeStatCount + kKdeMi];
  const float sum = block_sum<kKdeBlock>(acc);
  if (threadIdx.x == 0) mean_mi[0] = sum / float(B);
}

// One thread per (side, t, window slot) forms dMI/dK there (marginal + joint terms, deterministic loops,
// no atomics), times dK/dv; then one thread per (side, t) sums its window in order.
__global__ void __launch_bounds__(kKdeBlock) kde_backward_kernel(const float* x, const float* z, const float* stats,
                                                                 const float* gmean, float* gx, float* gz,
                                                                 KernelArgs a) {
  extern __shared__ float dyn[];
  float* kx = dyn;
  float* kz = dyn + a.T * a.W;
  float* contrib = dyn + 2 * a.T * a.W;  // [2][T][W]: x side, then z side
  __shared__ SampleShared s;
  const int b = blockIdx.x;
  load_sample(x, z, b, a, s, kx, kz);
  const KdeWindows<float> xw = x_side(s, kx, a), zw = z_side(s, kz, a);

  const float* st = stats + int64_t(b) * kKdeStatCount;
  const float gm = gmean[0] / float(a.B);
  const KdeSideGrad<float> gxs = kde_side_grad(st, false, gm, a.eps, a.T);
  const KdeSideGrad<float> gzs = kde_side_grad(st, true, gm, a.eps, a.T);
  const int tw = a.T * a.W;
  for (int c = threadIdx.x; c < 2 * tw; c += blockDim.x) {
    const bool zside = c >= tw;
    const int slot = zside ? c - tw : c, t = slot / a.W, k = slot % a.W;
    float out = 0.f;
    if (!zside && gx) out = kde_slot_grad(xw, zw, gxs, s.xv[t], t, k, a.sigma, a.eps);
    else if (zside && gz) out = kde_slot_grad(zw, xw, gzs, s.zv[t], t, k, a.sigma, a.eps);
    contrib[c] = out;
  }
  __syncthreads();
  // One thread adds both sides of step t, x then z (the CPU's order): gx and gz are the same buffer when
  // x and z are one tensor, and two threads doing `+=` on one address would lose an update.
  for (int t = threadIdx.x; t < a.T; t += blockDim.x) {
    for (int side = 0; side < 2; ++side) {
      float* g = side ? gz : gx;
      if (!g) continue;
      const float* row = contrib + side * tw + t * a.W;
      float sum = 0.f;
      for (int k = 0; k < a.W; ++k) sum += row[k];
      g[int64_t(t) * a.B + b] += sum;
    }
  }
}

KernelArgs kernel_args(const KdeMiParams& p, const char* op) {
  SG_CHECK(p.T >= 1 && p.T <= kKdeCudaMaxT, op << ": the CUDA kernel supports 1 <= T <= " << kKdeCudaMaxT << ", got T=" << p.T);
  SG_CHECK(p.B >= 1 && p.B <= int64_t(INT32_MAX), op << ": B must be in [1, 2^31-1], got " << p.B);
  // The 48 KiB launch limit covers static + dynamic shared memory: the backward's 4*T*window floats plus
  // SampleShared (and the forward's reduction scratch, while its dynamic part is only 2*T*window floats).
  constexpr size_t kStaticBytes = sizeof(SampleShared) + block_reduce_shared_bytes<kKdeBlock, kKdeEntropySums, float>();
  constexpr int64_t kStaticFloats = int64_t(kStaticBytes + sizeof(float) - 1) / int64_t(sizeof(float));
  SG_CHECK(4 * p.T * p.window + kStaticFloats <= kKdeCudaMaxSharedFloats,
           op << ": T*window = " << p.T * p.window << " exceeds the CUDA kernel's shared memory ("
              << (kKdeCudaMaxSharedFloats - kStaticFloats) / 4 << "); use a smaller sigma or T");
  return KernelArgs{int(p.T), int(p.B), p.bins, p.window, float(p.sigma), float(p.eps), float(p.radius)};
}

}  // namespace

void kde_mi_forward_cuda(const float* x, const float* z, float* stats, float* mean_mi, const KdeMiParams& p) {
  const KernelArgs a = kernel_args(p, "kde_mi");
  kde_forward_kernel<<<unsigned(a.B), kKdeBlock, size_t(2 * a.T * a.W) * sizeof(float)>>>(x, z, stats, a);
  SG_LAUNCH_CHECK();
  kde_mi_batch_mean_cuda(stats, a.B, mean_mi);
}

void kde_mi_batch_mean_cuda(const float* stats, int64_t B, float* mean_mi) {
  SG_CHECK(B >= 1 && B <= int64_t(INT32_MAX), "kde_mi: B must be in [1, 2^31-1], got " << B);
  kde_mean_kernel<<<1, kKdeBlock>>>(stats, int(B), mean_mi);
  SG_LAUNCH_CHECK();
}

void kde_mi_backward_cuda(const float* x, const float* z, const float* stats, const float* gmean, float* gx, float* gz,
                          const KdeMiParams& p) {
  const KernelArgs a = kernel_args(p, "kde_mi backward");
  if (!gx && !gz) return;
  kde_backward_kernel<<<unsigned(a.B), kKdeBlock, size_t(4 * a.T * a.W) * sizeof(float)>>>(x, z, stats, gmean, gx,
                                                                                           gz, a);
  SG_LAUNCH_CHECK();
}

}  // namespace spikegrad
