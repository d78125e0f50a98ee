// Dense KDE mutual information on CUDA: the reference implementation's formulation (full (T,bins)
// kernels, (bins,bins) joints by batched GEMM), kept as the baseline that bench/bench_kde_mi runs next to
// the fused kernel, and tested against the CPU dense reference. Layouts, per sample b:
//   Kx, Kz, dKx, dKz: (B, T, bins) row-major = column-major (bins x T) matrices with ld = bins
//   joint:            (B, bins, bins) column-major: J[i,j] at joint[b*bins^2 + j*bins + i]
// Forward: J = Kx^T Kz as C(bins x bins) = Kx_cm * Kz_cm^T (k = T). Backward: the joint buffer is
// overwritten by D = dMI/dJ, then dKx_cm = D * Kz_cm and dKz_cm = D^T * Kx_cm (k = bins).
// Bytes at B=64, bins=256: the joint is 16 MiB, written by the GEMM, read twice by the statistics, read
// and written by D, read by two GEMMs: ~100 MiB of traffic plus 3 * 17M-FMA GEMMs per step.
#include "engine/cuda_check.h"
#include "engine/cuda_handles.h"
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/kde_mi.h"

namespace spikegrad {

namespace {

constexpr int kDenseBlock = 256;

struct DenseBuffers {
  float *kx, *kz, *dkx, *dkz, *joint;
};
DenseBuffers split_workspace(float* ws, const KdeMiParams& p) {
  const int64_t k = p.B * p.T * p.bins;
  return DenseBuffers{ws, ws + k, ws + 2 * k, ws + 3 * k, ws + 4 * k};
}

__global__ void dense_kernels_kernel(const float* x, const float* z, float* kx, float* kz, int64_t T, int64_t B, int bins,
                                     float sigma) {
  SG_GRID_STRIDE(idx, B * T * bins) {
    const int64_t b = idx / (T * bins), t = (idx / bins) % T;
    const int i = int(idx % bins);
    kx[idx] = kde_kernel(x[t * B + b], i, sigma);
    kz[idx] = kde_kernel(z[t * B + b], i, sigma);
  }
}

// One block per sample: marginals (kept in shared memory), normalisers and the three entropies.
__global__ void dense_stats_kernel(const float* kx, const float* kz, const float* joint, float* stats, int T, int bins,
                                   float eps) {
  extern __shared__ float marg[];  // [2][bins]
  const int64_t b = blockIdx.x;
  const float* kxb = kx + b * T * bins;
  const float* kzb = kz + b * T * bins;
  const float* jb = joint + b * int64_t(bins) * bins;
  const int64_t cells = int64_t(bins) * bins;
  float norm[3] = {0.f, 0.f, 0.f};  // ux, uz, uxz
  for (int i = threadIdx.x; i < bins; i += blockDim.x) {
    marg[i] = kde_dense_marginal(kxb, T, bins, i);
    marg[bins + i] = kde_dense_marginal(kzb, T, bins, i);
    norm[0] += marg[i];
    norm[1] += marg[bins + i];
  }
  for (int64_t c = threadIdx.x; c < cells; c += blockDim.x) norm[2] += jb[c];
  block_reduce_each<kDenseBlock>(norm, SumOp{});  // in every thread; also orders the marg writes before the reads
  const float ux = norm[0], uz = norm[1], uxz = norm[2];

  float acc[kKdeEntropySums] = {};  // hx, cx, hz, cz, hxz, cxz
  for (int i = threadIdx.x; i < bins; i += blockDim.x) {
    kde_entropy_add(marg[i] / (ux + eps), eps, acc[0], acc[1]);
    kde_entropy_add(marg[bins + i] / (uz + eps), eps, acc[2], acc[3]);
  }
  for (int64_t c = threadIdx.x; c < cells; c += blockDim.x) kde_entropy_add(jb[c] / (uxz + eps), eps, acc[4], acc[5]);
  block_reduce_each<kDenseBlock>(acc, SumOp{});
  if (threadIdx.x == 0) {
    float* st = stats + b * kKdeStatCount;
    kde_store_stats(st, acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], ux, uz, uxz);
  }
}

// joint -> D = dMI/dJ = -gm (g(P) - cxz) / (Uxz + eps), in place.
__global__ void dense_dj_kernel(float* joint, const float* stats, const float* gmean, int64_t B, int bins, float eps) {
  const int64_t cells = int64_t(bins) * bins;
  const float gm = gmean[0] / float(B);
  SG_GRID_STRIDE(idx, B * cells) {
    const float* st = stats + (idx / cells) * kKdeStatCount;
    const float norm = st[kKdeUxz] + eps;
    joint[idx] = -gm * (kde_entropy_grad(joint[idx] / norm, eps) - st[kKdeCxz]) / norm;
  }
}

// One block per (t, b, side): dv_t = sum_i (dK[t,i] + marginal term_i) * dK/dv. The side is blockIdx.y +
// first_side (a launch may cover one side only).
__global__ void dense_grad_kernel(const float* x, const float* z, const float* kx, const float* kz, const float* dkx,
                                  const float* dkz, const float* stats, const float* gmean, float* gx, float* gz,
                                  int T, int B, int bins, float sigma, float eps, int first_side) {
  const int t = blockIdx.x / B, b = blockIdx.x % B;
  const bool zside = int(blockIdx.y) + first_side == 1;
  float* g = zside ? gz : gx;
  if (!g) return;  // uniform per block, before any barrier
  const float* k = (zside ? kz : kx) + int64_t(b) * T * bins;
  const float* dk = (zside ? dkz : dkx) + (int64_t(b) * T + t) * bins;
  const float v = (zside ? z : x)[int64_t(t) * B + b];
  const float* st = stats + int64_t(b) * kKdeStatCount;
  const float u = st[zside ? kKdeUz : kKdeUx], c = st[zside ? kKdeCz : kKdeCx];
  const float gm = gmean[0] / float(B);
  float acc = 0.f;
  for (int i = threadIdx.x; i < bins; i += blockDim.x) {
    const float m = kde_dense_marginal(k, T, bins, i);
    const float dm = gm * (kde_entropy_grad(m / (u + eps), eps) - c) / (u + eps);
    acc += (dk[i] + dm / float(T)) * kde_kernel_dv(k[t * bins + i], v, i, sigma);
  }
  const float sum = block_sum<kDenseBlock>(acc);
  if (threadIdx.x == 0) g[int64_t(t) * B + b] += sum;
}

void check_dense(const KdeMiParams& p) {
  SG_CHECK(p.T >= 1 && p.B >= 1 && p.T * p.B <= int64_t(INT32_MAX),
           "kde_mi_dense: T and B must be >= 1 with T*B < 2^31, got T=" << p.T << " B=" << p.B);
  SG_CHECK(p.bins >= 1 && p.bins <= 4096, "kde_mi_dense: bins must be in [1, 4096], got " << p.bins);
}

}  // namespace

void kde_mi_dense_forward_cuda(const float* x, const float* z, float* stats, float* mean_mi, float* workspace,
                               const KdeMiParams& p) {
  check_dense(p);
  const DenseBuffers w = split_workspace(workspace, p);
  const int bins = p.bins, T = int(p.T);
  SG_LAUNCH_1D(dense_kernels_kernel, p.B * p.T * bins, x, z, w.kx, w.kz, p.T, p.B, bins, float(p.sigma));
  const float one = 1.f, zero = 0.f;
  CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, bins, bins, T, &one, w.kx, bins,
                                         int64_t(T) * bins, w.kz, bins, int64_t(T) * bins, &zero, w.joint, bins,
                                         int64_t(bins) * bins, int(p.B)));
  dense_stats_kernel<<<unsigned(p.B), kDenseBlock, size_t(2 * bins) * sizeof(float)>>>(w.kx, w.kz, w.joint, stats, T,
                                                                                       bins, float(p.eps));
  SG_LAUNCH_CHECK();
  kde_mi_batch_mean_cuda(stats, p.B, mean_mi);
}

void kde_mi_dense_backward_cuda(const float* x, const float* z, const float* stats, const float* gmean, float* gx,
                                float* gz, float* workspace, const KdeMiParams& p) {
  check_dense(p);
  if (!gx && !gz) return;
  const DenseBuffers w = split_workspace(workspace, p);
  const int bins = p.bins, T = int(p.T);
  SG_LAUNCH_1D(dense_dj_kernel, p.B * int64_t(bins) * bins, w.joint, stats, gmean, p.B, bins, float(p.eps));
  const float one = 1.f, zero = 0.f;
  // dKx_cm (bins x T) = D (bins x bins) * Kz_cm;  dKz_cm = D^T * Kx_cm.
  CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, bins, T, bins, &one, w.joint, bins,
                                         int64_t(bins) * bins, w.kz, bins, int64_t(T) * bins, &zero, w.dkx, bins,
                                         int64_t(T) * bins, int(p.B)));
  CUBLAS_CHECK(cublasSgemmStridedBatched(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, bins, T, bins, &one, w.joint, bins,
                                         int64_t(bins) * bins, w.kx, bins, int64_t(T) * bins, &zero, w.dkz, bins,
                                         int64_t(T) * bins, int(p.B)));
  // gx == gz when x and z are one tensor: then the sides go in two launches, since blocks of both sides
  // adding into one element concurrently would lose updates.
  const bool aliased = gx != nullptr && gx == gz;
  for (int side = 0; side < (aliased ? 2 : 1); ++side) {
    dense_grad_kernel<<<dim3(unsigned(p.B * p.T), aliased ? 1 : 2), kDenseBlock>>>(
        x, z, w.kx, w.kz, w.dkx, w.dkz, stats, gmean, gx, gz, T, int(p.B), bins, float(p.sigma), float(p.eps), side);
    SG_LAUNCH_CHECK();
  }
}

}  // namespace spikegrad
