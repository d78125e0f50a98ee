// PLIF as the neuron registry's "plif": SpikingJelly's ParametricLIFNode (decay_input=False, v_reset=0), with
// its learnable w stored as SpikingJelly stores it, so a layer's "<layer>.neuron.w" loads unchanged there:
//   h = (1 − sig(w))·v + x,   1/τ = sig(w),   w = −log(init_tau − 1) at the start (init_tau 2: w = 0, decay 0.5)
// Threshold, firing and reset are the run's (the one-state adapter, kernels/neurons/one_state.h).
// ops::plif_spike (engine/ops_neuron.h) is the same neuron with the opposite sign: its decay_logit is −w.
#pragma once
#include <cmath>

#include "kernels/neurons/neuron_info.h"
#include "kernels/neurons/one_state.h"

namespace spikegrad::neurons {

struct ParametricLifCharge {
  static constexpr int kParams = 1;  // w
  double init_tau = 2.0;             // only sets w's initial value

  // 1 − sig(w) as sig(−w): the same value without the cancellation of 1 − sig(w) for large w.
  template <class T> SG_HD T charge(T v, T x, const T* p) const { return mul_rn(stable_sigmoid(-p[0]), v) + x; }
  // ∂h/∂v = sig(−w);  ∂h/∂w = −v·sig(−w)·(1 − sig(−w)).
  template <class T> SG_HD void charge_grad(T v, T, const T* p, ChargeGrad<T, 1>& d) const {
    const T k = stable_sigmoid(-p[0]);
    d.dv = k;
    d.dp[0] = -v * k * (T(1) - k);
  }

  static NeuronInfo<ParametricLifCharge> info() {
    return {"plif",
            "LIF with a learnable leak per layer, h = (1 - sigmoid(w)) v + x (SpikingJelly's ParametricLIFNode)",
            {{"init_tau", &ParametricLifCharge::init_tau, OptionRange::above(1.0),
              "initial membrane time constant: w starts at -log(init_tau - 1)"}},
            "w",
            [](const ParametricLifCharge& c) { return std::vector<double>{-std::log(c.init_tau - 1.0)}; }};
  }
};

using ParametricLif = OneState<ParametricLifCharge>;

}  // namespace spikegrad::neurons
