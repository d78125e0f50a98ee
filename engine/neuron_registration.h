// SG_REGISTER_NEURON(Neuron): one line that makes a neuron struct a registered neuron (engine/neuron_registry.h)
// on both backends. Use it only in engine/registered_neurons.cu, right after the #include of the neuron's
// header; the neuron needs `static auto info()` (kernels/neurons/neuron_info.h).
//
// That one .cu file is compiled twice, so that each half of the registration is compiled by the compiler it
// needs, in all three build modes:
//   - as C++: engine/neuron_registry.cpp defines SPIKEGRAD_NEURON_REGISTRY_HOST and #includes it. The line
//     becomes a numbered entry (Listed<__COUNTER__>) that the registry walks, in the list's order, when it is
//     first used — so it holds every neuron whatever the static initialisation order, and a static library
//     cannot drop the entries, which sit in the registry's own object. The entry instantiates the CPU
//     multi-step template and the glue of the unfused and fused ops in an ordinary .cpp compile (OpenMP,
//     -ffp-contract=off, the native ISA, as every CPU kernel) in all three build modes.
//   - as CUDA: the file itself, in builds with CUDA (nvcc) or the emulated backend (rewritten into C++ like
//     every .cu). The line becomes SG_INSTANTIATE_NEURON_CUDA(Neuron): the CUDA kernels the runner calls.
//     A CPU-only build does not compile .cu files, and its runner never names a CUDA launcher (SG_CUDA_CALL),
//     so nothing is missing at link time.
#pragma once

#if defined(SPIKEGRAD_NEURON_REGISTRY_HOST)
#include <cmath>
#include <type_traits>

#include "engine/neuron_registry.h"
#include "engine/ops_neuron_ext.h"
#include "engine/ops_neuron_fused.h"

namespace spikegrad::neuron_registration {

// Whether a neuron's threshold / reset fields are written from the run's SpikeOptions before each call (the
// one-state adapter's are: kernels/neurons/one_state.h).
template <class N, class = void> struct RunThreshold : std::false_type {};
template <class N> struct RunThreshold<N, std::enable_if_t<N::kRunThreshold>> : std::true_type {};
template <class N, class = void> struct RunReset : std::false_type {};
template <class N> struct RunReset<N, std::enable_if_t<N::kRunReset>> : std::true_type {};

template <class N>
class TypedRunner final : public NeuronRunner {
 public:
  TypedRunner(const NeuronType& type, N neuron) : type_(&type), neuron_(neuron) {}

  Tensor spike(Tape& tape, const Tensor& x, const ops::SpikeOptions& opt, const Tensor& params) const override {
    const char* op = type_->name.c_str();  // the registry's entries live as long as the program
    const N n = for_run(opt);
    return ops::neuron_detail::run_neuron(tape, x, n, firing(opt), opt, rga_tau(opt), params, op);
  }

  Tensor batch_norm_spike(Tape& tape, const Tensor& x, const Tensor& weight, const Tensor& bias,
                          const Tensor& running_mean, const Tensor& running_var, const ops::BatchNormOptions& bn,
                          int64_t time_steps, const ops::SpikeOptions& opt, const Tensor& params) const override {
    const char* op = type_->name.c_str();
    const ops::neuron_detail::BnLayout d = ops::neuron_detail::check_batch_norm_spike(
        x, weight, bias, running_mean, running_var, bn, time_steps, op);
    const N n = for_run(opt);
    return ops::neuron_detail::run_bn_neuron(tape, d, x, weight, bias, running_mean, running_var, bn, time_steps, n,
                                             firing(opt), opt, rga_tau(opt), params, op);
  }

 private:
  // The configured neuron with the run's threshold and reset written in, where it takes them.
  N for_run(const ops::SpikeOptions& opt) const {
    check_run_settings(*type_, opt);
    N n = neuron_;
    if constexpr (RunThreshold<N>::value) {
      SG_CHECK(std::isfinite(opt.threshold) && opt.threshold > 0,
               type_->name << ": threshold must be > 0, got " << opt.threshold);
      n.theta = opt.threshold;
    }
    if constexpr (RunReset<N>::value) n.reset = ops::neuron_detail::kernel_reset(opt.reset);
    return n;
  }
  neurons::Firing firing(const ops::SpikeOptions& opt) const {
    return ops::neuron_detail::firing_from(opt, /*default_strict=*/true, type_->name.c_str());
  }
  double rga_tau(const ops::SpikeOptions& opt) const {
    return opt.backward == ops::SpikeBackward::rga
               ? ops::neuron_detail::rga_tau_checked(opt, std::nullopt, type_->name.c_str())
               : 0.0;
  }

  const NeuronType* type_;
  N neuron_;
};

// N's registry entry from N::info(): the options' defaults are the fields' initial values in N{}.
template <class N, class S>
NeuronType neuron_type(const neurons::NeuronInfo<S>& info) {
  static_assert(std::is_base_of_v<S, N>, "info() must describe the neuron or a base of it (a one-state charge)");
  NeuronType t;
  t.name = info.name;
  t.help = info.help;
  const N defaults{};
  for (const neurons::OptionField<S>& o : info.options) t.options.push_back({o.key, defaults.*o.field, o.range, o.help});
  t.param_name = info.param_name;
  t.num_params = N::kParams;
  SG_CHECK((N::kParams > 0) == !info.param_name.empty() && (N::kParams == 0 || info.initial_params),
           "neuron '" << info.name << "': " << N::kParams << " learnable scalar(s) need a param_name and initial_params");
  t.takes_threshold = RunThreshold<N>::value;
  t.takes_reset = RunReset<N>::value;
  auto configured = [info](const NeuronOptionValues& values) {
    N n{};
    for (const neurons::OptionField<S>& o : info.options) n.*o.field = values.at(o.key);
    return n;
  };
  t.make_runner = [configured](const NeuronType& type, const NeuronOptionValues& values) {
    return std::shared_ptr<const NeuronRunner>(std::make_shared<TypedRunner<N>>(type, configured(values)));
  };
  t.initial_params = [info, configured](const NeuronOptionValues& values) {
    return N::kParams > 0 ? info.initial_params(configured(values)) : std::vector<double>{};
  };
  return t;
}

// The list's entries, numbered by __COUNTER__; the primary template is "no entry" (numbers used elsewhere).
template <int I> struct Listed {
  static constexpr bool kListed = false;
};

}  // namespace spikegrad::neuron_registration

#define SG_REGISTER_NEURON(Neuron)                                                        \
  template <> struct spikegrad::neuron_registration::Listed<__COUNTER__> {                \
    static constexpr bool kListed = true;                                                 \
    static ::spikegrad::NeuronType type() {                                               \
      return ::spikegrad::neuron_registration::neuron_type<Neuron>(Neuron::info());       \
    }                                                                                     \
  }

#else  // the CUDA compile of engine/registered_neurons.cu
#include "kernels/neurons/multistep.cuh"
#define SG_REGISTER_NEURON(Neuron) SG_INSTANTIATE_NEURON_CUDA(Neuron)
#endif
