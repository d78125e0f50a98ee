// Registered neurons reach models, checkpoints and the command line with no code per neuron:
//  - PLIF's learnable w is a parameter of every spiking layer, named as SpikingJelly names it
//    ("features.0.neuron.w", shape ()), is trained, and round-trips through checkpoints and --resume;
//  - a model runs its fused BN + neuron layers for any registered neuron with the results of the unfused ones;
//  - --neuron takes every registered name, --neuron-opt a neuron's own options (on the command line and in a
//    --config file), both checked with errors that name the neuron, the key and what it accepts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "apps/checkpoint.h"
#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/train.h"
#include "engine/optim.h"
#include "models/model.h"
#include "support/model_config.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"
#include "support/cli_runs.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

ModelConfig neuron_model(const std::string& neuron, NeuronOptionValues options = {}, bool fused = true) {
  ModelConfig c = model_config(1, 16, 2);
  c.neuron_spec = {neuron, std::move(options)};
  c.fuse_bn_spike = fused;
  return c;
}

std::vector<std::string> neuron_parameter_names(const Model& m) {
  std::vector<std::string> names;
  for (const NamedTensor& p : m.parameters())
    if (p.name.find(".neuron.") != std::string::npos) names.push_back(p.name);
  return names;
}

Tensor parameter(const Model& m, const std::string& name) {
  for (const NamedTensor& p : m.parameters())
    if (p.name == name) return p.tensor;
  ADD_FAILURE() << "no parameter " << name;
  return Tensor();
}

TEST(NeuronModels, PlifAddsOneNamedScalarPerSpikingLayer) {
  auto lif = make_model("small_cnn", neuron_model("lif"));
  auto plif = make_model("small_cnn", neuron_model("plif", {{"init_tau", 3.0}}));
  EXPECT_TRUE(neuron_parameter_names(*lif).empty());
  EXPECT_EQ(neuron_parameter_names(*plif), (std::vector<std::string>{"features.0.neuron.w", "features.2.neuron.w"}));
  EXPECT_EQ(plif->num_parameters(), lif->num_parameters() + 2);
  const Tensor w = parameter(*plif, "features.0.neuron.w");
  EXPECT_EQ(w.shape(), Shape{});  // SpikingJelly's w is a 0-dim tensor
  EXPECT_FLOAT_EQ(w.to_vector<float>()[0], float(-std::log(2.0)));  // -log(init_tau - 1)
  // A spiking hidden Linear gets its own (AlexNet: conv stages 0, 2, 4, 5, 6 and classifier.0).
  ModelConfig mc = neuron_model("plif");
  mc.in_channels = 3;
  mc.image_size = 32;
  EXPECT_EQ(neuron_parameter_names(*make_model("alexnet", mc)),
            (std::vector<std::string>{"features.0.neuron.w", "features.2.neuron.w", "features.4.neuron.w",
                                      "features.5.neuron.w", "features.6.neuron.w", "classifier.0.neuron.w"}));
  expect_error([] { make_model("small_cnn", neuron_model("plif", {{"tau", 3.0}})); },
               "small_cnn: neuron options: neuron 'plif' has no option 'tau'; its options: init_tau");
}

struct Step {
  Tensor logits;
  std::vector<Tensor> grads;  // every parameter's, in model order
};

// One training step on a fixed batch: forward, CE on the mean logits, backward, then (optionally) Adam.
Step train_step(Model& m, bool apply) {
  m.train(true);
  Tape tape;
  const Tensor images = uniform({4, 1, 16, 16}, DType::F32, 401, 0, 1);
  ForwardResult out = m.forward(tape, images);
  tape.backward(ops::cross_entropy(tape, ops::mean_time(tape, out.logits), labels(4, 10, 402)));
  Step s{out.logits.to(Device::CPU), {}};
  for (const NamedTensor& p : m.parameters()) s.grads.push_back(p.tensor.grad().to(Device::CPU));
  if (apply) Adam(m.parameters(), AdamOptions{1e-2}).step();
  return s;
}

TEST(NeuronModels, PlifsLeakIsTrainedAndFusedLayersEqualUnfused) {
  for (const char* neuron : {"plif", "tau_lif", "adaptive_lif"}) {
    auto fused = make_model("small_cnn", neuron_model(neuron, {}, true));
    auto unfused = make_model("small_cnn", neuron_model(neuron, {}, false));
    const Step a = train_step(*fused, false), b = train_step(*unfused, false);
    EXPECT_EQ(a.logits.to_vector<float>(), b.logits.to_vector<float>()) << neuron;
    ASSERT_EQ(a.grads.size(), b.grads.size());
    for (size_t k = 0; k < a.grads.size(); ++k)
      EXPECT_EQ(a.grads[k].to_vector<float>(), b.grads[k].to_vector<float>()) << neuron << " " << fused->parameters()[k].name;
  }
  auto m = make_model("small_cnn", neuron_model("plif"));
  const float before = parameter(*m, "features.2.neuron.w").to_vector<float>()[0];
  train_step(*m, true);
  EXPECT_NE(parameter(*m, "features.2.neuron.w").grad().to_vector<float>()[0], 0.f);
  EXPECT_NE(parameter(*m, "features.2.neuron.w").to_vector<float>()[0], before) << "the leak must be trained";
}

class NeuronRuns : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = write_synthetic_dataset("spikegrad_neuron_runs_data", 64, 16);
    runs_ = fresh_test_dir("spikegrad_neuron_runs");
  }
  void TearDown() override { fs::remove_all(runs_); }
  app::RunConfig base(const std::string& neuron, std::map<std::string, double> options) const {
    app::RunConfig c = small_run_config(data_, runs_, 16, 4, 16);
    c.neuron = neuron;
    c.neuron_opt = std::move(options);
    c.attacks = "none";
    c.obfuscation_checks = false;
    return c;
  }
  fs::path data_, runs_;
};

// The default report runs the attacks and the obfuscation checklist: for a neuron without an RGA τ the checklist
// leaves "BPTT vs RGA" out (it used to fail the finished run at report time), and --attack-grad rga is refused
// before training starts.
TEST_F(NeuronRuns, TheDefaultReportRunsForNeuronsWithoutAnRgaTau) {
  app::RunConfig c = base("plif", {});
  c.attacks = "fgsm";
  c.obfuscation_checks = true;
  c.epochs = 1;
  const fs::path run = app::run_train(c);
  const std::string report = read_text(run / "report.md");
  EXPECT_NE(report.find("BPTT vs ANN-ReLU"), std::string::npos) << report;
  EXPECT_EQ(report.find("BPTT vs RGA"), std::string::npos) << report;
  c.attack_grad = "rga";
  c.name = "rga";
  expect_error([&] { app::run_train(c); }, "--attack-grad rga: the rate-gradient approximation needs the neuron's leak");
  EXPECT_FALSE(fs::exists(runs_ / "rga" / "metrics.csv"));
}

// The run config records the neuron and its options; eval rebuilds the model from it and loads w; --resume
// continues a PLIF run exactly as an uninterrupted one (w and its optimizer state included).
TEST_F(NeuronRuns, PlifTrainsEvaluatesAndResumesFromItsCheckpoint) {
  app::RunConfig full = base("plif", {{"init_tau", 3.0}});
  full.name = "full";
  const fs::path a = app::run_train(full);
  const app::Checkpoint ck = app::read_checkpoint((a / "last.safetensors").string());
  EXPECT_EQ(ck.config.neuron, "plif");
  EXPECT_EQ(ck.config.neuron_opt, (std::map<std::string, double>{{"init_tau", 3.0}}));
  int ws = 0;
  for (const NamedTensor& t : ck.file.tensors)
    if (t.name == "features.0.neuron.w" || t.name == "features.2.neuron.w") {
      ++ws;
      EXPECT_EQ(t.tensor.shape(), Shape{});
      EXPECT_NE(t.tensor.to_vector<float>()[0], float(-std::log(2.0))) << t.name << " must have been trained";
    }
  EXPECT_EQ(ws, 2);
  app::RunConfig eval = base("lif", {});  // eval takes the neuron from the checkpoint, not from its flags
  eval.checkpoint = (a / "best.safetensors").string();
  EXPECT_NO_THROW(app::run_eval(eval));
  // A LIF model has no w: restoring the PLIF checkpoint into it is refused, naming the tensor.
  ModelConfig mc;
  mc.time_steps = 2;
  auto lif = make_model("small_cnn", mc);
  expect_error([&] { app::restore_model(*lif, ck); }, "features.0.neuron.w");

  app::RunConfig part = base("plif", {{"init_tau", 3.0}});
  part.name = "part";
  part.epochs = 1;
  app::run_train(part);
  part.epochs = 2;
  part.resume = true;
  expect_same_run_results(a, app::run_train(part));
}

TEST_F(NeuronRuns, TheExampleNeuronTrainsAndAnEditedCheckpointIsRefused) {
  const fs::path dir = app::run_train(base("tau_lif", {{"tau", 3.0}}));
  const std::vector<std::vector<std::string>> rows = read_csv(dir / "metrics.csv");
  ASSERT_GE(rows.size(), 2u);
  app::RunConfig edited = base("tau_lif", {{"beta", 1.0}});
  const std::string path = (runs_ / "edited.safetensors").string();
  app::save_checkpoint(path, *make_model("small_cnn", neuron_model("tau_lif")), nullptr, edited, app::TrainProgress());
  expect_error([&] { app::read_checkpoint(path); },
               "config.neuron_opt: neuron 'tau_lif' has no option 'beta'; its options: tau");
}

// ---- the command line ---------------------------------------------------------------------------------------
int parse(std::vector<std::string> args, app::CommandLine* cl, std::string* err) { return parse_cli(args, cl, err); }

TEST(NeuronCli, NeuronTakesEveryRegisteredNameAndNeuronOptItsOptions) {
  app::CommandLine cl;
  std::string err;
  ASSERT_EQ(parse({"train", "--neuron", "plif"}, &cl, &err), -1) << err;
  EXPECT_EQ(cl.config.neuron, "plif");
  ASSERT_EQ(parse({"train", "--neuron", "adaptive_lif", "--neuron-opt", "beta=0.2,rho=0.75", "--neuron-opt", " decay=1 "},
                  &cl, &err),
            -1)
      << err;
  EXPECT_EQ(cl.config.neuron_opt, (std::map<std::string, double>{{"beta", 0.2}, {"rho", 0.75}, {"decay", 1.0}}));
  EXPECT_TRUE(cl.given.has("neuron_opt"));
  EXPECT_NO_THROW(app::validate(cl.config));

  EXPECT_EQ(parse({"train", "--neuron", "izhikevich"}, &cl, &err), 2);
  EXPECT_NE(err.find("--neuron: unknown neuron 'izhikevich'; registered neurons: lif, if, plif, adaptive_lif, tau_lif"),
            std::string::npos)
      << err;
  EXPECT_EQ(parse({"train", "--neuron-opt", "tau"}, &cl, &err), 2);
  EXPECT_NE(err.find("--neuron-opt: expected KEY=VALUE, got 'tau'"), std::string::npos) << err;
  EXPECT_EQ(parse({"train", "--neuron-opt", "tau=fast"}, &cl, &err), 2);
  EXPECT_NE(err.find("--neuron-opt: the value of 'tau' must be a finite number, got 'fast'"), std::string::npos) << err;
  EXPECT_EQ(parse({"train", "--neuron-opt", "tau=2,tau=3"}, &cl, &err), 2);
  EXPECT_NE(err.find("--neuron-opt: 'tau' is given twice"), std::string::npos) << err;
}

// Checked against the chosen neuron before anything runs (app::validate): keys, ranges, and the shared flags
// that the neuron would otherwise ignore.
TEST(NeuronCli, OptionsAndSharedFlagsAreCheckedAgainstTheNeuron) {
  app::RunConfig c;
  c.neuron = "tau_lif";
  c.neuron_opt = {{"beta", 1.0}};
  expect_error([&] { app::validate(c); }, "--neuron-opt: neuron 'tau_lif' has no option 'beta'; its options: tau");
  c.neuron_opt = {{"tau", 0.0}};
  expect_error([&] { app::validate(c); }, "--neuron-opt: neuron 'tau_lif' option 'tau' must be >= 1, got 0");
  c.neuron_opt = {{"tau", 4.0}};
  c.threshold = 0.5;
  c.reset = "soft";
  EXPECT_NO_THROW(app::validate(c)) << "a one-state neuron takes the run's threshold and reset";
  c.decay = 0.3;
  expect_error([&] { app::validate(c); },
               "--decay 0.3: --neuron tau_lif does not take it (it is lif's leak) (its own options, for --neuron-opt: tau)");
  app::RunConfig a;
  a.neuron = "adaptive_lif";
  a.threshold = 0.5;
  expect_error([&] { app::validate(a); }, "--threshold 0.5: --neuron adaptive_lif sets its own threshold");
  a.threshold = 1.0;
  a.reset = "soft";
  expect_error([&] { app::validate(a); }, "--reset soft: --neuron adaptive_lif sets its own reset");
  app::RunConfig u;
  u.neuron = "izhikevich";
  expect_error([&] { app::validate(u); }, "--neuron: unknown neuron 'izhikevich'; registered neurons: lif, if");
}

TEST(NeuronCli, ConfigFilesAndResumeCarryTheNeuronOptions) {
  const fs::path dir = fresh_test_dir("spikegrad_neuron_cli");
  fs::create_directories(dir);
  const fs::path file = dir / "neuron.toml";
  std::ofstream(file) << "[train]\nneuron = \"tau_lif\"\nneuron-opt = \"tau=3\"\n";
  app::CommandLine cl;
  std::string err;
  ASSERT_EQ(parse({"train", "--config", file.string()}, &cl, &err), -1) << err;
  EXPECT_EQ(cl.config.neuron, "tau_lif");
  EXPECT_EQ(cl.config.neuron_opt, (std::map<std::string, double>{{"tau", 3.0}}));
  EXPECT_EQ(app::RunConfig::from_json(cl.config.to_json()).neuron_opt, cl.config.neuron_opt);
  // --resume refuses other neuron options than the run's, naming the flag.
  app::RunConfig asked = cl.config;
  asked.neuron_opt = {{"tau", 4.0}};
  app::GivenSettings given;
  given.all = false;
  given.keys = {"neuron_opt"};
  expect_error([&] { app::config_for_resume(cl.config, asked, given, "last.safetensors"); },
               "--neuron-opt {\"tau\":4.0} differs from the run's {\"tau\":3.0}");
  fs::remove_all(dir);
}

#ifdef SPIKEGRAD_CLI_PATH

// The binary: an unknown neuron or a bad option stops before any data is read (exit 2, one line).
TEST(NeuronCli, TheBinaryRejectsUnknownNeuronsAndBadOptions) {
  const std::string no_data = " --device cpu --data-dir " + (fs::path(::testing::TempDir()) / "no-such-data").string();
  std::string err;
  EXPECT_EQ(run_cli("train --neuron izhikevich" + no_data, &err), 2);
  EXPECT_NE(err.find("unknown neuron 'izhikevich'; registered neurons: lif, if, plif, adaptive_lif, tau_lif"),
            std::string::npos)
      << err;
  EXPECT_EQ(run_cli("train --neuron plif --neuron-opt init_tau=0.5" + no_data, &err), 2);
  EXPECT_NE(err.find("--neuron-opt: neuron 'plif' option 'init_tau' must be > 1, got 0.5"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  // Accepted: the run gets as far as the (missing) data.
  EXPECT_EQ(run_cli("train --neuron tau_lif --neuron-opt tau=3" + no_data, &err), 2);
  EXPECT_EQ(err.find("neuron"), std::string::npos) << err;
}
#endif

}  // namespace
}  // namespace spikegrad::testing
