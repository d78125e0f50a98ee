// cudaemu: nvcuda::wmma for the emulated backend. A fragment's elements are spread over the warp's 32
// lanes (lane l holds elements l*num_elements ... of the row-major tile); the layout is not NVIDIA's,
// which CUDA leaves unspecified, so code may only touch fragment elements uniformly, as CUDA allows.
// load/store/mma are warp collectives: every lane of the warp must call them with the same arguments.
// mma_sync on TF32 operands uses the upper 19 bits of each float (as the tensor cores do) and adds the
// exact products to the fp32 accumulator in k order.
#pragma once
#include <type_traits>

#include "cudaemu/device.h"

namespace cudaemu::wmma_detail {
enum class Op { LoadA, LoadB, LoadC, Store, Mma };
struct Operands {
  Op op;
  int rows, cols, inner;  // fragment tile; inner = K for mma
  float* frag;            // this lane's elements (d for mma)
  const float* a;         // mma: this lane's a, b, c elements
  const float* b;
  const float* c;
  const float* src;  // load
  float* dst;        // store
  unsigned ldm;
  bool col_major;
};
void collective(Operands& operands, const char* name, const char* file, int line);
float round_tf32(float v);
}  // namespace cudaemu::wmma_detail

namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
  static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
  static_assert(rows * cols % 32 == 0, "cudaemu: fragment tile must split evenly over 32 lanes");
  static constexpr int num_elements = rows * cols / 32;
  using element_type = std::conditional_t<std::is_same<T, precision::tf32>::value, float, T>;
  static_assert(std::is_same<element_type, float>::value, "cudaemu: only float / tf32 fragments are emulated");
  element_type x[num_elements];
};

template <class Use, int M, int N, int K, class T, class L>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = v;
}

inline float __float_to_tf32(float v) { return ::cudaemu::wmma_detail::round_tf32(v); }

namespace detail {
template <class Use, int M, int N, int K, class T, class L>
inline void load(fragment<Use, M, N, K, T, L>& f, const float* p, unsigned ldm, bool col_major, const char* file,
                 int line) {
  using namespace ::cudaemu::wmma_detail;
  Operands o{};
  o.op = std::is_same<Use, matrix_a>::value ? Op::LoadA : std::is_same<Use, matrix_b>::value ? Op::LoadB : Op::LoadC;
  o.rows = f.rows;
  o.cols = f.cols;
  o.frag = f.x;
  o.src = p;
  o.ldm = ldm;
  o.col_major = col_major;
  collective(o, "wmma::load_matrix_sync", file, line);
}
}  // namespace detail
}  // namespace nvcuda::wmma

namespace cudaemu::wmma_detail {
// The macros below pass the call site; these overloads pick the layout from the fragment type.
template <class Use, int M, int N, int K, class T>
inline void load_matrix(const char* file, int line, nvcuda::wmma::fragment<Use, M, N, K, T, nvcuda::wmma::row_major>& f,
                        const float* p, unsigned ldm) {
  nvcuda::wmma::detail::load(f, p, ldm, false, file, line);
}
template <class Use, int M, int N, int K, class T>
inline void load_matrix(const char* file, int line, nvcuda::wmma::fragment<Use, M, N, K, T, nvcuda::wmma::col_major>& f,
                        const float* p, unsigned ldm) {
  nvcuda::wmma::detail::load(f, p, ldm, true, file, line);
}
template <int M, int N, int K>
inline void load_matrix(const char* file, int line, nvcuda::wmma::fragment<nvcuda::wmma::accumulator, M, N, K, float>& f,
                        const float* p, unsigned ldm, nvcuda::wmma::layout_t layout) {
  nvcuda::wmma::detail::load(f, p, ldm, layout == nvcuda::wmma::mem_col_major, file, line);
}
template <int M, int N, int K>
inline void store_matrix(const char* file, int line, float* p,
                         const nvcuda::wmma::fragment<nvcuda::wmma::accumulator, M, N, K, float>& f, unsigned ldm,
                         nvcuda::wmma::layout_t layout) {
  Operands o{};
  o.op = Op::Store;
  o.rows = M;
  o.cols = N;
  o.a = f.x;
  o.dst = p;
  o.ldm = ldm;
  o.col_major = layout == nvcuda::wmma::mem_col_major;
  collective(o, "wmma::store_matrix_sync", file, line);
}
template <int M, int N, int K, class LA, class LB>
inline void mma(const char* file, int line, nvcuda::wmma::fragment<nvcuda::wmma::accumulator, M, N, K, float>& d,
                const nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, M, N, K, nvcuda::wmma::precision::tf32, LA>& a,
                const nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, M, N, K, nvcuda::wmma::precision::tf32, LB>& b,
                const nvcuda::wmma::fragment<nvcuda::wmma::accumulator, M, N, K, float>& c) {
  Operands o{};
  o.op = Op::Mma;
  o.rows = M;
  o.cols = N;
  o.inner = K;
  o.frag = d.x;
  o.a = a.x;
  o.b = b.x;
  o.c = c.x;
  collective(o, "wmma::mma_sync", file, line);
}
}  // namespace cudaemu::wmma_detail

#define load_matrix_sync(...) load_matrix_sync_at(__FILE__, __LINE__, __VA_ARGS__)
#define store_matrix_sync(...) store_matrix_sync_at(__FILE__, __LINE__, __VA_ARGS__)
#define mma_sync(...) mma_sync_at(__FILE__, __LINE__, __VA_ARGS__)
namespace nvcuda::wmma {
template <class... A>
inline void load_matrix_sync_at(const char* file, int line, A&&... a) {
  ::cudaemu::wmma_detail::load_matrix(file, line, std::forward<A>(a)...);
}
template <class... A>
inline void store_matrix_sync_at(const char* file, int line, A&&... a) {
  ::cudaemu::wmma_detail::store_matrix(file, line, std::forward<A>(a)...);
}
template <class... A>
inline void mma_sync_at(const char* file, int line, A&&... a) {
  ::cudaemu::wmma_detail::mma(file, line, std::forward<A>(a)...);
}
}  // namespace nvcuda::wmma
