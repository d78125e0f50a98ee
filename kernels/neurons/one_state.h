// The one-state adapter: a neuron whose only state is its membrane potential v, written as its charge.
//
// The author writes a `Charge` struct (its parameters are plain fields):
//   static constexpr int kParams = ...;   optional (default 0): learnable scalars, read as p[0..kParams)
//   template <class T> SG_HD T charge(T v, T x, const T* p) const              h = f(v, x; p)
//   template <class T> SG_HD void charge_grad(T v, T h, const T* p, ChargeGrad<T, kParams>& d) const
//       sets the partial derivatives of f at this step: d.dv = ∂h/∂v (starts at 0), d.dx = ∂h/∂x (starts
//       at 1, right for any charge that adds x), d.dp[k] = ∂h/∂p_k (start at 0). h is the step's charge
//       output, handed over because backward keeps h but not x.
// and OneState<Charge> is a complete neuron (the contract of kernels/neurons/neuron_defs.h):
//   threshold  θ = theta: the run's threshold (SpikeOptions::threshold, --threshold), written by the registry
//   fire       s = H(h − θ) with the run's firing rule and surrogate (the template's, as every neuron)
//   reset      the run's reset (SpikeOptions::reset, --reset): hard v' = (1 − s)·h, soft v' = h − s·θ
//   record     h alone (kSaved = 1): v' follows from h and s, so after() rebuilds it and BPTT needs nothing
//              else; the vector-Jacobian products of the reset are LIF's, those of the charge come from d.
// A charge whose step cannot be written this way (a second state, a threshold that moves) uses the full
// contract instead (examples/neurons/adaptive_lif.h).
//
// Keep the CPU and CUDA spikes identical: write every product that feeds h as neurons::mul_rn(a, b) (on CUDA
// it stops the compiler from fusing it with the following add into an FMA).
#pragma once
#include <type_traits>

#include "kernels/neurons/neuron_defs.h"
#include "kernels/neurons/neuron_info.h"

namespace spikegrad::neurons {

// ∂h/∂v, ∂h/∂x and ∂h/∂p_k of one charge step (P = the charge's kParams).
template <class T, int P = 0> struct ChargeGrad {
  T dv = T(0);
  T dx = T(1);
  T dp[P > 0 ? P : 1] = {};
};

namespace one_state_detail {
// Charge::kParams, or 0 when the charge has none.
template <class C, class = void> struct ParamsOf : std::integral_constant<int, 0> {};
template <class C> struct ParamsOf<C, std::void_t<decltype(C::kParams)>> : std::integral_constant<int, C::kParams> {};
}  // namespace one_state_detail

template <class Charge>
struct OneState : Charge, MembraneReset {
  static constexpr int kParams = one_state_detail::ParamsOf<Charge>::value;
  // The registry writes theta and reset from the run's settings before every call (engine/neuron_registration.h).
  static constexpr bool kRunThreshold = true, kRunReset = true;
  using MembraneReset::State;  // threshold, reset, record and their derivatives: LIF's (neuron_defs.h)

  // The charge's own members are named alike; the qualified calls reach them past these.
  template <class T> SG_HD T charge(const State<T>& s, T x, const T* p) const { return Charge::charge(s.v, x, p); }
  template <class T>
  SG_HD T charge_vjp(const State<T>& s, T h, T g_h, const T* p, State<T>& g_prev, T* g_params) const {
    ChargeGrad<T, kParams> d;
    Charge::charge_grad(s.v, h, p, d);
    g_prev.v += d.dv * g_h;
    for (int k = 0; k < kParams; ++k) g_params[k] += d.dp[k] * g_h;
    return d.dx * g_h;
  }

  // The registry's description is the charge's (kernels/neurons/neuron_info.h); its option fields are fields
  // of this neuron too.
  static auto info() { return Charge::info(); }
};

}  // namespace spikegrad::neurons
