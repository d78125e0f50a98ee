// The neuron registry (engine/neuron_registry.h), for every registered neuron (lif, if, plif, adaptive_lif,
// tau_lif, and any neuron added to engine/registered_neurons.cu later):
//  - lookups, registration and option errors;
//  - the op table (tests/test_op_table.cpp) runs each neuron's unfused and fused op in smooth mode: central
//    differences in float64 for x, BN's weight and bias and the learnable scalars, and CUDA against the CPU
//    (on the emulated backend where there is no GPU);
//  - in the normal (Heaviside) mode, CUDA spikes equal the CPU's exactly, unfused and fused;
//  - the fused op equals batch norm followed by the unfused op exactly, gradients included;
//  - the one-state adapter: tau_lif against a hand-written loop; PLIF as SpikingJelly defines it.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/neuron_registry.h"
#include "engine/ops_neuron_ext.h"
#include "examples/neurons/tau_lif.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

ops::SpikeOptions smooth_sigmoid() {
  ops::SpikeOptions o;
  o.smooth = true;  // finite differences need a differentiable forward
  o.surrogate = ops::Surrogate::sigmoid(4.0);
  return o;
}

// A neuron's learnable scalars for a test: the initial values moved by 0.3, so that no term of the gradient
// is special (PLIF's initial w = 0 makes its decay exactly 0.5).
Tensor test_params(const ConfiguredNeuron& n, DType d) {
  Tensor p = n.initial_params();
  if (!p.defined()) return p;
  p = p.to(d);
  for (int64_t k = 0; k < p.numel(); ++k) {
    if (d == DType::F32) p.data<float>()[k] += 0.3f;
    else p.data<double>()[k] += 0.3;
  }
  return p;
}

// BN inputs as tests/test_memory_savers.cpp builds them (BN bias in [0.2, 1]: the layers fire): x (T·B, C, H, W),
// weight, bias, running_mean, running_var; then the neuron's learnable scalars when it has any.
std::vector<Tensor> fused_inputs(const ConfiguredNeuron& n, const Shape& x_shape, DType d, uint64_t seed) {
  const int64_t C = x_shape[1];
  std::vector<Tensor> in = {randn(x_shape, d, seed, 1.5), uniform({C}, d, seed + 1, 0.5, 1.5),
                            uniform({C}, d, seed + 2, 0.2, 1.0), randn({C}, d, seed + 3, 0.5),
                            uniform({C}, d, seed + 4, 0.5, 2.0)};
  if (n.type->num_params > 0) in.push_back(test_params(n, d));
  return in;
}
Tensor params_of(const std::vector<Tensor>& in, size_t at) { return in.size() > at ? in[at] : Tensor(); }

// Two op-table cases per registered neuron, added when the test program starts.
const bool kRegisteredCases = [] {
  for (const std::string& name : neuron_names()) {
    const ConfiguredNeuron n = configure_neuron({name, {}});
    std::vector<int> unfused_grads{0}, fused_grads{0, 1, 2};
    if (n.type->num_params > 0) unfused_grads.push_back(1), fused_grads.push_back(5);
    OpCaseRegistrar(OpCase{
        .name = "registered_" + name + "/smooth",
        .make_inputs =
            [n](DType d) {
              std::vector<Tensor> in{uniform({5, 3, 7}, d, 301, -0.6, 2.2)};
              if (n.type->num_params > 0) in.push_back(test_params(n, d));
              return in;
            },
        .grad_inputs = unfused_grads,
        .forward = [n](Tape& t, const std::vector<Tensor>& x) {
          return n.runner->spike(t, x[0], smooth_sigmoid(), params_of(x, 1));
        }});
    OpCaseRegistrar(OpCase{
        .name = "registered_" + name + "/fused_smooth",
        .make_inputs = [n](DType d) { return fused_inputs(n, {6, 3, 3, 4}, d, 310); },
        .grad_inputs = fused_grads,
        .forward = [n](Tape& t, const std::vector<Tensor>& x) {
          ops::BatchNormOptions bn;
          bn.training = true;
          return n.runner->batch_norm_spike(t, x[0], x[1], x[2], x[3], x[4], bn, 3, smooth_sigmoid(), params_of(x, 5));
        }});
  }
  return true;
}();

TEST(NeuronRegistry, ListsTheBuiltInsFirstAndRefusesUnknownNames) {
  const std::vector<std::string> names = neuron_names();
  const std::vector<std::string> first{"lif", "if", "plif", "adaptive_lif", "tau_lif"};
  ASSERT_GE(names.size(), first.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 5), first);
  EXPECT_EQ(find_neuron("plif").param_name, "w");
  EXPECT_EQ(find_neuron("plif").num_params, 1);
  expect_error([] { find_neuron("izhikevich"); },
               "unknown neuron 'izhikevich'; registered neurons: lif, if, plif, adaptive_lif, tau_lif");
  expect_error([] { configure_neuron({"LIF", {}}); }, "unknown neuron 'LIF'");
}

TEST(NeuronRegistry, OptionsAreCheckedAgainstTheNeuron) {
  const NeuronOptionValues all = complete_neuron_options({"adaptive_lif", {{"beta", 0.25}}}, "--neuron-opt");
  EXPECT_EQ(all, (NeuronOptionValues{{"beta", 0.25}, {"decay", 0.5}, {"rho", 0.5}, {"theta0", 1.0}}));
  EXPECT_EQ(complete_neuron_options({"tau_lif", {}}, "x"), (NeuronOptionValues{{"tau", 2.0}}));
  expect_error([] { complete_neuron_options({"adaptive_lif", {{"theta", 2}}}, "--neuron-opt"); },
               "--neuron-opt: neuron 'adaptive_lif' has no option 'theta'; its options: decay, theta0, beta, rho");
  expect_error([] { complete_neuron_options({"tau_lif", {{"tau", 0.5}}}, "--neuron-opt"); },
               "--neuron-opt: neuron 'tau_lif' option 'tau' must be >= 1, got 0.5");
  expect_error([] { complete_neuron_options({"plif", {{"init_tau", 1}}}, "--neuron-opt"); },
               "neuron 'plif' option 'init_tau' must be > 1, got 1");
  expect_error([] { complete_neuron_options({"adaptive_lif", {{"rho", std::nan("")}}}, "cfg"); },
               "cfg: neuron 'adaptive_lif' option 'rho' must be [0, 1], got nan");
  expect_error([] { complete_neuron_options({"lif", {{"tau", 2}}}, "--neuron-opt"); },
               "--neuron-opt: neuron 'lif' has no options of its own, got 'tau' (its threshold and reset are the run's");
}

TEST(NeuronRegistry, RegistrationRefusesBadEntries) {
  auto valid = [] {
    NeuronType t = find_neuron("lif");  // a copy: its runner is lif's
    t.name = "test_registry_lif_copy";
    return t;
  };
  NeuronType taken = valid();
  taken.name = "plif";
  expect_error([&] { register_neuron(taken); }, "register_neuron: a neuron named 'plif' exists");
  NeuronType bad_name = valid();
  bad_name.name = "My Neuron";
  expect_error([&] { register_neuron(bad_name); }, "a neuron name is lower-case letters, digits and '_', got 'My Neuron'");
  NeuronType bad_default = valid();
  bad_default.options = {{"k", 5.0, neurons::OptionRange::between(0, 1), "a factor"}};
  expect_error([&] { register_neuron(bad_default); }, "the default of 'k', 5, is outside its range [0, 1]");
  register_neuron(valid());
  EXPECT_EQ(find_neuron("test_registry_lif_copy").name, "test_registry_lif_copy");
  expect_error([&] { register_neuron(valid()); }, "a neuron named 'test_registry_lif_copy' exists");
}

// The run's SpikeOptions that a neuron does not take are refused, not ignored.
TEST(NeuronRegistry, RunSettingsANeuronDoesNotTakeAreErrors) {
  Tape tape;
  const Tensor x = Tensor::zeros({2, 3});
  auto spike = [&](const std::string& name, const ops::SpikeOptions& o) {
    const ConfiguredNeuron n = configure_neuron({name, {}});
    n.runner->spike(tape, x, o, n.initial_params());
  };
  ops::SpikeOptions theta;
  theta.threshold = 0.7;
  expect_error([&] { spike("adaptive_lif", theta); },
               "adaptive_lif: sets its own threshold and does not take the run's threshold (1 by default), got 0.7; "
               "its options: decay, theta0, beta, rho");
  EXPECT_NO_THROW(spike("tau_lif", theta));
  ops::SpikeOptions soft;
  soft.reset = ops::ResetKind::soft;
  expect_error([&] { spike("adaptive_lif", soft); }, "adaptive_lif: sets its own reset");
  ops::SpikeOptions decay;
  decay.decay = 0.3;
  expect_error([&] { spike("plif", decay); }, "plif: does not take the run's decay (LIF's leak, 0.5 by default), got 0.3");
  expect_error([&] { spike("if", decay); }, "if: does not take the run's decay");
  EXPECT_NO_THROW(spike("lif", decay));
  ops::SpikeOptions if_kind;
  if_kind.neuron = ops::NeuronKind::if_;
  expect_error([&] { spike("lif", if_kind); }, "lif: SpikeOptions::neuron is if_");
  EXPECT_NO_THROW(spike("if", if_kind));
  ops::SpikeOptions bad_theta;
  bad_theta.threshold = -1;
  expect_error([&] { spike("tau_lif", bad_theta); }, "tau_lif: threshold must be > 0, got -1");
  const ConfiguredNeuron lif = configure_neuron({"lif", {}});
  expect_error([&] { lif.runner->spike(tape, x, {}, Tensor::zeros({1})); }, "lif: has no learnable scalars");
  const ConfiguredNeuron plif = configure_neuron({"plif", {}});
  expect_error([&] { plif.runner->spike(tape, x, {}, Tensor()); }, "plif: params is undefined");
}

// lif and if through the registry are ops::spike / ops::batch_norm_spike themselves.
TEST(NeuronRegistry, LifAndIfAreTheBuiltInOps) {
  const Tensor x = uniform({6, 4, 9}, DType::F32, 320, -0.6, 2.2);
  for (const char* name : {"lif", "if"}) {
    ops::SpikeOptions o;
    o.neuron = std::string(name) == "if" ? ops::NeuronKind::if_ : ops::NeuronKind::lif;
    o.reset = ops::ResetKind::soft;
    Tape tape;
    EXPECT_EQ(configure_neuron({name, {}}).runner->spike(tape, x, o, Tensor()).to_vector<float>(),
              ops::spike(tape, x, o).to_vector<float>())
        << name;
  }
}

// tau_lif (examples/neurons/tau_lif.h), written with the one-state adapter, against its equations by hand:
// h = v + (x - v)/tau, spike iff h > theta, hard or soft reset.
TEST(NeuronRegistry, OneStateTauLifMatchesAHandWrittenLoop) {
  const int64_t steps = 7, count = 3 * 53;
  const Tensor x = uniform({steps, 3, 53}, DType::F64, 321, -0.5, 3.0);
  const std::vector<double> xs = x.to_vector<double>();
  for (ops::ResetKind reset : {ops::ResetKind::hard, ops::ResetKind::soft}) {
    const double tau = 1.7, theta = 0.9;
    std::vector<double> expected(xs.size());
    for (int64_t i = 0; i < count; ++i) {
      double v = 0;
      for (int64_t t = 0; t < steps; ++t) {
        const double h = v + (xs[size_t(t * count + i)] - v) * (1.0 / tau);
        const double s = h > theta ? 1 : 0;
        v = reset == ops::ResetKind::hard ? h * (1 - s) : h - s * theta;
        expected[size_t(t * count + i)] = s;
      }
    }
    ops::SpikeOptions o;
    o.threshold = theta;
    o.reset = reset;
    Tape tape;
    EXPECT_EQ(configure_neuron({"tau_lif", {{"tau", tau}}}).runner->spike(tape, x, o, Tensor()).to_vector<double>(), expected);
    examples::TauLif n;  // the struct directly, as ops::spike_with runs any neuron
    n.tau = tau;
    n.theta = theta;
    n.reset = ops::neuron_detail::kernel_reset(reset);  // the struct's field is the kernels' enum
    EXPECT_EQ(ops::spike_with(tape, x, n, {}).to_vector<double>(), expected);
  }
}

// The registry's plif is SpikingJelly's ParametricLIFNode (w, decay 1 - sig(w)); ops::plif_spike is the same
// neuron with decay_logit = -w: the same spikes and x-gradients bit for bit, and opposite w-gradients (equal
// up to the order of one product's factors).
TEST(NeuronRegistry, PlifIsSpikingJellysWithTheOppositeSignOfPlifSpike) {
  const ConfiguredNeuron plif = configure_neuron({"plif", {{"init_tau", 3.0}}});
  const Tensor w0 = plif.initial_params();
  ASSERT_EQ(w0.shape(), Shape{});
  EXPECT_FLOAT_EQ(w0.to_vector<float>()[0], float(-std::log(2.0)));
  Tensor x = uniform({6, 2, 37}, DType::F64, 322, -0.6, 2.2);
  Tensor w = Tensor::full({}, 0.4, DType::F64), logit = Tensor::full({}, -0.4, DType::F64);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  logit.set_requires_grad(true);
  Tape tape;
  Tensor a = plif.runner->spike(tape, x, {}, w), b = ops::plif_spike(tape, x, logit);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
  const Tensor r = randn(x.shape(), DType::F64, 323);
  const std::vector<Tensor> ga = tape.vjp(a, r, {x, w}), gb = tape.vjp(b, r, {x, logit});
  EXPECT_EQ(ga[0].to_vector<double>(), gb[0].to_vector<double>());
  const double dw = ga[1].to_vector<double>()[0], dlogit = gb[1].to_vector<double>()[0];
  EXPECT_NE(dw, 0.0);
  EXPECT_NEAR(dw, -dlogit, 1e-13 * std::abs(dlogit));
}

// ---- fused equals unfused, and CUDA equals CPU, for every registered neuron ----------------------------------
struct LayerResult {
  Tensor y, dx, dw, db, dparams, running_mean, running_var;
};

LayerResult run_layer(const ConfiguredNeuron& n, bool fused, DType d, Device dev, bool training, const ops::SpikeOptions& o) {
  const int64_t T = 4;
  const Shape shape{8, 3, 5, 7};  // T = 4, B = 2
  std::vector<Tensor> in = fused_inputs(n, shape, d, 7);
  for (Tensor& t : in) t = t.to(dev);
  const std::vector<size_t> wrt_at = n.type->num_params > 0 ? std::vector<size_t>{0, 1, 2, 5} : std::vector<size_t>{0, 1, 2};
  std::vector<Tensor> wrt;
  for (size_t k : wrt_at) wrt.push_back(in[k].set_requires_grad(true));
  Tape tape;
  ops::BatchNormOptions bn;
  bn.training = training;
  const Tensor params = params_of(in, 5);
  Tensor y;
  if (fused) {
    y = n.runner->batch_norm_spike(tape, in[0], in[1], in[2], in[3], in[4], bn, T, o, params);
  } else {
    const Tensor u = ops::batch_norm(tape, in[0], in[1], in[2], in[3], in[4], bn);
    y = ops::reshape(tape, n.runner->spike(tape, ops::reshape(tape, u, {T, -1}), o, params), shape);
  }
  const std::vector<Tensor> g = tape.vjp(y, randn(shape, d, 99).to(dev), wrt);
  auto host = [](const Tensor& t) { return t.to(Device::CPU).to(DType::F64); };
  return {host(y), host(g[0]), host(g[1]), host(g[2]), g.size() > 3 ? host(g[3]) : Tensor(), host(in[3]), host(in[4])};
}

void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.defined(), b.defined()) << what;
  if (a.defined()) EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>()) << what;
}

TEST(NeuronRegistry, FusedEqualsUnfusedExactlyForEveryNeuron) {
  ops::SpikeOptions rga;
  rga.backward = ops::SpikeBackward::rga;
  rga.rga_tau = 0.5;  // registered neurons other than lif/if have no decay to default it to
  const std::pair<const char*, ops::SpikeOptions> modes[] = {{"bptt", {}}, {"smooth", smooth_sigmoid()}, {"rga", rga}};
  for (const std::string& name : neuron_names()) {
    const ConfiguredNeuron n = configure_neuron({name, {}});
    for (DType d : {DType::F32, DType::F64})
      for (bool training : {true, false})
        for (const auto& [mode, o] : modes) {
          const std::string what = name + " " + mode + (training ? " train " : " eval ") + (d == DType::F32 ? "f32" : "f64");
          const LayerResult a = run_layer(n, true, d, Device::CPU, training, o);
          const LayerResult b = run_layer(n, false, d, Device::CPU, training, o);
          double spikes = 0;
          for (double s : a.y.to_vector<double>()) spikes += s;
          EXPECT_GT(spikes, 0.05 * double(a.y.numel())) << what << ": the inputs must make the layer fire";
          expect_same(a.y, b.y, what + ": spikes");
          expect_same(a.dx, b.dx, what + ": dx");
          expect_same(a.dw, b.dw, what + ": d weight");
          expect_same(a.db, b.db, what + ": d bias");
          expect_same(a.dparams, b.dparams, what + ": d learnable scalars");
          expect_same(a.running_mean, b.running_mean, what + ": running_mean");
          expect_same(a.running_var, b.running_var, what + ": running_var");
        }
  }
}

// Normal mode on CUDA (emulated without a GPU): spikes exactly the CPU's, gradients within float32 rounding.
TEST(NeuronRegistry, CudaMatchesCpuForEveryNeuronUnfusedAndFused) {
  SG_SKIP_WITHOUT_CUDA();
  for (const std::string& name : neuron_names()) {
    const ConfiguredNeuron n = configure_neuron({name, {}});
    for (bool fused : {false, true})
      for (bool detach : {false, true}) {
        ops::SpikeOptions o;
        o.detach_reset = detach;
        o.surrogate = ops::Surrogate::atan(2.0);
        const std::string what = name + (fused ? " fused" : " unfused") + (detach ? " detach" : "");
        const LayerResult cpu = run_layer(n, fused, DType::F32, Device::CPU, true, o);
        const LayerResult gpu = run_layer(n, fused, DType::F32, Device::CUDA, true, o);
        expect_same(gpu.y, cpu.y, what + ": spikes");
        expect_close(gpu.dx, cpu.dx, 1e-4, 1e-5, what + ": dx");
        expect_close(gpu.dw, cpu.dw, 1e-4, 1e-4, what + ": d weight");
        // A learnable scalar's gradient sums T·n per-step terms with float32 rounding that differs between the
        // backends, so its absolute error grows with the count (as tests/test_neuron_backends.cpp's PLIF).
        if (cpu.dparams.defined()) expect_close(gpu.dparams, cpu.dparams, 1e-4, 1e-4, what + ": d learnable scalars");
      }
  }
}

}  // namespace
}  // namespace spikegrad::testing
