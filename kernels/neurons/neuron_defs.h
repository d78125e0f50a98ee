// Spiking neurons, written once as __host__ __device__ code for the CPU reference and the CUDA kernel.
//
// Letters: T time steps, n = B*C*H*W neurons per step; x_t is the input current, u_t = h_t - theta_t.
//
// Firing (shared by every neuron): s_t = Heaviside(u_t), strict (u > 0, "h > theta") or not (u >= 0).
// Its backward uses a surrogate derivative sg(u) in place of the Dirac delta:
//   triangle(gamma)  sg = max(0, gamma - |u|) / gamma^2          (reference.md §2: gamma = 1, "ZIF")
//   sigmoid(alpha)   sg = alpha * sig(alpha u) * (1 - sig(alpha u))
//   atan(alpha)      sg = (alpha / 2) / (1 + (pi/2 * alpha * u)^2)
//   rectangle(w)     sg = [|u| < w/2] / w
// Smooth mode replaces the Heaviside step by S(u), the integral of sg (so S' = sg exactly and the whole
// neuron is differentiable): that is what finite-difference gradient checks run on.
//   triangle   0 | (u+g)^2/(2g^2) on [-g,0) | 1-(g-u)^2/(2g^2) on [0,g) | 1     sigmoid  sig(alpha u)
//   atan       1/2 + atan(pi/2 * alpha * u)/pi                                   rectangle clamp((u+w/2)/w, 0, 1)
//
// A neuron is a struct of plain parameters with these members (T = float or double; p = the neuron's
// learnable scalars, kParams of them, read from device memory by the kernel; State<T>{} must be both the
// initial state and the zero gradient, so every forward starts from rest: pitfall 1):
//   kSaved, kParams                      scalars saved per neuron per step; learnable scalars
//   State<T>                             what carries from step t-1 to t (registers), e.g. {v}
//   charge(S, x, p) -> h                 pre-spike potential
//   threshold(S, p) -> theta
//   next(S, h, s, p) -> S'               reset (and any adaptation)
//   save(S, h, rec)                      the per-step record: rec[0] must be h
//   after(rec, firing, p) -> S'          the state after a step rebuilt from its record, bit-identical to
//                                        next(): backward uses it to get S_{t-1} from record t-1
//   next_vjp, threshold_vjp, charge_vjp  derivatives of reset and charge as vector-Jacobian products:
//                                        they ADD into the gradient of the previous state, g_h, g_spike and
//                                        the per-step parameter gradient g_params.
// kernels/neurons/multistep.h chains them (BPTT); kernels/neurons/one_state.h derives all but the charge for a
// neuron whose only state is v; README "Adding a neuron" and docs/neurons.md show how to add and register one.
#pragma once
#include <math.h>

#include "kernels/common.h"

namespace spikegrad::neurons {

enum class SurrogateKind : int { triangle = 0, sigmoid = 1, atan = 2, rectangle = 3 };
enum class ResetKind : int { hard = 0, soft = 1 };

// Math with one spelling on both backends.
SG_HD float nexp(float x) { return expf(x); }
SG_HD double nexp(double x) { return exp(x); }
SG_HD float natan(float x) { return atanf(x); }
SG_HD double natan(double x) { return atan(x); }
template <class T> SG_HD T nabs(T x) { return x < T(0) ? -x : x; }
template <class T> SG_HD T nclamp01(T x) { return x < T(0) ? T(0) : (x > T(1) ? T(1) : x); }

// mul_rn (kernels/common.h) keeps the products that feed h unfused on CUDA; neurons::mul_rn is its name in
// neuron code (docs/neurons.md, examples/neurons/).
using spikegrad::mul_rn;

// sig(x) without overflow: exp of a non-positive argument only, so both branches stay in [0, 1].
template <class T> SG_HD T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + nexp(-x));
  const T e = nexp(x);
  return e / (T(1) + e);
}

// The spike rule and its surrogate; every neuron shares it. `alpha` is the surrogate's one parameter
// (triangle half-width gamma, sigmoid/atan slope alpha, rectangle width w).
struct Firing {
  SurrogateKind kind = SurrogateKind::triangle;
  double alpha = 1.0;
  bool strict = true;   // spike iff u > 0; false: u >= 0
  bool smooth = false;  // forward emits S(u) instead of the step (gradient checks)

  template <class T> SG_HD T spike(T u) const {
    if (!smooth) return (strict ? u > T(0) : u >= T(0)) ? T(1) : T(0);
    const T a = T(alpha);
    switch (kind) {
      case SurrogateKind::triangle: {
        if (u <= -a) return T(0);
        if (u >= a) return T(1);
        const T inv = T(1) / (T(2) * a * a);
        return u < T(0) ? (u + a) * (u + a) * inv : T(1) - (a - u) * (a - u) * inv;
      }
      case SurrogateKind::sigmoid: return stable_sigmoid(a * u);
      case SurrogateKind::atan: return T(0.5) + natan(T(1.5707963267948966) * a * u) * T(0.3183098861837907);
      case SurrogateKind::rectangle: return nclamp01((u + T(0.5) * a) / a);
    }
    return T(0);
  }

  // d spike / du as used by backward (the exact derivative of spike() in smooth mode).
  template <class T> SG_HD T grad(T u) const {
    const T a = T(alpha);
    switch (kind) {
      case SurrogateKind::triangle: {
        const T r = a - nabs(u);
        return r > T(0) ? r / (a * a) : T(0);
      }
      case SurrogateKind::sigmoid: {
        // sig * (1 - sig), never the quotient form exp(-x)/(1+exp(-x))^2 that overflows (pitfall 3).
        const T sg = stable_sigmoid(a * u);
        return a * sg * (T(1) - sg);
      }
      case SurrogateKind::atan: {
        const T z = T(1.5707963267948966) * a * u;
        return T(0.5) * a / (T(1) + z * z);
      }
      case SurrogateKind::rectangle: return nabs(u) < T(0.5) * a ? T(1) / a : T(0);
    }
    return T(0);
  }
};

// What LIF and every one-state neuron (kernels/neurons/one_state.h) share: the state is the membrane potential v
// alone, the threshold is the fixed theta, and the reset is hard, v' = (1 - s) h, with the gradient through both
// factors, or soft, v' = h - s*theta. The state after a step depends on h alone, so the record is h and nothing
// else. A neuron derives from it and adds its charge (and charge_vjp).
struct MembraneReset {
  static constexpr int kSaved = 1;  // h_t
  template <class T> struct State { T v = T(0); };

  double theta = 1.0;
  ResetKind reset = ResetKind::hard;

  template <class T> SG_HD T threshold(const State<T>&, const T*) const { return T(theta); }
  template <class T> SG_HD State<T> next(const State<T>&, T h, T spike, const T*) const {
    return {reset == ResetKind::hard ? h * (T(1) - spike) : h - spike * T(theta)};
  }
  template <class T> SG_HD void save(const State<T>&, T h, T* rec) const { rec[0] = h; }
  // The state after a step depends on h alone (threshold and reset ignore the previous state).
  template <class T, class F> SG_HD State<T> after(const T* rec, const F& f, const T* p) const {  // F: a Firing
    const State<T> any{};
    const T h = rec[0];
    return next(any, h, f.spike(h - threshold(any, p)), p);
  }

  // v' = (1-s) h  : dv'/dh = 1-s, dv'/ds = -h.     v' = h - s theta : dv'/dh = 1, dv'/ds = -theta.
  // detach_reset drops the dv'/ds path (SpikingJelly's detach_reset), keeping dv'/dh.
  template <class T>
  SG_HD void next_vjp(const State<T>&, T h, T spike, const State<T>& g_next, const T*, bool detach_reset,
                      State<T>&, T& g_h, T& g_spike, T*) const {
    if (reset == ResetKind::hard) {
      g_h += g_next.v * (T(1) - spike);
      if (!detach_reset) g_spike -= g_next.v * h;
    } else {
      g_h += g_next.v;
      if (!detach_reset) g_spike -= g_next.v * T(theta);
    }
  }
  template <class T> SG_HD void threshold_vjp(const State<T>&, T, const T*, State<T>&, T*) const {}
};

// LIF exactly as reference.md §2 by default: h = decay*v + x (decay 0.5, a multiplicative factor), spike
// iff h > threshold (1), hard reset v = (1 - s) h with the gradient through both factors. IF is this
// neuron with decay 1 (and, in the RAT/RGA code, a non-strict Firing). Soft reset: v = h - s*theta.
struct Lif : MembraneReset {
  static constexpr int kParams = 0;  // decay and threshold are fixed

  double decay = 0.5;

  template <class T> SG_HD T charge(const State<T>& s, T x, const T*) const { return mul_rn(T(decay), s.v) + x; }
  // h = decay*v + x: dh/dv = decay, dh/dx = 1 (the return value is dL/dx).
  template <class T> SG_HD T charge_vjp(const State<T>&, T, T g_h, const T*, State<T>& g_prev, T*) const {
    g_prev.v += T(decay) * g_h;
    return g_h;
  }
};

// PLIF: a LIF whose decay is learned, decay = sig(a) with a = p[0] a scalar logit (a = 0 gives the
// reference LIF's 0.5; sig keeps the decay in (0, 1)). dh/da = v * sig(a) (1 - sig(a)). `decay` is unused.
struct Plif : Lif {
  static constexpr int kParams = 1;

  template <class T> SG_HD T charge(const State<T>& s, T x, const T* p) const {
    return mul_rn(stable_sigmoid(p[0]), s.v) + x;
  }
  template <class T> SG_HD T charge_vjp(const State<T>& s, T, T g_h, const T* p, State<T>& g_prev, T* g_params) const {
    const T k = stable_sigmoid(p[0]);
    g_prev.v += k * g_h;
    g_params[0] += g_h * s.v * k * (T(1) - k);
    return g_h;
  }
};

}  // namespace spikegrad::neurons
