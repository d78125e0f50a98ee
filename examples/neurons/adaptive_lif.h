// An adaptive-threshold LIF, written against the full neuron contract (kernels/neurons/neuron_defs.h): its
// threshold moves with a trace of recent spikes, a second state that the one-state adapter cannot express.
// Registered as "adaptive_lif" (engine/registered_neurons.cu); docs/neurons.md walks through it.
//   h_t = decay v_{t-1} + x_t;  theta_t = theta0 + beta a_{t-1};  s_t = fire(h_t - theta_t)
//   v_t = (1 - s_t) h_t;        a_t = rho a_{t-1} + s_t            (a: a trace of recent spikes)
// It sets its own threshold and reset, so the run's --threshold and --reset do not apply to it.
#pragma once
#include "kernels/neurons/neuron_defs.h"
#include "kernels/neurons/neuron_info.h"

namespace spikegrad::examples {

struct AdaptiveLif {
  static constexpr int kSaved = 2;   // h_t and a_{t-1}: the state before the step cannot be rebuilt from h alone
  static constexpr int kParams = 0;
  template <class T> struct State { T v = T(0), a = T(0); };

  double decay = 0.5, theta0 = 1.0, beta = 0.5, rho = 0.5;

  // mul_rn keeps the products that feed the threshold test unfused on CUDA, so spikes match the CPU exactly.
  template <class T> SG_HD T charge(const State<T>& s, T x, const T*) const { return neurons::mul_rn(T(decay), s.v) + x; }
  template <class T> SG_HD T threshold(const State<T>& s, const T*) const {
    return T(theta0) + neurons::mul_rn(T(beta), s.a);
  }
  template <class T> SG_HD State<T> next(const State<T>& s, T h, T spike, const T*) const {
    return {h * (T(1) - spike), neurons::mul_rn(T(rho), s.a) + spike};
  }
  template <class T> SG_HD void save(const State<T>& s, T h, T* rec) const {
    rec[0] = h;
    rec[1] = s.a;
  }
  template <class T> SG_HD State<T> after(const T* rec, const neurons::Firing& f, const T* p) const {
    State<T> prev{};
    prev.a = rec[1];  // v_{t-1} is not needed: threshold and next read only a
    return next(prev, rec[0], f.spike(rec[0] - threshold(prev, p)), p);
  }
  template <class T>
  SG_HD void next_vjp(const State<T>&, T h, T spike, const State<T>& g_next, const T*, bool detach_reset,
                      State<T>& g_prev, T& g_h, T& g_spike, T*) const {
    g_h += g_next.v * (T(1) - spike);
    if (!detach_reset) g_spike -= g_next.v * h;
    g_spike += g_next.a;  // the adaptation is not a reset: detach_reset leaves it alone
    g_prev.a += T(rho) * g_next.a;
  }
  template <class T> SG_HD void threshold_vjp(const State<T>&, T g_theta, const T*, State<T>& g_prev, T*) const {
    g_prev.a += T(beta) * g_theta;
  }
  template <class T> SG_HD T charge_vjp(const State<T>&, T, T g_h, const T*, State<T>& g_prev, T*) const {
    g_prev.v += T(decay) * g_h;
    return g_h;
  }

  static neurons::NeuronInfo<AdaptiveLif> info() {
    using R = neurons::OptionRange;
    return {"adaptive_lif",
            "LIF whose threshold rises with its recent spikes, theta = theta0 + beta a, a' = rho a + s",
            {{"decay", &AdaptiveLif::decay, R::between(0, 1), "membrane leak: h = decay v + x"},
             {"theta0", &AdaptiveLif::theta0, R::above(0), "resting threshold"},
             {"beta", &AdaptiveLif::beta, R::at_least(0), "threshold rise per unit of spike trace"},
             {"rho", &AdaptiveLif::rho, R::between(0, 1), "spike-trace decay"}}};
  }
};

}  // namespace spikegrad::examples
