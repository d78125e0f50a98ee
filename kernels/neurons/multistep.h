// The multi-step neuron template: runs any neuron (kernels/neurons/neuron_defs.h) over time-major input.
//
// Shapes: x, spikes, gx (T, n) with n = B*C*H*W (the op's (T,B,...) flattened); records (kSaved, T, n);
// x_mean (n); params (kParams). All contiguous. Every forward starts from State{} (v = 0).
//
// Forward, t = 0..T-1 per neuron: h = charge(S, x_t); s_t = fire(h - threshold(S)); S = next(S, h, s_t).
// Backward (BPTT), t = T-1..0, carrying g_S = dL/dS_t in registers:
//   S_{t-1} = after(record_{t-1})  (State{} at t = 0);  u = h_t - theta_t;  s = fire(u)
//   next_vjp: g_h += dS_t/dh . g_S,  g_s = gspikes[t] + dS_t/ds . g_S (0 with detach_reset)
//   g_u = g_s * sg(u);  g_h += g_u;  threshold_vjp(-g_u);  gx[t] += charge_vjp(g_h)   -> g_S = dL/dS_{t-1}
// For LIF this is reference.md §2's recursion: g_h = g_s sg(h-1) + g_v ((1-s) - h sg(h-1)), g_v[t-1] = 0.5 g_h.
// RGA backward (reference.md §5.3, any neuron): gx[t] += gspikes[t] * g(mean_t x), with
//   g(m) = [1-tau <= m <= 2] (1 - gamma + gamma tau)/(tau + 1) + [0 <= m <= 1-tau] gamma   (ext = des = 1).
// All backward outputs ACCUMULATE (+=). gparams accumulates the sum over t and n of the per-step
// parameter gradients; both backends add per-thread partials in double and reduce them in a fixed order,
// so the result is deterministic.
//
// Memory (item 4). Saved for BPTT: the record only, kSaved values per neuron per step, 4 B for LIF/IF/PLIF
// in float32 (h; the spike and the state are recomputed from it). Saved for RGA: x_mean, 4 B per neuron
// for all T steps together. (The tape also holds the input x and the output spikes, as for any op.) A
// per-time-step autograd implementation (PyTorch TET/TMI LIFSpike) keeps per step u = h - 1, h, (1 - s)
// and the per-step spike before stacking: 16 B per neuron per step, plus T graph nodes per layer.
// Traffic per neuron per step, float32 (bench/bench_neuron.cpp): forward without grad 8 B (x, s), training
// forward 12 B (x, s, h), BPTT backward 16 B (gspikes, h, read and write gx).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/neurons/neuron_defs.h"

namespace spikegrad::neurons {

// Input policies: how the forward reads the input current x_t of neuron i (flat offset at = t*count + i).
// coef(i) is read once per neuron (outside the time loop), load(coef, at) once per step.
// DirectInput: x as given.
template <class T> struct DirectInput {
  const T* x;
  struct Coef {};
  SG_HD Coef coef(int64_t) const { return {}; }
  void coefs(int64_t, int64_t, Coef*) const {}
  SG_HD T load(const Coef&, int64_t at) const { return x[at]; }
};
// BnInput: batch norm applied on the fly, the fused BN + neuron forward. x is the (T·B, C, S) conv output
// flattened time-major; neuron i of a step belongs to channel (i / S) % C, and its input current is
// bn_normalize(x, mean_c, invstd_c, weight_c, bias_c) (kernels/batch_norm.h) — the same function the
// unfused BN uses, so both paths compute the same current. The normalised tensor is never written.
template <class T> struct BnInput {
  const T* x;
  const T *mean, *invstd, *weight, *bias;  // (C) each
  int64_t C, S;
  struct Coef {
    T mean, invstd, weight, bias;
  };
  SG_HD Coef coef(int64_t i) const {
    const int64_t c = (i / S) % C;
    return {mean[c], invstd[c], weight[c], bias[c]};
  }
  // coef(i0 + j) for j < len, walking the channel instead of dividing per neuron (CPU chunks).
  void coefs(int64_t i0, int64_t len, Coef* out) const {
    int64_t c = (i0 / S) % C, pos = i0 % S;
    for (int64_t j = 0; j < len; ++j) {
      out[j] = {mean[c], invstd[c], weight[c], bias[c]};
      if (++pos == S) {
        pos = 0;
        if (++c == C) c = 0;
      }
    }
  }
  SG_HD T load(const Coef& k, int64_t at) const { return bn_normalize(x[at], k.mean, k.invstd, k.weight, k.bias); }
};

template <class N, class T> using StateOf = typename N::template State<T>;
// Room for kParams values (at least one: C++ has no zero-length arrays).
template <class N> constexpr int kParamSlots = N::kParams > 0 ? N::kParams : 1;

// One forward step of one neuron; writes the record of the step into rec[0..kSaved). F is Firing or, on
// the CPU, a StepFiring equal to it.
template <class N, class T, class F>
SG_HD T forward_step(const N& n, const F& f, StateOf<N, T>& s, T x, const T* p, T* rec) {
  const T h = n.charge(s, x, p);
  const T spike = f.spike(h - n.threshold(s, p));
  n.save(s, h, rec);
  s = n.next(s, h, spike, p);
  return spike;
}

// One backward step: prev = S_{t-1}, rec = record t. g_state holds dL/dS_t on entry and dL/dS_{t-1} on exit;
// g_params (kParams) receives this step's parameter gradient; returns dL/dx_t.
template <class N, class T, class F>
SG_HD T backward_step(const N& n, const F& f, bool detach_reset, const StateOf<N, T>& prev, const T* rec,
                      T gspike, const T* p, StateOf<N, T>& g_state, T* g_params) {
  const T h = rec[0];
  const T u = h - n.threshold(prev, p);
  const T spike = f.spike(u);
  StateOf<N, T> g_prev{};
  T g_h = T(0), g_s = gspike;
  n.next_vjp(prev, h, spike, g_state, p, detach_reset, g_prev, g_h, g_s, g_params);
  const T g_u = g_s * f.grad(u);
  g_h += g_u;
  n.threshold_vjp(prev, -g_u, p, g_prev, g_params);
  const T g_x = n.charge_vjp(prev, h, g_h, p, g_prev, g_params);
  g_state = g_prev;
  return g_x;
}

template <class T> SG_HD T rga_factor(T mean, T tau, T gamma) {
  T g = T(0);
  if (mean >= T(1) - tau && mean <= T(2)) g += (T(1) - gamma + gamma * tau) / (tau + T(1));
  if (mean >= T(0) && mean <= T(1) - tau) g += gamma;
  return g;
}

// ---- CPU reference -------------------------------------------------------------------------------------
// Neurons are processed in chunks of kCpuChunk with time as the outer loop, so every access is a
// contiguous run (a neuron-major walk would stride by n floats per step). Chunks run under OpenMP; the
// parameter gradient keeps one partial per chunk and adds them in chunk order (deterministic).
constexpr int64_t kCpuChunk = 256;
// Only where OpenMP is on: nvcc parses this header for .cu files without -fopenmp.
#if defined(_OPENMP)
#define SG_NEURON_OMP_FOR _Pragma("omp parallel for schedule(static)")
#else
#define SG_NEURON_OMP_FOR
#endif

// Firing::spike of a non-smooth Firing with the strictness fixed at compile time: the same values, without
// the per-element branches on smooth, strict and the surrogate kind, so a chunk's inner loop vectorises.
template <bool Strict> struct StepFiring {
  template <class T> SG_HD T spike(T u) const { return (Strict ? u > T(0) : u >= T(0)) ? T(1) : T(0); }
};
// The backward's counterpart for the default surrogate: a non-smooth Firing with the triangle, its
// strictness fixed at compile time. It is a Firing (neurons' after() take one), whose spike and grad it
// replaces by the same formulas without the runtime branches.
template <bool Strict> struct TriangleStepFiring : Firing {
  explicit TriangleStepFiring(const Firing& f) : Firing(f) {}
  template <class T> SG_HD T spike(T u) const { return (Strict ? u > T(0) : u >= T(0)) ? T(1) : T(0); }
  template <class T> SG_HD T grad(T u) const {
    const T a = T(alpha);
    const T r = a - nabs(u);
    return r > T(0) ? r / (a * a) : T(0);
  }
};
template <class Body> void with_backward_firing(const Firing& f, Body&& body) {
  if (f.smooth || f.kind != SurrogateKind::triangle) {
    body(f);
  } else if (f.strict) {
    body(TriangleStepFiring<true>(f));
  } else {
    body(TriangleStepFiring<false>(f));
  }
}

// body(firing) with the cheapest firing object that computes what `f` computes in the forward.
template <class Body> void with_forward_firing(const Firing& f, Body&& body) {
  if (f.smooth) {
    body(f);
  } else if (f.strict) {
    body(StepFiring<true>{});
  } else {
    body(StepFiring<false>{});
  }
}

// One chunk of neurons [i0, i0 + len) forward over all steps. Writes spikes (may be null), x_mean (may be
// null) and hands each step's record to put_record(t, j, rec) (j = neuron within the chunk).
template <class N, class T, class In, class F, class PutRecord>
void forward_chunk(const N& n, const F& f, const In& in, const T* p, T* spikes, T* x_mean, int64_t steps,
                   int64_t count, int64_t i0, int64_t len, PutRecord&& put_record) {
  StateOf<N, T> state[kCpuChunk];
  typename In::Coef coef[kCpuChunk];
  T sum[kCpuChunk];
  for (int64_t j = 0; j < len; ++j) state[j] = StateOf<N, T>{}, sum[j] = T(0);
  in.coefs(i0, len, coef);
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = t * count + i0 + j;
      T rec[N::kSaved];
      const T xt = in.load(coef[j], i);
      const T spike = forward_step(n, f, state[j], xt, p, rec);
      if (spikes) spikes[i] = spike;
      put_record(t, j, rec);
      sum[j] += xt;
    }
  }
  if (x_mean)
    for (int64_t j = 0; j < len; ++j) x_mean[i0 + j] = sum[j] / T(steps);
}

// BPTT over one chunk of neurons; record_at(t, j, rec) fills the record of neuron i0 + j at step t. Adds
// dL/dx into gx (may be null) and the chunk's parameter gradient into acc (kParams doubles).
template <class N, class T, class F, class RecordAt>
void backward_chunk(const N& n, const F& f, bool detach_reset, const T* gspikes, const T* p, T* gx,
                    double* acc, int64_t steps, int64_t count, int64_t i0, int64_t len, RecordAt&& record_at) {
  constexpr int kP = kParamSlots<N>;
  StateOf<N, T> g_state[kCpuChunk];
  for (int64_t j = 0; j < len; ++j) g_state[j] = StateOf<N, T>{};
  for (int64_t t = steps - 1; t >= 0; --t) {
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = i0 + j;
      StateOf<N, T> prev{};
      T rec[N::kSaved], rec_prev[N::kSaved];
      if (t > 0) {
        record_at(t - 1, j, rec_prev);
        prev = n.after(rec_prev, f, p);
      }
      record_at(t, j, rec);
      T g_step[kP] = {};
      const T gx_t = backward_step(n, f, detach_reset, prev, rec, gspikes[t * count + i], p, g_state[j], g_step);
      if (gx) gx[t * count + i] += gx_t;
      for (int k = 0; k < N::kParams; ++k) acc[k] += double(g_step[k]);
    }
  }
}

// records may be null (no backward to come), x_mean may be null (not RGA), spikes may be null. `in` is an
// input policy (DirectInput, BnInput).
template <class N, class T, class In>
void multistep_forward_input_cpu(const N& n, const Firing& f, const In& in, const T* params, T* spikes, T* records,
                                 T* x_mean, int64_t steps, int64_t count) {
  T p[kParamSlots<N>] = {};
  for (int k = 0; k < N::kParams; ++k) p[k] = params[k];
  const int64_t chunks = (count + kCpuChunk - 1) / kCpuChunk;
  with_forward_firing(f, [&](const auto& firing) {
    // A local copy: clang rejects a nested lambda in an OpenMP loop naming the enclosing function's parameter.
    T* const records_out = records;
SG_NEURON_OMP_FOR
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kCpuChunk, len = std::min(kCpuChunk, count - i0);
      forward_chunk(n, firing, in, p, spikes, x_mean, steps, count, i0, len, [&](int64_t t, int64_t j, const T* rec) {
        if (records_out)
          for (int k = 0; k < N::kSaved; ++k) records_out[(k * steps + t) * count + i0 + j] = rec[k];
      });
    }
  });
}
template <class N, class T>
void multistep_forward_cpu(const N& n, const Firing& f, const T* x, const T* params, T* spikes, T* records,
                           T* x_mean, int64_t steps, int64_t count) {
  multistep_forward_input_cpu<N, T>(n, f, DirectInput<T>{x}, params, spikes, records, x_mean, steps, count);
}

namespace cpu_detail {
// Sums the per-chunk parameter partials in chunk order (deterministic) into gparams.
template <class T>
void add_param_partials(const std::vector<double>& partial, int64_t chunks, int params, T* gparams) {
  if (!gparams) return;
  const int slots = std::max(params, 1);
  for (int k = 0; k < params; ++k) {
    double total = 0;
    for (int64_t c = 0; c < chunks; ++c) total += partial[size_t(c * slots + k)];
    gparams[k] += T(total);
  }
}
}  // namespace cpu_detail

// gx and gparams may each be null (that gradient is not wanted).
template <class N, class T>
void multistep_backward_cpu(const N& n, const Firing& f, bool detach_reset, const T* gspikes, const T* records,
                            const T* params, T* gx, T* gparams, int64_t steps, int64_t count) {
  constexpr int kP = kParamSlots<N>;
  T p[kP] = {};
  for (int k = 0; k < N::kParams; ++k) p[k] = params[k];
  const int64_t chunks = (count + kCpuChunk - 1) / kCpuChunk;
  std::vector<double> partial(size_t(chunks * kP), 0.0);
  with_backward_firing(f, [&](const auto& firing) {
    const T* const records_in = records;  // a local copy, for clang (see multistep_forward_input_cpu)
SG_NEURON_OMP_FOR
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kCpuChunk, len = std::min(kCpuChunk, count - i0);
      backward_chunk(n, firing, detach_reset, gspikes, p, gx, &partial[size_t(c * kP)], steps, count, i0,
                     len, [&](int64_t t, int64_t j, T* rec) {
                       for (int k = 0; k < N::kSaved; ++k) rec[k] = records_in[(k * steps + t) * count + i0 + j];
                     });
    }
  });
  cpu_detail::add_param_partials(partial, chunks, N::kParams, gparams);
}

// BPTT without saved records: each chunk first re-runs the forward from `in` (the same forward_chunk, so the
// records are bit-identical to the ones a forward would have saved) into a chunk-local buffer that stays
// in cache, then runs the backward from it. Used by the fused BN + neuron op; the (T, n) records never exist.
template <class N, class T, class In>
void multistep_recompute_backward_cpu(const N& n, const Firing& f, bool detach_reset, const In& in,
                                      const T* gspikes, const T* params, T* gx, T* gparams,
                                      int64_t steps, int64_t count) {
  constexpr int kP = kParamSlots<N>;
  T p[kP] = {};
  for (int k = 0; k < N::kParams; ++k) p[k] = params[k];
  const int64_t chunks = (count + kCpuChunk - 1) / kCpuChunk;
  std::vector<double> partial(size_t(chunks * kP), 0.0);
#if defined(_OPENMP)
#pragma omp parallel
#endif
  {
    std::vector<T> local(size_t(steps * kCpuChunk * N::kSaved));  // one chunk's records, per thread
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kCpuChunk, len = std::min(kCpuChunk, count - i0);
      T* buf = local.data();
      with_forward_firing(f, [&](const auto& firing) {
        forward_chunk(n, firing, in, p, static_cast<T*>(nullptr), static_cast<T*>(nullptr), steps, count, i0, len,
                      [&](int64_t t, int64_t j, const T* rec) {
                        for (int k = 0; k < N::kSaved; ++k) buf[(t * kCpuChunk + j) * N::kSaved + k] = rec[k];
                      });
      });
      with_backward_firing(f, [&](const auto& firing) {
        backward_chunk(n, firing, detach_reset, gspikes, p, gx, &partial[size_t(c * kP)], steps, count, i0,
                       len, [&](int64_t t, int64_t j, T* rec) {
                         for (int k = 0; k < N::kSaved; ++k) rec[k] = buf[(t * kCpuChunk + j) * N::kSaved + k];
                       });
      });
    }
  }
  cpu_detail::add_param_partials(partial, chunks, N::kParams, gparams);
}

// Defined in neurons_cpu.cpp for float and double.
template <class T>
void rga_backward_cpu(const T* gspikes, const T* x_mean, T tau, T gamma, T* gx, int64_t steps, int64_t count);

// ---- CUDA (float32) --------------------------------------------------------------------------------------
// Declared here so host code can call them; defined in multistep.cuh and instantiated per neuron by
// SG_INSTANTIATE_NEURON_CUDA(Neuron) in a .cu file (neurons.cu for Lif and Plif, engine/registered_neurons.cu
// for the registry's neurons). All run on the default stream without synchronising.
// scratch: multistep_cuda_scratch(N::kParams, count) doubles (null if 0).
template <class N>
void multistep_forward_cuda(const N& n, const Firing& f, const float* x, const float* params, float* spikes,
                            float* records, float* x_mean, int64_t steps, int64_t count);
// The fused BN + neuron forward (BnInput above); spikes may be null as on the CPU.
template <class N>
void multistep_forward_bn_cuda(const N& n, const Firing& f, const BnInput<float>& in, const float* params,
                               float* spikes, float* records, float* x_mean, int64_t steps, int64_t count);
template <class N>
void multistep_backward_cuda(const N& n, const Firing& f, bool detach_reset, const float* gspikes,
                             const float* records, const float* params, float* gx, float* gparams,
                             double* scratch, int64_t steps, int64_t count);
void rga_backward_cuda(const float* gspikes, const float* x_mean, float tau, float gamma, float* gx,
                       int64_t steps, int64_t count);
// BPTT of the fused BN + neuron op without saved records (see multistep_recompute_backward_cpu): each thread
// recomputes its neuron's records into a local array, so steps <= kMaxRecomputeSteps (longer runs use the
// forward-with-records + multistep_backward_cuda path).
constexpr int64_t kMaxRecomputeSteps = 16;
template <class N>
void multistep_recompute_backward_bn_cuda(const N& n, const Firing& f, bool detach_reset, const BnInput<float>& in,
                                          const float* gspikes, const float* params, float* gx,
                                          float* gparams, double* scratch, int64_t steps, int64_t count);

// Launch geometry shared by the launchers and the scratch size (one thread per neuron, grid-stride beyond).
constexpr int kCudaBlock = 256;
inline int64_t multistep_cuda_blocks(int64_t count) {
  return std::max<int64_t>(1, std::min<int64_t>((count + kCudaBlock - 1) / kCudaBlock, 65535LL * 8));
}
inline int64_t multistep_cuda_scratch(int params, int64_t count) {
  return params > 0 ? multistep_cuda_blocks(count) * params : 0;
}

}  // namespace spikegrad::neurons
