// CPU linear: Eigen GEMM over row-major maps, and the plain-loop reference (see kernels/linear.h).
#include <Eigen/Core>

#include "kernels/linear.h"

namespace spikegrad {

namespace {
template <class T> using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <class T> using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;
template <class T> using RowVectorMap = Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>;
template <class T> using ConstRowVectorMap = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;
}  // namespace

template <class T> void linear_forward_naive_cpu(const T* x, const T* w, const T* b, T* y, const LinearShape& s) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.O; ++o) {
      T acc = b ? b[o] : T(0);
      for (int64_t i = 0; i < s.I; ++i) acc += x[n * s.I + i] * w[o * s.I + i];
      y[n * s.O + o] = acc;
    }
}

template <class T> void linear_forward_cpu(const T* x, const T* w, const T* b, T* y, const LinearShape& s) {
  MatrixMap<T> out(y, s.N, s.O);
  out.noalias() = ConstMatrixMap<T>(x, s.N, s.I) * ConstMatrixMap<T>(w, s.O, s.I).transpose();
  if (b) out.rowwise() += ConstRowVectorMap<T>(b, s.O);
}

template <class T>
void linear_backward_cpu(const T* x, const T* w, const T* gy, T* gx, T* gw, T* gb, const LinearShape& s) {
  const ConstMatrixMap<T> gy_matrix(gy, s.N, s.O);
  if (gx) MatrixMap<T>(gx, s.N, s.I).noalias() += gy_matrix * ConstMatrixMap<T>(w, s.O, s.I);
  if (gw) MatrixMap<T>(gw, s.O, s.I).noalias() += gy_matrix.transpose() * ConstMatrixMap<T>(x, s.N, s.I);
  if (gb) RowVectorMap<T>(gb, s.O) += gy_matrix.colwise().sum();
}

#define SG_INSTANTIATE(T)                                                                           \
  template void linear_forward_naive_cpu<T>(const T*, const T*, const T*, T*, const LinearShape&); \
  template void linear_forward_cpu<T>(const T*, const T*, const T*, T*, const LinearShape&);       \
  template void linear_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, const LinearShape&);
SG_INSTANTIATE(float)
SG_INSTANTIATE(double)
#undef SG_INSTANTIATE

}  // namespace spikegrad
