// cudaemu wmma: the warp-collective halves of load/store/mma (declared in include/mma.h).
#include <cstdint>
#include <cstring>
#include <string>

#include "internal.h"
#include "mma.h"

namespace cudaemu::wmma_detail {

namespace {
float bits_and(float v, uint32_t mask) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u &= mask;
  std::memcpy(&v, &u, 4);
  return v;
}
// The tensor cores read a TF32 operand as the upper 19 bits of the float (sign, exponent, 10 mantissa bits).
float truncate_tf32(float v) { return bits_and(v, 0xffffe000u); }

Operands& operands(WarpRequest* r) { return *static_cast<Operands*>(r->data); }

// Load and store take one pointer and leading dimension for the whole warp: a lane that differs is a bug.
bool uniform(WarpRequest* const* lanes, int count) {
  const Operands& o0 = operands(lanes[0]);
  for (int i = 1; i < count; ++i) {
    const Operands& o = operands(lanes[i]);
    if (o.src != o0.src || o.dst != o0.dst || o.ldm != o0.ldm || o.col_major != o0.col_major) {
      collective_fault(*lanes[i], "lane " + std::to_string(lanes[i]->lane) +
                                      " passes a different pointer, leading dimension or layout than lane " +
                                      std::to_string(lanes[0]->lane));
      return false;
    }
  }
  return true;
}

size_t offset(const Operands& o, int r, int c) { return o.col_major ? size_t(c) * o.ldm + r : size_t(r) * o.ldm + c; }

void resolve_load(WarpRequest* const* lanes, int count) {
  if (!uniform(lanes, count)) return;
  for (int i = 0; i < count; ++i) {
    Operands& o = operands(lanes[i]);
    const int per_lane = o.rows * o.cols / 32, first = lanes[i]->lane * per_lane;
    for (int e = 0; e < per_lane; ++e) o.frag[e] = o.src[offset(o, (first + e) / o.cols, (first + e) % o.cols)];
  }
}

void resolve_store(WarpRequest* const* lanes, int count) {
  if (!uniform(lanes, count)) return;
  for (int i = 0; i < count; ++i) {
    Operands& o = operands(lanes[i]);
    const int per_lane = o.rows * o.cols / 32, first = lanes[i]->lane * per_lane;
    for (int e = 0; e < per_lane; ++e) o.dst[offset(o, (first + e) / o.cols, (first + e) % o.cols)] = o.a[e];
  }
}

void resolve_mma(WarpRequest* const* lanes, int count) {
  const Operands& o0 = operands(lanes[0]);
  const int M = o0.rows, N = o0.cols, K = o0.inner;
  float A[32 * 32], B[32 * 32], C[32 * 32];  // M, N, K <= 32 for every wmma shape
  const int na = M * K / 32, nb = K * N / 32, nc = M * N / 32;
  for (int i = 0; i < count; ++i) {  // gather first: d may alias c
    const Operands& o = operands(lanes[i]);
    const int l = lanes[i]->lane;
    for (int e = 0; e < na; ++e) A[l * na + e] = truncate_tf32(o.a[e]);
    for (int e = 0; e < nb; ++e) B[l * nb + e] = truncate_tf32(o.b[e]);
    for (int e = 0; e < nc; ++e) C[l * nc + e] = o.c[e];
  }
  for (int i = 0; i < count; ++i) {
    Operands& o = operands(lanes[i]);
    const int l = lanes[i]->lane;
    for (int e = 0; e < nc; ++e) {
      const int idx = l * nc + e, r = idx / N, c = idx % N;
      float acc = C[idx];
      for (int k = 0; k < K; ++k) acc += A[r * K + k] * B[k * N + c];  // TF32 products are exact in fp32
      o.frag[e] = acc;
    }
  }
}
}  // namespace

float round_tf32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return v;  // inf and NaN pass through
  u = (u + 0x1000u) & 0xffffe000u;                // nearest, ties away from zero (cvt.rna.tf32.f32)
  std::memcpy(&v, &u, 4);
  return v;
}

void collective(Operands& o, const char* name, const char* file, int line) {
  WarpRequest r{};
  r.kind = WarpOpKind::Wmma;
  r.mask = 0xffffffffu;
  r.file = file;
  r.line = line;
  r.op_name = name;
  r.data = &o;
  r.resolve = o.op == Op::Mma ? resolve_mma : o.op == Op::Store ? resolve_store : resolve_load;
  warp_collective(r);
}

}  // namespace cudaemu::wmma_detail
