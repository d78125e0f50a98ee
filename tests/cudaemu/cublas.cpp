// cudaemu cuBLAS stand-in: column-major SGEMM by Eigen, with cuBLAS's argument checks and its rule that
// beta = 0 never reads C (fresh device memory holds NaN poison here, so a violation shows).
#include <Eigen/Core>
#include <string>

#include "cublas_v2.h"
#include "internal.h"

struct cublasContext {
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using ConstMap = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;
using Map = Eigen::Map<Matrix, 0, Eigen::OuterStride<>>;

cublasStatus_t misuse(const std::string& what) {
  cudaemu::count_violation();
  std::fprintf(stderr, "cudaemu: %s\n", what.c_str());
  cudaemu::set_error(cudaErrorInvalidValue, what);
  return CUBLAS_STATUS_INVALID_VALUE;
}

// The bytes a column-major operand with `cols` columns of `rows` rows spans at leading dimension ld.
size_t span(int rows, int cols, int ld) { return cols == 0 ? 0 : (size_t(cols - 1) * ld + rows) * sizeof(float); }

cublasStatus_t gemm(const char* api, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                    const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta, float* C,
                    int ldc) {
  if (!h) return misuse(std::string(api) + ": null handle");
  if (ta == CUBLAS_OP_C || tb == CUBLAS_OP_C) return misuse(std::string(api) + ": CUBLAS_OP_C on real data");
  if (m < 0 || n < 0 || k < 0) return misuse(std::string(api) + ": negative dimension");
  const int a_rows = ta == CUBLAS_OP_N ? m : k, a_cols = ta == CUBLAS_OP_N ? k : m;
  const int b_rows = tb == CUBLAS_OP_N ? k : n, b_cols = tb == CUBLAS_OP_N ? n : k;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return misuse(std::string(api) + ": a leading dimension is smaller than its operand's rows (lda " +
                  std::to_string(lda) + ", ldb " + std::to_string(ldb) + ", ldc " + std::to_string(ldc) + ")");
  if (!alpha || !beta) return misuse(std::string(api) + ": null alpha or beta");
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (!cudaemu::is_device_range(C, span(m, n, ldc)) || (k > 0 && (!cudaemu::is_device_range(A, span(a_rows, a_cols, lda)) ||
                                                                  !cudaemu::is_device_range(B, span(b_rows, b_cols, ldb)))))
    return misuse(std::string(api) + ": A, B or C is not device memory of the extent its dimensions give");
  Map c(C, m, n, Eigen::OuterStride<>(ldc));
  Matrix product = Matrix::Zero(m, n);
  if (k > 0) {
    ConstMap a(A, a_rows, a_cols, Eigen::OuterStride<>(lda));
    ConstMap b(B, b_rows, b_cols, Eigen::OuterStride<>(ldb));
    if (ta == CUBLAS_OP_N && tb == CUBLAS_OP_N) product.noalias() = a * b;
    if (ta == CUBLAS_OP_T && tb == CUBLAS_OP_N) product.noalias() = a.transpose() * b;
    if (ta == CUBLAS_OP_N && tb == CUBLAS_OP_T) product.noalias() = a * b.transpose();
    if (ta == CUBLAS_OP_T && tb == CUBLAS_OP_T) product.noalias() = a.transpose() * b.transpose();
  }
  if (*beta == 0.f)
    c = *alpha * product;
  else
    c = *alpha * product + *beta * c;
  return CUBLAS_STATUS_SUCCESS;
}
}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return misuse("cublasSetMathMode: null handle");
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle || stream) return misuse("cublasSetStream: null handle, or not the default stream");
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE (see the cudaemu line on stderr)";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "unknown cuBLAS status";
}
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
  return gemm("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb, long long strideB,
                                         const float* beta, float* C, int ldc, long long strideC, int batch) {
  if (batch < 0) return misuse("cublasSgemmStridedBatched: negative batch count");
  for (int i = 0; i < batch; ++i) {
    const cublasStatus_t s = gemm("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A + i * strideA,
                                  lda, B + i * strideB, ldb, beta, C + i * strideC, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
  }
  return CUBLAS_STATUS_SUCCESS;
}
