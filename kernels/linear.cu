// CUDA linear: cuBLAS sgemm plus a bias-add and a column-sum kernel (see kernels/linear.h).
#include <climits>

#include "engine/cuda_handles.h"
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/linear.h"

namespace spikegrad {

namespace {
// y (N,O) row-major: y[i] += b[i mod O].
__global__ void add_bias_rows_kernel(float* y, const float* b, int64_t count, int64_t O) {
  SG_GRID_STRIDE(i, count) y[i] += b[i % O];
}

// db[o] += Σ_n gy[n,o]. A block owns kSumCols = 32 columns: threadIdx.x picks the column (a warp reads 32
// consecutive floats of a row), threadIdx.y (the warp) strides over the rows, and the kSumRows partial sums
// of a column are added in warp order (kernels/block_reduce.cuh). Each db[o] is written by one thread, so
// no atomics and the same order every run.
constexpr int kSumCols = 32;
constexpr int kSumRows = 8;
static_assert(kSumCols == 32, "column_sum_add_kernel: a warp must be one row of the block's columns");
__global__ void column_sum_add_kernel(const float* gy, float* db, int64_t N, int64_t O) {
  const int64_t o = int64_t(blockIdx.x) * kSumCols + threadIdx.x;
  float acc = 0.f;
  if (o < O)
    for (int64_t n = threadIdx.y; n < N; n += kSumRows) acc += gy[n * O + o];
  const float total = block_reduce_across_warps<kSumCols * kSumRows>(acc, SumOp{});
  if (threadIdx.y == 0 && o < O) db[o] += total;
}

void check_fits_cublas(const LinearShape& s, const char* what) {
  SG_CHECK(s.N <= INT_MAX && s.I <= INT_MAX && s.O <= INT_MAX,
           what << ": dimensions (N=" << s.N << ", in=" << s.I << ", out=" << s.O << ") exceed cuBLAS's int range");
}
}  // namespace

// Row-major A (r,c) is column-major Aᵀ (c,r) with leading dimension c, so each product below is
// written for the transposed result, which cuBLAS then stores as the row-major one we want.
void linear_forward_cuda(const float* x, const float* w, const float* b, float* y, const LinearShape& s) {
  check_fits_cublas(s, "linear forward");
  if (s.N == 0 || s.O == 0) return;
  const float one = 1.f, zero = 0.f;
  // yᵀ (O,N) = w (O,I) · xᵀ (I,N): w is stored as column-major (I,O), hence OP_T.
  CUBLAS_CHECK(cublasSgemm(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, int(s.O), int(s.N), int(s.I), &one, w, int(s.I),
                           x, int(s.I), &zero, y, int(s.O)));
  if (b) {
    const int64_t count = s.N * s.O;
    SG_LAUNCH_1D(add_bias_rows_kernel, count, y, b, count, s.O);
  }
}

void linear_backward_cuda(const float* x, const float* w, const float* gy, float* gx, float* gw, float* gb,
                          const LinearShape& s) {
  check_fits_cublas(s, "linear backward");
  if (s.N == 0 || s.O == 0) return;
  const float one = 1.f;  // beta = 1: accumulate into the gradient buffers
  if (gx) {
    // dxᵀ (I,N) += wᵀ (I,O) · gyᵀ (O,N): w and gy are stored exactly as those column-major operands.
    CUBLAS_CHECK(cublasSgemm(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, int(s.I), int(s.N), int(s.O), &one, w, int(s.I),
                             gy, int(s.O), &one, gx, int(s.I)));
  }
  if (gw) {
    // dwᵀ (I,O) += xᵀ (I,N) · gy (N,O): gy is stored as column-major (O,N), hence OP_T.
    CUBLAS_CHECK(cublasSgemm(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, int(s.I), int(s.O), int(s.N), &one, x, int(s.I),
                             gy, int(s.O), &one, gw, int(s.I)));
  }
  if (gb) {
    const dim3 block(kSumCols, kSumRows);
    column_sum_add_kernel<<<unsigned(ceil_div(s.O, kSumCols)), block>>>(gy, gb, s.N, s.O);
    SG_LAUNCH_CHECK();
  }
}

}  // namespace spikegrad
