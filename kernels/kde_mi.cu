// Fused KDE mutual information on CUDA: one block per sample. The windows, the (T, window) kernel values
// and their row sums live in shared memory; threads then sweep the marginal bins and the joint cells of
// the T window rectangles (owner rule, see kernels/kde_mi.h) and reduce six partial sums with a fixed
// tree. The same loops as kernels/kde_mi_cpu.cpp, so the two can be read side by side.
//
// Napkin math at B=64, T=4, s=0.32 (window 10): forward ~ 64 * (T*10*10 cells * T terms) = 100k FMAs plus
// 26k log2 -- launch bound. The dense formulation (kernels/kde_mi_dense.cu) does 64 * 256^2 * T = 17M FMAs
// in a batched GEMM and 4M log2, plus 16 MiB of joint written and read several times.
#include <cub/block/block_reduce.cuh>

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

__device__ __forceinline__ float kx_at(const SampleShared& s, const float* kx, int W, int t, int i) {
  const int k = i - s.lo_x[t];
  return k >= 0 && k < s.len_x[t] ? kx[t * W + k] : 0.f;
}
__device__ __forceinline__ float kz_at(const SampleShared& s, const float* kz, int W, int t, int j) {
  const int k = j - s.lo_z[t];
  return k >= 0 && k < s.len_z[t] ? kz[t * W + k] : 0.f;
}
__device__ __forceinline__ bool in_win(int lo, int len, int i) { return i >= lo && i < lo + len; }

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
    kx[c] = k < s.len_x[t] ? kde_kernel(s.xv[t], s.lo_x[t] + k, a.sigma) : 0.f;
    kz[c] = k < s.len_z[t] ? kde_kernel(s.zv[t], s.lo_z[t] + k, a.sigma) : 0.f;
  }
  __syncthreads();
  for (int t = threadIdx.x; t < a.T; t += blockDim.x) {
    float sum_x = 0.f, sum_z = 0.f;
    for (int k = 0; k < a.W; ++k) {
      sum_x += kx[t * a.W + k];
      sum_z += kz[t * a.W + k];
    }
    s.sx[t] = sum_x;
    s.sz[t] = sum_z;
  }
  __syncthreads();
}

__device__ float marginal_x(const SampleShared& s, const float* kx, const KernelArgs& a, int i) {
  float m = 0.f;
  for (int u = 0; u < a.T; ++u) m += kx_at(s, kx, a.W, u, i);
  return m / float(a.T);
}
__device__ float marginal_z(const SampleShared& s, const float* kz, const KernelArgs& a, int j) {
  float m = 0.f;
  for (int u = 0; u < a.T; ++u) m += kz_at(s, kz, a.W, u, j);
  return m / float(a.T);
}
__device__ float joint(const SampleShared& s, const float* kx, const float* kz, const KernelArgs& a, int i, int j) {
  float v = 0.f;
  for (int u = 0; u < a.T; ++u) v += kx_at(s, kx, a.W, u, i) * kz_at(s, kz, a.W, u, j);
  return v;
}

__global__ void __launch_bounds__(kKdeBlock) kde_forward_kernel(const float* x, const float* z, float* stats, KernelArgs a) {
  extern __shared__ float dyn[];
  float* kx = dyn;
  float* kz = dyn + a.T * a.W;
  __shared__ SampleShared s;
  const int b = blockIdx.x;
  load_sample(x, z, b, a, s, kx, kz);

  // Every thread forms the normalisers itself (T is small), in the CPU's order.
  float ux = 0.f, uz = 0.f, uxz = 0.f;
  for (int t = 0; t < a.T; ++t) {
    ux += s.sx[t];
    uz += s.sz[t];
    uxz += s.sx[t] * s.sz[t];
  }
  ux /= float(a.T);
  uz /= float(a.T);

  float acc[6] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f};  // hx, cx, hz, cz, hxz, cxz
  for (int c = threadIdx.x; c < a.T * a.W; c += blockDim.x) {
    const int t = c / a.W, k = c % a.W;
    if (k < s.len_x[t]) {
      const int i = s.lo_x[t] + k;
      bool owned = false;
      for (int u = 0; u < t; ++u) owned |= in_win(s.lo_x[u], s.len_x[u], i);
      if (!owned) {
        const float q = marginal_x(s, kx, a, i) / (ux + a.eps);
        acc[0] += kde_entropy_term(q, a.eps);
        acc[1] += kde_entropy_grad(q, a.eps) * q;
      }
    }
    if (k < s.len_z[t]) {
      const int j = s.lo_z[t] + k;
      bool owned = false;
      for (int u = 0; u < t; ++u) owned |= in_win(s.lo_z[u], s.len_z[u], j);
      if (!owned) {
        const float q = marginal_z(s, kz, a, j) / (uz + a.eps);
        acc[2] += kde_entropy_term(q, a.eps);
        acc[3] += kde_entropy_grad(q, a.eps) * q;
      }
    }
  }
  const int cells = a.W * a.W;
  for (int c = threadIdx.x; c < a.T * cells; c += blockDim.x) {
    const int t = c / cells, ki = (c % cells) / a.W, kj = c % a.W;
    if (ki >= s.len_x[t] || kj >= s.len_z[t]) continue;
    const int i = s.lo_x[t] + ki, j = s.lo_z[t] + kj;
    bool owned = false;
    for (int u = 0; u < t; ++u) owned |= in_win(s.lo_x[u], s.len_x[u], i) && in_win(s.lo_z[u], s.len_z[u], j);
    if (owned) continue;
    const float q = joint(s, kx, kz, a, i, j) / (uxz + a.eps);
    acc[4] += kde_entropy_term(q, a.eps);
    acc[5] += kde_entropy_grad(q, a.eps) * q;
  }

  using BlockReduce = cub::BlockReduce<float, kKdeBlock>;
  __shared__ typename BlockReduce::TempStorage tmp;
  float total[6];
  for (int v = 0; v < 6; ++v) {
    total[v] = BlockReduce(tmp).Sum(acc[v]);  // valid in thread 0
    __syncthreads();                           // tmp is reused by the next reduction
  }
  if (threadIdx.x == 0) {
    float* st = stats + int64_t(b) * kKdeStatCount;
    kde_store_stats(st, total[0], total[1], total[2], total[3], total[4], total[5], ux, uz, uxz);
  }
}

// Batch mean of MI_b with one block and a fixed tree: deterministic, unlike an atomicAdd per sample.
__global__ void __launch_bounds__(kKdeBlock) kde_mean_kernel(const float* stats, int B, float* mean_mi) {
  float acc = 0.f;
  for (int b = threadIdx.x; b < B; b += blockDim.x) acc += stats[int64_t(b) * kKdeStatCount + kKdeMi];
  using BlockReduce = cub::BlockReduce<float, kKdeBlock>;
  __shared__ typename BlockReduce::TempStorage tmp;
  const float sum = BlockReduce(tmp).Sum(acc);
  if (threadIdx.x == 0) mean_mi[0] = sum / float(B);
}

// One thread per (side, t, window slot) forms dMI/dK there (marginal + joint terms, deterministic loops,
// no atomics), times dK/dv; then one thread per (side, t) sums its window in order.
__global__ void __launch_bounds__(kKdeBlock) kde_backward_kernel(const float* x, const float* z, const float* stats,
                                                                 const float* grad_mean, float* gx, float* gz,
                                                                 KernelArgs a) {
  extern __shared__ float dyn[];
  float* kx = dyn;
  float* kz = dyn + a.T * a.W;
  float* contrib = dyn + 2 * a.T * a.W;  // [2][T][W]: x side, then z side
  __shared__ SampleShared s;
  const int b = blockIdx.x;
  load_sample(x, z, b, a, s, kx, kz);

  const float* st = stats + int64_t(b) * kKdeStatCount;
  const float gm = grad_mean[0] / float(a.B);
  const float ax = gm / ((st[kKdeUx] + a.eps) * float(a.T)), az = gm / ((st[kKdeUz] + a.eps) * float(a.T));
  const float axz = -gm / (st[kKdeUxz] + a.eps);  // H_xz enters MI with sign -1
  const int tw = a.T * a.W;
  for (int c = threadIdx.x; c < 2 * tw; c += blockDim.x) {
    const bool zside = c >= tw;
    const int slot = zside ? c - tw : c, t = slot / a.W, k = slot % a.W;
    float out = 0.f;
    if (!zside && gx && k < s.len_x[t]) {
      const int i = s.lo_x[t] + k;
      float dk = ax * (kde_entropy_grad(marginal_x(s, kx, a, i) / (st[kKdeUx] + a.eps), a.eps) - st[kKdeCx]);
      for (int kj = 0; kj < s.len_z[t]; ++kj) {
        const float q = joint(s, kx, kz, a, i, s.lo_z[t] + kj) / (st[kKdeUxz] + a.eps);
        dk += axz * (kde_entropy_grad(q, a.eps) - st[kKdeCxz]) * kz[t * a.W + kj];
      }
      out = dk * kde_kernel_dv(kx[slot], s.xv[t], i, a.sigma);
    } else if (zside && gz && k < s.len_z[t]) {
      const int j = s.lo_z[t] + k;
      float dk = az * (kde_entropy_grad(marginal_z(s, kz, a, j) / (st[kKdeUz] + a.eps), a.eps) - st[kKdeCz]);
      for (int ki = 0; ki < s.len_x[t]; ++ki) {
        const float q = joint(s, kx, kz, a, s.lo_x[t] + ki, j) / (st[kKdeUxz] + a.eps);
        dk += axz * (kde_entropy_grad(q, a.eps) - st[kKdeCxz]) * kx[t * a.W + ki];
      }
      out = dk * kde_kernel_dv(kz[slot], s.zv[t], j, a.sigma);
    }
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
  // SampleShared (and the forward's cub storage, while its dynamic part is only 2*T*window floats).
  constexpr int64_t kStaticFloats =
      int64_t(sizeof(SampleShared) + sizeof(cub::BlockReduce<float, kKdeBlock>::TempStorage) + sizeof(float) - 1) /
      int64_t(sizeof(float));
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

void kde_mi_backward_cuda(const float* x, const float* z, const float* stats, const float* grad_mean, float* gx, float* gz,
                          const KdeMiParams& p) {
  const KernelArgs a = kernel_args(p, "kde_mi backward");
  if (!gx && !gz) return;
  kde_backward_kernel<<<unsigned(a.B), kKdeBlock, size_t(4 * a.T * a.W) * sizeof(float)>>>(x, z, stats, grad_mean, gx,
                                                                                           gz, a);
  SG_LAUNCH_CHECK();
}

}  // namespace spikegrad
