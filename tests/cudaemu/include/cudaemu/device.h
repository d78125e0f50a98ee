// cudaemu device side: what a .cu file sees of CUDA once tests/cudaemu/rewrite.cpp has turned its
// launches and __shared__ declarations into calls of this header. Each CUDA thread is a fiber; a block
// runs its threads until every live one waits (at __syncthreads or a warp collective), then the
// scheduler (runtime.cpp) checks and releases the wait. Blocks run one at a time, in the order that
// SPIKEGRAD_CUDAEMU_ORDER asks for (launch, reverse, random[:seed]).
#pragma once
#include <cuda_runtime_api.h>

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers: plain C++ on the CPU ------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__

namespace cudaemu {

// The running CUDA thread: its coordinates and those of its block and grid.
struct ThreadCoords {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
// The running thread's coordinates (aborts outside a kernel). Out of line: the thread_local it reads stays
// inside the scheduler's translation unit (an extern thread_local read from a fiber in another unit came
// out as a null address under the sanitizers).
ThreadCoords& coords();

// ---- shared memory (rewrite.cpp turns each __shared__ declaration into one of these) ----------------
// One allocation per declaration site and block, poisoned, with guard bytes checked when the block ends.
void* block_shared(const void* site, size_t bytes, size_t align, const char* name, const char* file, int line);
void* block_dynamic_shared(const char* name, const char* file, int line);
// `Tag` is a lambda type written at the declaration: a distinct key per site and per template instance.
template <class T, size_t Align, class Tag>
inline T& shared_var(Tag, const char* name, const char* file, int line) {
  static const char site = 0;
  return *static_cast<T*>(block_shared(&site, sizeof(T), Align < alignof(T) ? alignof(T) : Align, name, file, line));
}
template <class T>
inline T* dynamic_shared(const char* name, const char* file, int line) {
  return static_cast<T*>(block_dynamic_shared(name, file, line));
}

// ---- block barrier and warp collectives ------------------------------------------------------------
void syncthreads(const char* file, int line);

enum class WarpOpKind { SyncWarp, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All, Wmma };
const char* warp_op_name(WarpOpKind kind);

// One lane's part in a warp collective. The scheduler resolves a group once every lane named in the mask
// has arrived with the same kind and mask; `resolve` (for Wmma) then runs once over the whole group.
struct WarpRequest;
using WarpResolver = void (*)(WarpRequest* const* lanes, int lane_count);
struct WarpRequest {
  WarpOpKind kind;
  unsigned mask;
  const char* file;
  int line;
  unsigned long long value;  // shuffle/vote operand, bit pattern
  int arg;                   // source lane, delta or lane mask
  int width;
  unsigned long long result;
  WarpResolver resolve;  // Wmma only
  const char* op_name;   // Wmma only
  void* data;            // Wmma only: the lane's operands
  int lane;              // filled by the scheduler
};
void warp_collective(WarpRequest& request);
// Called by a resolver that finds the group's operands inconsistent: fails the launch, naming the lane.
void collective_fault(const WarpRequest& request, const std::string& what);

template <class T>
inline T warp_shuffle(WarpOpKind kind, const char* file, int line, unsigned mask, T value, int arg, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "cudaemu: shuffle of a type over 8 bytes");
  WarpRequest r{};
  r.kind = kind;
  r.mask = mask;
  r.file = file;
  r.line = line;
  std::memcpy(&r.value, &value, sizeof(T));
  r.arg = arg;
  r.width = width;
  warp_collective(r);
  T out;
  std::memcpy(&out, &r.result, sizeof(T));
  return out;
}
inline unsigned warp_vote(WarpOpKind kind, const char* file, int line, unsigned mask, int predicate) {
  WarpRequest r{};
  r.kind = kind;
  r.mask = mask;
  r.file = file;
  r.line = line;
  r.value = predicate != 0;
  r.width = 32;
  warp_collective(r);
  return unsigned(r.result);
}
inline void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu) {
  WarpRequest r{};
  r.kind = WarpOpKind::SyncWarp;
  r.mask = mask;
  r.file = file;
  r.line = line;
  r.width = 32;
  warp_collective(r);
}

// Violations so far in this process (kernel faults and API misuse); the test listener reads it.
int violation_count();

// Reports a violation from device code: the launch fails with this message, naming the thread.
[[noreturn]] void device_fault(const char* file, int line, const char* what);

// ---- launch -----------------------------------------------------------------------------------------
struct LaunchSite {
  const char* kernel;
  const char* file;
  int line;
};
// Runs `body(closure)` once per CUDA thread of the grid. `pointers` are the kernel's pointer arguments,
// checked to be device memory (or null) before anything runs.
void run_launch(const LaunchSite& site, dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream,
                void (*body)(void*), void* closure, const void* const* pointers, int pointer_count);

// `Fn` calls the kernel with the launch's arguments: rewrite.cpp wraps the kernel expression in a generic
// lambda, so template arguments are deduced from the call as CUDA does (kernel<View, 64><<<...>>>(args)).
template <class Fn>
struct PendingLaunch {
  Fn fn;
  LaunchSite site;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;

  template <class... A>
  void operator()(A&&... args) const {
    // Arguments are copied at the launch, as CUDA copies them into parameter memory; each thread then
    // receives its own copies through the kernel's by-value parameters.
    using Params = std::tuple<std::decay_t<A>...>;
    struct Closure {
      const Fn* fn;
      Params params;
    } closure{&fn, Params(std::forward<A>(args)...)};
    const void* pointers[sizeof...(A) + 1] = {};
    int count = 0;
    std::apply([&](const auto&... p) { (collect(p, pointers, count), ...); }, closure.params);
    auto body = [](void* c) {
      Closure& cl = *static_cast<Closure*>(c);
      std::apply(*cl.fn, cl.params);
    };
    run_launch(site, grid, block, smem, stream, body, &closure, pointers, count);
  }

 private:
  template <class T>
  static void collect(const T& value, const void** pointers, int& count) {
    if constexpr (std::is_pointer<T>::value) pointers[count++] = static_cast<const void*>(value);
  }
};

template <class Fn>
inline PendingLaunch<Fn> launch(Fn fn, const char* name, const char* file, int line, dim3 grid, dim3 block,
                                size_t smem = 0, cudaStream_t stream = 0) {
  return PendingLaunch<Fn>{fn, LaunchSite{name, file, line}, grid, block, smem, stream};
}

// Bit pattern written into fresh device and shared memory: NaN as a float or double, -1 as an integer.
constexpr unsigned char kPoisonByte = 0xFF;
template <class T>
inline T poison_value() {
  T v;
  std::memset(&v, kPoisonByte, sizeof(T));
  return v;
}

}  // namespace cudaemu

// ---- vector types, with CUDA's alignment (a misaligned float4 load faults on a GPU) -------------------------
struct __attribute__((aligned(8))) float2 {
  float x, y;
};
struct __attribute__((aligned(16))) float4 {
  float x, y, z, w;
};
struct __attribute__((aligned(16))) double2 {
  double x, y;
};
struct __attribute__((aligned(8))) int2 {
  int x, y;
};
struct __attribute__((aligned(16))) int4 {
  int x, y, z, w;
};
struct __attribute__((aligned(4))) uchar4 {
  unsigned char x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uchar4 make_uchar4(unsigned char x, unsigned char y, unsigned char z, unsigned char w) { return {x, y, z, w}; }

// CUDA's global min/max overloads for device code (mixed integer types meet at their common type).
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}

// ---- built-in variables ------------------------------------------------------------------------------
#define threadIdx (::cudaemu::coords().thread_idx)
#define blockIdx (::cudaemu::coords().block_idx)
#define blockDim (::cudaemu::coords().block_dim)
#define gridDim (::cudaemu::coords().grid_dim)
constexpr int warpSize = 32;

#define __syncthreads() ::cudaemu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::cudaemu::syncwarp(__FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_sync(...) ::cudaemu::warp_shuffle(::cudaemu::WarpOpKind::ShflIdx, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::cudaemu::warp_shuffle(::cudaemu::WarpOpKind::ShflUp, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) \
  ::cudaemu::warp_shuffle(::cudaemu::WarpOpKind::ShflDown, __FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::cudaemu::warp_shuffle(::cudaemu::WarpOpKind::ShflXor, __FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::cudaemu::warp_vote(::cudaemu::WarpOpKind::Ballot, __FILE__, __LINE__, mask, pred)
#define __any_sync(mask, pred) (::cudaemu::warp_vote(::cudaemu::WarpOpKind::Any, __FILE__, __LINE__, mask, pred) != 0)
#define __all_sync(mask, pred) (::cudaemu::warp_vote(::cudaemu::WarpOpKind::All, __FILE__, __LINE__, mask, pred) != 0)

// ---- atomics: a block's threads switch only at barriers and collectives, so a plain update is atomic --
namespace cudaemu {
template <class T, class Update>
inline T atomic_update(T* address, Update update) {
  const T old = *address;
  *address = update(old);
  return old;
}
}  // namespace cudaemu
template <class T>
inline T atomicAdd(T* a, T v) {
  return ::cudaemu::atomic_update(a, [v](T old) { return old + v; });
}
template <class T>
inline T atomicSub(T* a, T v) {
  return ::cudaemu::atomic_update(a, [v](T old) { return old - v; });
}
template <class T>
inline T atomicMax(T* a, T v) {
  return ::cudaemu::atomic_update(a, [v](T old) { return old < v ? v : old; });
}
template <class T>
inline T atomicMin(T* a, T v) {
  return ::cudaemu::atomic_update(a, [v](T old) { return v < old ? v : old; });
}
template <class T>
inline T atomicExch(T* a, T v) {
  return ::cudaemu::atomic_update(a, [v](T) { return v; });
}
template <class T>
inline T atomicCAS(T* a, T compare, T v) {
  return ::cudaemu::atomic_update(a, [compare, v](T old) { return old == compare ? v : old; });
}

// ---- intrinsics the kernels use. The _rn forms round each operation on its own: the emulated tree is
// compiled with -ffp-contract=off, so a*b cannot be fused with a following add either. -----------------
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __powf(float a, float b) { return std::pow(a, b); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
namespace cudaemu {
template <class To, class From>
inline To bit_copy(From v) {
  static_assert(sizeof(To) == sizeof(From), "cudaemu: bit copy between types of different sizes");
  To out;
  std::memcpy(&out, &v, sizeof out);
  return out;
}
}  // namespace cudaemu
inline float __int_as_float(int x) { return ::cudaemu::bit_copy<float>(x); }
inline int __float_as_int(float f) { return ::cudaemu::bit_copy<int>(f); }
inline unsigned __float_as_uint(float f) { return ::cudaemu::bit_copy<unsigned>(f); }
inline float __uint_as_float(unsigned x) { return ::cudaemu::bit_copy<float>(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
