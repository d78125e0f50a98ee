// tau_lif: the LIF of SpikingJelly's LIFNode (decay_input=True, v_reset=0), h = v + (x - v)/tau, written with
// the one-state adapter (kernels/neurons/one_state.h): the charge and its derivative are all there is to it.
#pragma once
#include "kernels/neurons/one_state.h"

namespace spikegrad::examples {

struct TauLifCharge {
  double tau = 2.0;  // membrane time constant; --neuron-opt tau=...
  template <class T> SG_HD T charge(T v, T x, const T*) const { return v + neurons::mul_rn(x - v, T(1.0 / tau)); }
  template <class T> SG_HD void charge_grad(T, T, const T*, neurons::ChargeGrad<T>& d) const {
    d.dv = T(1) - T(1.0 / tau);  // dh/dv
    d.dx = T(1.0 / tau);         // dh/dx
  }
  static neurons::NeuronInfo<TauLifCharge> info() {
    return {"tau_lif", "LIF whose time constant also scales the input, h = v + (x - v) / tau",
            {{"tau", &TauLifCharge::tau, neurons::OptionRange::at_least(1.0), "membrane time constant"}}};
  }
};
using TauLif = neurons::OneState<TauLifCharge>;

}  // namespace spikegrad::examples
