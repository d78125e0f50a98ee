// One full training step of the CIFAR-sized zoo models, as apps/train.cpp runs it: forward, loss
// (CE on the mean over T of the logits, + 0.05 * I(X;Z) on the model's default taps when TMI is on),
// tape backward, Adam step, zero_grad. Models `vggsnn` and `vgg11` from make_model, inputs 3x32x32,
// 10 classes, CIFAR-10 normalisation, default LIF, Adam(lr 1e-3). Args: {B, T}. On the CPU also `small_cnn`
// on Fashion-MNIST-sized inputs (1x28x28, its default dataset), the small model of the CPU side-by-side
// with PyTorch (scripts/compare/cpu_side_by_side.sh).
// Inputs are synthetic: images uniform in [0,1) and labels uniform in [0,10), both from the counter RNG
// with a fixed seed, built once and reused every step (no data loading, no host-to-device copy timed).
//
// Counters:
//   img/s          B images per iteration, as a rate over the iteration time (wall clock on the CPU,
//                  CUDA events on the GPU).
//   GFLOP/s        the multiply-adds of the convolutions and Linear layers only (BN, neurons, loss, MI and
//                  Adam are not counted), N = T*B:
//                    conv forward 2*N*K*C*R*S*P*Q, backward dw the same and dx the same except for the first
//                    conv (its input, the encoded image, needs no gradient, so autograd skips dx there);
//                    Linear forward 2*N*in*out, backward dw + dx the same each.
//                  K,C,R,S come from the weights, P,Q from the conv stage's spike tap (T,B,K,P,Q).
//                  Napkin numbers per image per time step, forward: vggsnn 0.589 GFLOP, vgg11 1.199 GFLOP,
//                  so a step at B=64, T=4 is 0.451 TFLOP (vggsnn) and 0.920 TFLOP (vgg11).
//   step_peak_MiB  what one step adds on top of the training state, on the device's caching allocator
//                  (engine/allocator.h): max over the timed steps of the bytes handed out to live tensors,
//                  minus the bytes live just before a step. It covers everything a step allocates and frees
//                  again: the activations saved for backward, the tape's temporaries, the parameter
//                  gradients (zero_grad drops them, backward re-creates them), the loss and MI scratch,
//                  the optimizer's temporaries, and on CUDA the cuDNN workspaces. It EXCLUDES the state that
//                  lives across steps (state_MiB below). Sizes are the allocator's blocks (rounded to 512 B
//                  below 1 MiB, 2 MiB above; a block reused from the cache may be up to twice the request).
//                  Not on the allocator, so not counted: the CPU kernels' per-call std::vector scratch
//                  (im2col column buffers and per-thread dw partials of the conv, the KDE-MI windows) and
//                  library-owned memory (cuBLAS/cuDNN handles, the CUDA context).
//   state_MiB      the bytes live on that allocator just before a step: parameters, BN running statistics,
//                  Adam's exp_avg and exp_avg_sq, the input batch and labels, and the previous step's loss
//                  scalar. step_peak_MiB + state_MiB is the allocator's peak during training.
//   reserved_MiB   bytes the allocator holds from the system after the run (live + cached blocks; its cache
//                  is emptied before each benchmark, so this is the footprint of this model alone).
// CPU variants use OpenMP, so their time is wall clock (UseRealTime); a VGGSNN step at B=64, T=4 takes
// seconds on a small CPU, so they run a fixed number of iterations. CUDA variants time each step with CUDA
// events on the default stream (UseManualTime); without a device they report "no CUDA device".
#include <benchmark/benchmark.h>

#include "bench/gpu_timer.h"
#include "bench/skip_without_cuda.h"

#include <array>
#include <cmath>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/check.h"
#include "engine/cuda_context.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "engine/tape.h"
#include "losses/losses.h"
#include "models/model.h"

namespace spikegrad {
namespace {

constexpr int64_t kClasses = 10;
constexpr uint64_t kSeed = 2026;
constexpr double kMiLambda = 0.05;
constexpr double kMiB = 1024.0 * 1024.0;

// Engine variants, so before/after figures come from the same binary and run:
//   saver      the defaults: fused BN + neuron, spike inputs kept as bytes, only the taps the loss needs,
//              released once the loss has read them (as apps/train.cpp)
//   plain      all three off: BN and neuron as two ops, convs keep float inputs, every tap kept (the engine
//              before these memory savers)
//   sj         the defaults with the ATan surrogate (alpha 2), the neuron of the SpikingJelly comparison
//              (scripts/compare/sj_vggsnn_step.py)
enum class Variant { saver, plain, sj };

// The input a model is built for: shape and the dataset's normalisation (datasets/ sets the same values).
struct InputSpec {
  int64_t channels, size;
  std::array<float, 3> mean, std;  // the first `channels` entries are used, as in ModelConfig
};
const InputSpec kCifar10{3, 32, {0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f}};
const InputSpec kFashionMnist{1, 28, {0.2860f, 0.f, 0.f}, {0.3530f, 1.f, 1.f}};

class TrainStep {
 public:
  TrainStep(const std::string& model_name, int64_t batch, int64_t time_steps, bool tmi, Device device,
            Variant variant = Variant::saver, const InputSpec& input = kCifar10)
      : batch_(batch), time_steps_(time_steps), keep_all_taps_(variant == Variant::plain) {
    ModelConfig c;
    c.in_channels = input.channels;
    c.image_size = input.size;
    c.num_classes = kClasses;
    c.time_steps = time_steps;
    c.mean = input.mean;
    c.std = input.std;
    c.init_seed = kSeed;
    c.fuse_bn_spike = c.pack_spike_inputs = variant != Variant::plain;
    if (variant == Variant::sj) c.neuron.surrogate = ops::Surrogate::atan(2.0);
    model_ = make_model(model_name, c);
    model_->to(device);
    model_->train(true);
    adam_ = std::make_unique<Adam>(model_->parameters(), AdamOptions{1e-3});
    loss_.base = LossBase::ce;
    loss_.mi_lambda = tmi ? kMiLambda : 0.0;  // empty tap names: the model's defaults (X first, Z last conv)

    Generator gen(kSeed);
    images_ = rand_uniform({batch, input.channels, input.size, input.size}, gen, device);
    std::vector<int32_t> y(static_cast<size_t>(batch));
    for (auto& v : y) v = int32_t(gen.next_u32() % uint32_t(kClasses));
    labels_ = Tensor::from_vector(y, {batch}).to(device);
  }

  void run() {
    Tape tape;
    ForwardResult out = model_->forward(tape, images_, keep_all_taps_ ? TapKeep::everything() : taps_needed(loss_));
    LossParts parts = compute_loss(tape, out.logits, labels_, out.taps, loss_);
    if (conv_outputs_.empty()) record_conv_outputs(out.taps);
    if (!keep_all_taps_) out.taps = Taps();  // as apps/train.cpp: the loss has read them
    tape.backward(parts.total);
    adam_->step();
    adam_->zero_grad();
    last_loss_ = parts.total;
  }

  // The loss of the last step; reading it synchronises with the device.
  double last_loss() const { return last_loss_.item(); }

  // Conv + Linear FLOPs of one step (formula at the top of the file), from the shapes the first run() saw.
  double flops() const {
    const double n = double(time_steps_ * batch_);
    double total = 0;
    bool first_conv = true;
    for (const NamedTensor& p : model_->parameters()) {
      const Shape& w = p.tensor.shape();
      const std::string& name = p.name;
      const std::string conv_suffix = ".conv.weight";
      if (name.size() > conv_suffix.size() && name.compare(name.size() - conv_suffix.size(), conv_suffix.size(), conv_suffix) == 0) {
        const std::string stage = name.substr(0, name.size() - conv_suffix.size());
        const Shape& tap = conv_output(stage);  // (T,B,K,P,Q)
        const double forward = 2.0 * n * double(w[0] * w[1] * w[2] * w[3]) * double(tap[3] * tap[4]);
        total += forward * (first_conv ? 2.0 : 3.0);
        first_conv = false;
      } else if (name.rfind("classifier.", 0) == 0 && w.size() == 2) {
        total += 3.0 * 2.0 * n * double(w[0] * w[1]);
      }
    }
    return total;
  }

 private:
  void record_conv_outputs(const Taps& taps) {
    for (const auto& [name, shape] : taps.listed()) conv_outputs_.push_back({name, shape});
  }
  const Shape& conv_output(const std::string& stage) const {
    for (const auto& [name, shape] : conv_outputs_)
      if (name == stage) {
        SG_CHECK(shape.size() == 5, "bench_train_step: tap " << name << " should be (T,B,K,P,Q)");
        return shape;
      }
    SG_FAIL("bench_train_step: " << model_->name() << " has no spike tap for conv stage " << stage);
  }

  int64_t batch_, time_steps_;
  bool keep_all_taps_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Adam> adam_;
  LossConfig loss_;
  Tensor images_, labels_, last_loss_;
  std::vector<std::pair<std::string, Shape>> conv_outputs_;
};

void label(benchmark::State& state, const std::string& model, bool tmi) {
  state.SetLabel(model + (tmi ? " CE+0.05*MI" : " CE") + " B=" + std::to_string(state.range(0)) +
                 " T=" + std::to_string(state.range(1)));
}

void set_counters(benchmark::State& state, const TrainStep& step, Device device, size_t live_before) {
  const AllocatorStats s = allocator(device).stats();
  state.counters["img/s"] = benchmark::Counter(double(state.range(0)), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(step.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["step_peak_MiB"] = double(s.peak_bytes - live_before) / kMiB;
  state.counters["state_MiB"] = double(live_before) / kMiB;
  state.counters["reserved_MiB"] = double(s.reserved_bytes) / kMiB;
}

// Builds the model, runs one warm-up step (fills the allocator's cache, cuDNN plans, Adam state), then
// resets the allocator's peak and hands over to `timed`, which runs the measured steps. An error (out of
// memory, a failed check) marks this benchmark as failed with its message instead of ending the suite.
template <class Timed>
void run_benchmark(benchmark::State& state, const std::string& model, bool tmi, Device device, Variant variant,
                   Timed&& timed, const InputSpec& input = kCifar10) {
  try {
    allocator(device).empty_cache();  // the previous benchmark's cached blocks would inflate reserved_MiB
    TrainStep step(model, state.range(0), state.range(1), tmi, device, variant, input);
    step.run();
    if (device == Device::CUDA) cuda_synchronize();
    const size_t live_before = allocator(device).stats().current_bytes;
    allocator(device).reset_peak();
    timed(step);
    const double loss = step.last_loss();
    if (!std::isfinite(loss)) return state.SkipWithError(("the training loss is not finite: " + std::to_string(loss)).c_str());
    set_counters(state, step, device, live_before);
    label(state, model + (variant == Variant::plain ? " plain" : variant == Variant::sj ? " atan" : ""), tmi);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_TrainStepCpu(benchmark::State& state, const char* model, bool tmi, Variant variant = Variant::saver,
                     const InputSpec& input = kCifar10) {
  run_benchmark(
      state, model, tmi, Device::CPU, variant, [&](TrainStep& step) {
        for (auto _ : state) step.run();
      },
      input);
}

void BM_TrainStepCuda(benchmark::State& state, const char* model, bool tmi, Variant variant = Variant::saver) {
#ifdef SPIKEGRAD_CUDA
  if (bench::skip_without_cuda(state)) return;
  run_benchmark(state, model, tmi, Device::CUDA, variant,
                [&](TrainStep& step) { bench::time_on_gpu(state, [&] { step.run(); }); });
#else
  bench::skip_without_cuda(state);
#endif
}

// CPU: B=16 (three timed steps) to finish in minutes on a small machine, B=64 (one timed step) for the
// figure the issue asks for. Each also runs one untimed warm-up step.
void cpu_args(benchmark::internal::Benchmark* b, int64_t batch, int iterations) {
  b->ArgNames({"B", "T"})->Args({batch, 4})->Iterations(iterations)->UseRealTime()->Unit(benchmark::kMillisecond);
}
void cpu_b16(benchmark::internal::Benchmark* b) { cpu_args(b, 16, 3); }
void cpu_b64(benchmark::internal::Benchmark* b) { cpu_args(b, 64, 1); }
// small_cnn's step is short (tens of ms at B=64, T=4), so twenty timed steps take about a second.
void cpu_small_b64(benchmark::internal::Benchmark* b) { cpu_args(b, 64, 20); }
void cuda_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T"})->Args({16, 4})->Args({64, 4})->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn, "vggsnn", false)->Apply(cpu_b16);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn_tmi, "vggsnn", true)->Apply(cpu_b16);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vgg11, "vgg11", false)->Apply(cpu_b16);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vgg11_tmi, "vgg11", true)->Apply(cpu_b16);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn_plain, "vggsnn", false, Variant::plain)->Apply(cpu_b16);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn_tmi_plain, "vggsnn", true, Variant::plain)->Apply(cpu_b16);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn, "vggsnn", false)->Apply(cpu_b64);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn_tmi, "vggsnn", true)->Apply(cpu_b64);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vgg11, "vgg11", false)->Apply(cpu_b64);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vgg11_tmi, "vgg11", true)->Apply(cpu_b64);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn_plain, "vggsnn", false, Variant::plain)->Apply(cpu_b64);
BENCHMARK_CAPTURE(BM_TrainStepCpu, vggsnn_tmi_plain, "vggsnn", true, Variant::plain)->Apply(cpu_b64);
BENCHMARK_CAPTURE(BM_TrainStepCpu, small_cnn, "small_cnn", false, Variant::saver, kFashionMnist)
    ->Apply(cpu_small_b64);
BENCHMARK_CAPTURE(BM_TrainStepCpu, small_cnn_tmi, "small_cnn", true, Variant::saver, kFashionMnist)
    ->Apply(cpu_small_b64);

BENCHMARK_CAPTURE(BM_TrainStepCuda, vggsnn, "vggsnn", false)->Apply(cuda_args);
BENCHMARK_CAPTURE(BM_TrainStepCuda, vggsnn_tmi, "vggsnn", true)->Apply(cuda_args);
BENCHMARK_CAPTURE(BM_TrainStepCuda, vgg11, "vgg11", false)->Apply(cuda_args);
BENCHMARK_CAPTURE(BM_TrainStepCuda, vgg11_tmi, "vgg11", true)->Apply(cuda_args);
BENCHMARK_CAPTURE(BM_TrainStepCuda, vggsnn_plain, "vggsnn", false, Variant::plain)->Apply(cuda_args);
BENCHMARK_CAPTURE(BM_TrainStepCuda, vggsnn_tmi_plain, "vggsnn", true, Variant::plain)->Apply(cuda_args);
BENCHMARK_CAPTURE(BM_TrainStepCuda, vggsnn_sj, "vggsnn", false, Variant::sj)->Apply(cuda_args);
BENCHMARK_CAPTURE(BM_TrainStepCuda, vggsnn_sj_tmi, "vggsnn", true, Variant::sj)->Apply(cuda_args);

}  // namespace
}  // namespace spikegrad

BENCHMARK_MAIN();
