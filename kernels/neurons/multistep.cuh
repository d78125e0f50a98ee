// CUDA side of the multi-step template (contract: kernels/neurons/multistep.h). Include only from .cu
// files; instantiate for a neuron with SG_INSTANTIATE_NEURON_CUDA(Neuron) at global scope.
//
// One thread per neuron, looping over time: every access x[t*n + i] is coalesced across a warp because the
// layout is time-major, the state and the BPTT carry live in registers, and the only memory traffic is the
// minimum (forward: x in, spikes and records out; backward: gspikes and records in, gx read and
// written). Each record is read once: record t-1 is loaded at step t and kept for step t-1.
// The parameter gradient (PLIF's decay) is reduced deterministically: per-thread double partials, a fixed
// block reduction (kernels/block_reduce.cuh) into scratch[k * blocks + block], then one block adds the
// block partials in a fixed order.
#pragma once
#include "kernels/block_reduce.cuh"
#include "kernels/cuda_utils.cuh"
#include "kernels/neurons/multistep.h"

namespace spikegrad::neurons {
namespace cuda_detail {

template <class N, class In>
__global__ void __launch_bounds__(kCudaBlock)
    multistep_forward_kernel(N n, Firing f, In in, const float* __restrict__ params, float* __restrict__ spikes,
                             float* __restrict__ records, float* __restrict__ x_mean, int64_t steps, int64_t count) {
  float p[kParamSlots<N>] = {};
#pragma unroll
  for (int k = 0; k < N::kParams; ++k) p[k] = params[k];
  SG_GRID_STRIDE(i, count) {
    StateOf<N, float> state{};
    const typename In::Coef coef = in.coef(i);
    float sum = 0.f;
#pragma unroll 4
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t at = t * count + i;
      const float xt = in.load(coef, at);
      float rec[N::kSaved];
      const float spike = forward_step(n, f, state, xt, p, rec);
      if (spikes) spikes[at] = spike;
      if (records) {
#pragma unroll
        for (int k = 0; k < N::kSaved; ++k) records[k * steps * count + at] = rec[k];
      }
      sum += xt;
    }
    if (x_mean) x_mean[i] = sum / float(steps);
  }
}

// Block b's sum of acc[k] into block_partials[k * blocks + b] (nothing without parameters or partials).
template <int kParams, int kSlots>
__device__ inline void write_block_partials(double (&acc)[kSlots], double* block_partials) {
  if (kParams > 0 && block_partials) {  // uniform over the grid: every thread reaches the barriers or none
    block_reduce_each<kCudaBlock>(acc, SumOp{});
    if (threadIdx.x == 0)
      for (int k = 0; k < kParams; ++k) block_partials[int64_t(k) * gridDim.x + blockIdx.x] = acc[k];
  }
}

template <class N>
__global__ void __launch_bounds__(kCudaBlock)
    multistep_backward_kernel(N n, Firing f, bool detach_reset, const float* __restrict__ gspikes,
                              const float* __restrict__ records, const float* __restrict__ params,
                              float* __restrict__ gx, double* __restrict__ block_partials, int64_t steps,
                              int64_t count) {
  constexpr int kP = kParamSlots<N>;
  float p[kP] = {};
#pragma unroll
  for (int k = 0; k < N::kParams; ++k) p[k] = params[k];
  double acc[kP] = {};
  SG_GRID_STRIDE(i, count) {
    StateOf<N, float> g_state{};
    float rec[N::kSaved];
#pragma unroll
    for (int k = 0; k < N::kSaved; ++k) rec[k] = records[(k * steps + steps - 1) * count + i];
#pragma unroll 2
    for (int64_t t = steps - 1; t >= 0; --t) {
      StateOf<N, float> prev{};
      float rec_prev[N::kSaved];
      if (t > 0) {
#pragma unroll
        for (int k = 0; k < N::kSaved; ++k) rec_prev[k] = records[(k * steps + t - 1) * count + i];
        prev = n.after(rec_prev, f, p);
      }
      const int64_t at = t * count + i;
      float g_step[kP] = {};
      const float gx_t = backward_step(n, f, detach_reset, prev, rec, gspikes[at], p, g_state, g_step);
      if (gx) gx[at] += gx_t;
#pragma unroll
      for (int k = 0; k < N::kParams; ++k) acc[k] += double(g_step[k]);
      if (t > 0) {
#pragma unroll
        for (int k = 0; k < N::kSaved; ++k) rec[k] = rec_prev[k];
      }
    }
  }
  write_block_partials<N::kParams>(acc, block_partials);
}

// Recomputing BPTT (no saved records): per neuron, the forward from `in` into a per-thread array (local
// memory, L1-resident for T <= kMaxRecomputeSteps), then the backward from it. The same forward_step and
// backward_step as the other two kernels, so the records and gradients are bit-identical to a forward that
// saved them followed by multistep_backward_kernel; the (T, n) records are never written to global memory.
template <class N, class In>
__global__ void __launch_bounds__(kCudaBlock)
    multistep_recompute_backward_kernel(N n, Firing f, bool detach_reset, In in,
                                        const float* __restrict__ gspikes, const float* __restrict__ params,
                                        float* __restrict__ gx, double* __restrict__ block_partials,
                                        int64_t steps, int64_t count) {
  constexpr int kP = kParamSlots<N>;
  float p[kP] = {};
#pragma unroll
  for (int k = 0; k < N::kParams; ++k) p[k] = params[k];
  double acc[kP] = {};
  SG_GRID_STRIDE(i, count) {
    float recs[kMaxRecomputeSteps][N::kSaved];
    StateOf<N, float> state{};
    const typename In::Coef coef = in.coef(i);
    for (int64_t t = 0; t < steps; ++t) forward_step(n, f, state, in.load(coef, t * count + i), p, recs[t]);
    StateOf<N, float> g_state{};
    for (int64_t t = steps - 1; t >= 0; --t) {
      StateOf<N, float> prev{};
      if (t > 0) prev = n.after(recs[t - 1], f, p);
      const int64_t at = t * count + i;
      float g_step[kP] = {};
      const float gx_t = backward_step(n, f, detach_reset, prev, recs[t], gspikes[at], p, g_state, g_step);
      if (gx) gx[at] += gx_t;
#pragma unroll
      for (int k = 0; k < N::kParams; ++k) acc[k] += double(g_step[k]);
    }
  }
  write_block_partials<N::kParams>(acc, block_partials);
}

// One block: gparams[k] += sum over blocks of block_partials[k * blocks + b], in a fixed order.
// A template (like every kernel here) so that several .cu files can include this header.
template <int kParams>
__global__ void __launch_bounds__(kCudaBlock)
    reduce_param_partials_kernel(const double* __restrict__ block_partials, int64_t blocks,
                                 float* __restrict__ gparams) {
  double acc[kParams > 0 ? kParams : 1] = {};  // instantiated (never launched) for neurons without parameters
  for (int k = 0; k < kParams; ++k)
    for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) acc[k] += block_partials[int64_t(k) * blocks + b];
  block_reduce_each<kCudaBlock>(acc, SumOp{});
  if (threadIdx.x == 0)
    for (int k = 0; k < kParams; ++k) gparams[k] += float(acc[k]);
}

}  // namespace cuda_detail

template <class N>
void multistep_forward_cuda(const N& n, const Firing& f, const float* x, const float* params, float* spikes,
                            float* records, float* x_mean, int64_t steps, int64_t count) {
  if (steps == 0 || count == 0) return;
  cuda_detail::multistep_forward_kernel<N, DirectInput<float>><<<unsigned(multistep_cuda_blocks(count)), kCudaBlock>>>(
      n, f, DirectInput<float>{x}, params, spikes, records, x_mean, steps, count);
  SG_LAUNCH_CHECK();
}

template <class N>
void multistep_forward_bn_cuda(const N& n, const Firing& f, const BnInput<float>& in, const float* params,
                               float* spikes, float* records, float* x_mean, int64_t steps, int64_t count) {
  if (steps == 0 || count == 0) return;
  cuda_detail::multistep_forward_kernel<N, BnInput<float>><<<unsigned(multistep_cuda_blocks(count)), kCudaBlock>>>(
      n, f, in, params, spikes, records, x_mean, steps, count);
  SG_LAUNCH_CHECK();
}

template <class N>
void multistep_backward_cuda(const N& n, const Firing& f, bool detach_reset, const float* gspikes,
                             const float* records, const float* params, float* gx, float* gparams,
                             double* scratch, int64_t steps, int64_t count) {
  if (steps == 0 || count == 0) return;
  const bool want_params = N::kParams > 0 && gparams != nullptr;
  SG_CHECK(!want_params || scratch, "multistep_backward_cuda: a parameter gradient needs scratch");
  const int64_t blocks = multistep_cuda_blocks(count);
  cuda_detail::multistep_backward_kernel<N><<<unsigned(blocks), kCudaBlock>>>(
      n, f, detach_reset, gspikes, records, params, gx, want_params ? scratch : nullptr, steps, count);
  SG_LAUNCH_CHECK();
  if (want_params) {
    cuda_detail::reduce_param_partials_kernel<N::kParams><<<1, kCudaBlock>>>(scratch, blocks, gparams);
    SG_LAUNCH_CHECK();
  }
}

template <class N>
void multistep_recompute_backward_bn_cuda(const N& n, const Firing& f, bool detach_reset, const BnInput<float>& in,
                                          const float* gspikes, const float* params, float* gx,
                                          float* gparams, double* scratch, int64_t steps, int64_t count) {
  if (steps == 0 || count == 0) return;
  SG_CHECK(steps <= kMaxRecomputeSteps, "multistep_recompute_backward_bn_cuda: at most " << kMaxRecomputeSteps
                                                                                         << " steps, got " << steps);
  const bool want_params = N::kParams > 0 && gparams != nullptr;
  SG_CHECK(!want_params || scratch, "multistep_recompute_backward_bn_cuda: a parameter gradient needs scratch");
  const int64_t blocks = multistep_cuda_blocks(count);
  cuda_detail::multistep_recompute_backward_kernel<N, BnInput<float>><<<unsigned(blocks), kCudaBlock>>>(
      n, f, detach_reset, in, gspikes, params, gx, want_params ? scratch : nullptr, steps, count);
  SG_LAUNCH_CHECK();
  if (want_params) {
    cuda_detail::reduce_param_partials_kernel<N::kParams><<<1, kCudaBlock>>>(scratch, blocks, gparams);
    SG_LAUNCH_CHECK();
  }
}

}  // namespace spikegrad::neurons

// Explicit instantiation of both launchers for a neuron type; use at global scope in one .cu file.
#define SG_INSTANTIATE_NEURON_CUDA(Neuron)                                                                   \
  template void spikegrad::neurons::multistep_forward_cuda<Neuron>(                                         \
      const Neuron&, const spikegrad::neurons::Firing&, const float*, const float*, float*, float*, float*,  \
      int64_t, int64_t);                                                                                     \
  template void spikegrad::neurons::multistep_forward_bn_cuda<Neuron>(                                      \
      const Neuron&, const spikegrad::neurons::Firing&, const spikegrad::neurons::BnInput<float>&,           \
      const float*, float*, float*, float*, int64_t, int64_t);                                               \
  template void spikegrad::neurons::multistep_recompute_backward_bn_cuda<Neuron>(                           \
      const Neuron&, const spikegrad::neurons::Firing&, bool, const spikegrad::neurons::BnInput<float>&,     \
      const float*, const float*, float*, float*, double*, int64_t, int64_t);                                \
  template void spikegrad::neurons::multistep_backward_cuda<Neuron>(                                        \
      const Neuron&, const spikegrad::neurons::Firing&, bool, const float*, const float*, const float*,      \
      float*, float*, double*, int64_t, int64_t)
