// Neuron family across backends and against finite differences.
//  - Op-table cases (tests/test_op_table.cpp runs them): smooth mode, whose forward is the integral of the
//    surrogate, so central differences in float64 check the whole BPTT backward (every neuron, every
//    surrogate, both resets, PLIF's decay gradient, T = 1, odd sizes, more neurons than one CPU chunk);
//    the same cases also compare CUDA with the CPU.
//  - CUDA vs CPU in the normal (Heaviside) mode for every neuron x surrogate x reset x detach x backward:
//    spikes must agree exactly, gradients within tolerance (pitfall 4). Skipped without a GPU.
#include <gtest/gtest.h>

#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

using ops::SpikeOptions;
using ops::Surrogate;

SpikeOptions smooth_options(Surrogate s, ops::NeuronKind kind = ops::NeuronKind::lif,
                            ops::ResetKind reset = ops::ResetKind::hard, double threshold = 1.0) {
  SpikeOptions o;
  o.neuron = kind;
  o.surrogate = s;
  o.reset = reset;
  o.threshold = threshold;
  o.smooth = true;
  return o;
}

// Inputs spread over and around the surrogate's support, so every path (spike, reset, leak) carries gradient.
std::function<std::vector<Tensor>(DType)> input_of(Shape shape, uint64_t seed) {
  return [shape, seed](DType d) { return std::vector<Tensor>{uniform(shape, d, seed, -0.6, 2.2)}; };
}

std::function<Tensor(Tape&, const std::vector<Tensor>&)> spike_fn(SpikeOptions opt) {
  return [opt](Tape& t, const std::vector<Tensor>& x) { return ops::spike(t, x[0], opt); };
}

SG_OP_CASE({.name = "lif/smooth_triangle", .make_inputs = input_of({4, 3, 5}, 101), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::triangle()))});
SG_OP_CASE({.name = "lif/smooth_sigmoid", .make_inputs = input_of({6, 2, 7}, 102), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::sigmoid()))});
SG_OP_CASE({.name = "lif/smooth_atan", .make_inputs = input_of({5, 13}, 103), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::atan()))});
SG_OP_CASE({.name = "lif/smooth_rectangle", .make_inputs = input_of({4, 3, 5}, 104), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::rectangle(1.3)))});
SG_OP_CASE({.name = "lif/smooth_narrow_triangle_threshold", .make_inputs = input_of({3, 1, 9}, 105), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::triangle(0.5), ops::NeuronKind::lif, ops::ResetKind::hard, 1.5))});
SG_OP_CASE({.name = "lif/smooth_soft_reset", .make_inputs = input_of({5, 2, 3}, 106), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::triangle(), ops::NeuronKind::lif, ops::ResetKind::soft))});
SG_OP_CASE({.name = "if/smooth_triangle", .make_inputs = input_of({4, 3, 5}, 107), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::triangle(), ops::NeuronKind::if_))});
SG_OP_CASE({.name = "if/smooth_soft_reset_sigmoid", .make_inputs = input_of({6, 1, 5}, 108), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::sigmoid(), ops::NeuronKind::if_, ops::ResetKind::soft))});
SG_OP_CASE({.name = "lif/smooth_T1", .make_inputs = input_of({1, 5, 3}, 109), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::triangle()))});
SG_OP_CASE({.name = "lif/smooth_one_neuron", .make_inputs = input_of({7, 1}, 110), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::atan()))});
// 3 x 301 neurons: more than one CPU chunk (256) and not a multiple of the CUDA block.
SG_OP_CASE({.name = "lif/smooth_many_neurons", .make_inputs = input_of({3, 3, 301}, 111), .grad_inputs = {0},
            .forward = spike_fn(smooth_options(Surrogate::triangle()))});

// PLIF: gradients of both the input and the decay logit (a sum over every neuron and step).
std::function<std::vector<Tensor>(DType)> plif_inputs(Shape shape, uint64_t seed, double logit) {
  return [shape, seed, logit](DType d) {
    return std::vector<Tensor>{uniform(shape, d, seed, -0.6, 2.2), Tensor::full({1}, logit, d)};
  };
}
std::function<Tensor(Tape&, const std::vector<Tensor>&)> plif_fn(SpikeOptions opt) {
  return [opt](Tape& t, const std::vector<Tensor>& x) { return ops::plif_spike(t, x[0], x[1], opt); };
}
SG_OP_CASE({.name = "plif/smooth_triangle", .make_inputs = plif_inputs({5, 3, 4}, 121, 0.3), .grad_inputs = {0, 1},
            .forward = plif_fn(smooth_options(Surrogate::triangle()))});
SG_OP_CASE({.name = "plif/smooth_soft_atan", .make_inputs = plif_inputs({4, 2, 5}, 122, -0.7), .grad_inputs = {0, 1},
            .forward = plif_fn(smooth_options(Surrogate::atan(), ops::NeuronKind::lif, ops::ResetKind::soft))});
SG_OP_CASE({.name = "plif/smooth_decay_only_many", .make_inputs = plif_inputs({3, 2, 300}, 123, 1.1), .grad_inputs = {1},
            .forward = plif_fn(smooth_options(Surrogate::sigmoid()))});

// ---- CUDA vs CPU, normal mode -------------------------------------------------------------------------------
struct BackendRun {
  Tensor y, gx, gp;
};

BackendRun run_on(Device dev, const Tensor& x_cpu, const Tensor& logit_cpu, const Tensor& r_cpu, const SpikeOptions& opt,
           bool plif) {
  Tensor x = x_cpu.to(dev), logit = logit_cpu.to(dev);
  x.set_requires_grad(true);
  logit.set_requires_grad(plif);
  Tape tape;
  Tensor y = plif ? ops::plif_spike(tape, x, logit, opt) : ops::spike(tape, x, opt);
  std::vector<Tensor> wrt{x};
  if (plif) wrt.push_back(logit);
  std::vector<Tensor> g = tape.vjp(y, r_cpu.to(dev), wrt);
  return {y.to(Device::CPU), g[0].to(Device::CPU), plif ? g[1].to(Device::CPU) : Tensor()};
}

TEST(NeuronBackends, CudaMatchesCpuForEveryNeuronSurrogateAndReset) {
  SG_SKIP_WITHOUT_CUDA();
  const std::vector<Surrogate> surrogates = {Surrogate::triangle(), Surrogate::sigmoid(), Surrogate::atan(),
                                             Surrogate::rectangle()};
  const std::vector<Shape> shapes = {{4, 3, 97}, {1, 1, 1}, {9, 2, 5, 3}};
  int combos = 0;
  for (const char* neuron : {"lif", "if", "plif"})
    for (const Surrogate& s : surrogates)
      for (ops::ResetKind reset : {ops::ResetKind::hard, ops::ResetKind::soft})
        for (bool detach : {false, true})
          for (ops::SpikeBackward mode : {ops::SpikeBackward::bptt, ops::SpikeBackward::rga}) {
            const Shape& shape = shapes[size_t(combos++) % shapes.size()];
            SpikeOptions opt;
            opt.neuron = std::string(neuron) == "if" ? ops::NeuronKind::if_ : ops::NeuronKind::lif;
            opt.surrogate = s;
            opt.reset = reset;
            opt.detach_reset = detach;
            opt.backward = mode;
            opt.rga_tau = 0.5;
            const bool plif = std::string(neuron) == "plif";
            Tensor x = uniform(shape, DType::F32, 200 + uint64_t(combos), -0.6, 2.2);
            Tensor logit = Tensor::full({1}, 0.4);
            Tensor r = randn(shape, DType::F32, 300 + uint64_t(combos));
            BackendRun cpu = run_on(Device::CPU, x, logit, r, opt, plif);
            BackendRun gpu = run_on(Device::CUDA, x, logit, r, opt, plif);
            const std::string what = std::string(neuron) + " surrogate " + std::to_string(int(s.kind)) + " reset " +
                                     std::to_string(int(reset)) + " detach " + std::to_string(detach) + " mode " +
                                     std::to_string(int(mode));
            EXPECT_EQ(gpu.y.to_vector<float>(), cpu.y.to_vector<float>()) << what << ": spikes differ";
            expect_close(gpu.gx, cpu.gx, 1e-5, 1e-5, what + ": grad x");
            // The decay gradient sums T*n per-step terms of both signs, each with float32 rounding that differs
            // between the backends (expf, operation order), so its absolute error grows with the count.
            if (plif) expect_close(gpu.gp, cpu.gp, 1e-4, 1e-4, what + ": grad decay logit");
          }
}

}  // namespace
}  // namespace spikegrad::testing
