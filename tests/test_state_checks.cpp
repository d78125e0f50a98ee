// Issue 16, defects 8 (load side) and 12 (last part): a checkpoint whose state is not finite (NaN or inf
// weights, a negative BatchNorm running variance), or whose recorded config names an unknown neuron, reset
// or loss, is refused when it is loaded for eval/attack/--resume, with an error naming the tensor or the
// value — it used to evaluate to "15.00%" with a `nan` success rate, or to build LIF/CE instead, exit 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <unistd.h>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "models/model.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

class StateChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("spikegrad_state_checks_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_synthetic_idx(dir_, "train", 16, 1);
    write_synthetic_idx(dir_, "t10k", 16, 2);
  }
  void TearDown() override { fs::remove_all(dir_); }

  app::RunConfig config() const {
    app::RunConfig c;
    c.data_dir = dir_.string();
    c.device = "cpu";
    c.time_steps = 2;
    c.batch = 8;
    c.eval_batch = 16;
    c.attack_subset = 4;
    c.steps = 1;
    c.eps = "4/255";
    c.progress = false;
    return c;
  }
  static ModelConfig model_config() {
    ModelConfig mc;
    mc.time_steps = 2;
    mc.mean = {0.2860f, 0, 0};
    mc.std = {0.3530f, 1, 1};
    return mc;
  }
  // Saves an untrained small_cnn (the model `spikegrad train` builds for these flags) after `poke` edits
  // its state, with `cfg` as the recorded run config.
  std::string save(const std::string& file, const std::function<void(Model&)>& poke, const app::RunConfig& cfg) const {
    auto model = make_model("small_cnn", model_config());
    poke(*model);
    const std::string path = (dir_ / file).string();
    app::save_checkpoint(path, *model, nullptr, cfg, app::TrainProgress());
    return path;
  }
  std::string save(const std::string& file, const std::function<void(Model&)>& poke) const {
    return save(file, poke, config());
  }
  // The first tensor of the state whose name ends in `suffix`.
  static NamedTensor find(const Model& m, const std::string& suffix) {
    for (const NamedTensor& t : m.state())
      if (t.name.size() >= suffix.size() && t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0)
        return t;
    ADD_FAILURE() << "no tensor named *" << suffix;
    return {};
  }
  app::RunConfig eval_flags(const std::string& checkpoint) const {
    app::RunConfig f = config();
    f.checkpoint = checkpoint;
    return f;
  }

  fs::path dir_;
};

TEST_F(StateChecks, AFiniteCheckpointLoadsAndEvaluates) {
  const std::string path = save("good.safetensors", [](Model&) {});
  auto model = make_model("small_cnn", model_config());
  EXPECT_NO_THROW(app::check_model_state(*model, "fresh model"));
  EXPECT_NO_THROW(app::restore_model(*model, app::read_checkpoint(path)));
  EXPECT_NO_THROW(app::run_eval(eval_flags(path)));
}

// The optimizer's state too (--resume): a NaN momentum or a negative Adam second moment would make every
// weight it touches NaN at the first step after resuming.
TEST_F(StateChecks, NonFiniteOrNegativeOptimizerStateIsRefusedOnResume) {
  for (const char* slot : {"exp_avg", "exp_avg_sq"}) {
    auto model = make_model("small_cnn", model_config());
    Adam adam(model->parameters(), AdamOptions{1e-3});
    std::string name;
    for (const NamedTensor& t : adam.state())
      if (name.empty() && t.name.size() > std::string(slot).size() + 1 &&
          t.name.compare(t.name.size() - std::string(slot).size() - 1, std::string::npos, "." + std::string(slot)) == 0) {
        name = t.name;
        t.tensor.data<float>()[1] = std::string(slot) == "exp_avg" ? std::numeric_limits<float>::infinity() : -1.0f;
      }
    ASSERT_FALSE(name.empty()) << slot;
    const std::string path = (dir_ / (std::string(slot) + ".safetensors")).string();
    app::save_checkpoint(path, *model, &adam, config(), app::TrainProgress());
    auto fresh = make_model("small_cnn", model_config());
    Adam resumed(fresh->parameters(), AdamOptions{1e-3});
    const std::string msg = error_of([&] { app::restore_optimizer(resumed, app::read_checkpoint(path)); });
    const std::string expected = path + ": optimizer state: " + name + " has a " +
                                 (std::string(slot) == "exp_avg" ? "non-finite value inf" : "negative value -1") +
                                 " at index 1";
    EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  }
}

TEST_F(StateChecks, NaNWeightInACheckpointIsRefusedNamingTheTensor) {
  std::string name;
  const std::string path = save("nan.safetensors", [&](Model& m) {
    const NamedTensor t = m.parameters().front();
    name = t.name;
    t.tensor.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  });
  const std::string expected = "checkpoint " + path + ": " + name + " has a non-finite value nan at index 3";
  auto model = make_model("small_cnn", model_config());
  const std::vector<float> before = model->parameters().front().tensor.to_vector<float>();
  const std::string msg = error_of([&] { app::restore_model(*model, app::read_checkpoint(path)); });
  EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  EXPECT_EQ(model->parameters().front().tensor.to_vector<float>(), before) << "a refused checkpoint must copy nothing";
  const std::string eval_msg = error_of([&] { app::run_eval(eval_flags(path)); });
  EXPECT_NE(eval_msg.find(expected), std::string::npos) << eval_msg;
  const std::string attack_msg = error_of([&] { app::run_attack(eval_flags(path)); });
  EXPECT_NE(attack_msg.find(expected), std::string::npos) << attack_msg;
}

TEST_F(StateChecks, InfiniteBufferInACheckpointIsRefused) {
  std::string name;
  const std::string path = save("inf.safetensors", [&](Model& m) {
    const NamedTensor t = find(m, "running_mean");
    name = t.name;
    t.tensor.data<float>()[0] = -std::numeric_limits<float>::infinity();
    t.tensor.data<float>()[2] = std::numeric_limits<float>::infinity();
  });
  const std::string msg = error_of([&] { app::run_eval(eval_flags(path)); });
  EXPECT_NE(msg.find("checkpoint " + path + ": " + name + " has a non-finite value -inf at index 0 (2 of "),
            std::string::npos)
      << msg;
}

TEST_F(StateChecks, NegativeRunningVarianceInACheckpointIsRefused) {
  std::string name;
  const std::string path = save("negvar.safetensors", [&](Model& m) {
    const NamedTensor t = find(m, "running_var");
    name = t.name;
    t.tensor.data<float>()[7] = -0.5f;
  });
  const std::string expected = "checkpoint " + path + ": " + name + " has a negative value -0.5 at index 7";
  const std::string msg = error_of([&] { app::restore_model(*make_model("small_cnn", model_config()), app::read_checkpoint(path)); });
  EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  const std::string attack_msg = error_of([&] { app::run_attack(eval_flags(path)); });
  EXPECT_NE(attack_msg.find(expected), std::string::npos) << attack_msg;
}

// What the trainer calls after each epoch: the same check on the live model.
TEST_F(StateChecks, CheckModelStateNamesWhatItChecked) {
  auto model = make_model("small_cnn", model_config());
  const NamedTensor w = model->parameters().back();
  w.tensor.data<float>()[1] = std::numeric_limits<float>::infinity();
  const std::string msg = error_of([&] { app::check_model_state(*model, "after epoch 3"); });
  EXPECT_NE(msg.find("after epoch 3: " + w.name + " has a non-finite value inf at index 1 (1 of " +
                     std::to_string(w.tensor.numel()) + " values non-finite)"),
            std::string::npos)
      << msg;
  w.tensor.data<float>()[1] = 0.f;
  const NamedTensor v = find(*model, "running_var");
  v.tensor.data<float>()[0] = -1e-3f;
  const std::string msg2 = error_of([&] { app::check_model_state(*model, "after epoch 4"); });
  EXPECT_NE(msg2.find("after epoch 4: " + v.name + " has a negative value -0.001 at index 0"), std::string::npos) << msg2;
  v.tensor.data<float>()[0] = 0.f;  // zero variance is a legal state (a constant channel)
  EXPECT_NO_THROW(app::check_model_state(*model, "after epoch 5"));
}

TEST_F(StateChecks, UnknownNeuronResetOrLossInCheckpointMetadataIsAnError) {
  struct Case {
    std::string key, value;
    std::function<void(app::RunConfig&, const std::string&)> set;
  };
  const Case cases[] = {
      {"neuron", "izhikevich", [](app::RunConfig& c, const std::string& v) { c.neuron = v; }},
      {"loss", "mse", [](app::RunConfig& c, const std::string& v) { c.loss = v; }},
      {"reset", "zero", [](app::RunConfig& c, const std::string& v) { c.reset = v; }},
      {"neuron", "LIF", [](app::RunConfig& c, const std::string& v) { c.neuron = v; }},
  };
  for (const Case& k : cases) {
    app::RunConfig cfg = config();
    k.set(cfg, k.value);
    const std::string path = save("edited_" + k.key + ".safetensors", [](Model&) {}, cfg);
    const std::string expected = "config." + k.key + ": unknown value '" + k.value + "'";
    const std::string msg = error_of([&] { app::read_checkpoint(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(expected), std::string::npos) << msg;
    const std::string eval_msg = error_of([&] { app::run_eval(eval_flags(path)); });
    EXPECT_NE(eval_msg.find(expected), std::string::npos) << eval_msg;
  }
}

#ifdef SPIKEGRAD_CLI_PATH
int run_cli(const std::string& args, std::string* err) {
  const fs::path out = fs::path(::testing::TempDir()) / ("spikegrad_state_checks_stderr_" + std::to_string(getpid()) + ".txt");
  const int status =
      std::system((std::string(SPIKEGRAD_CLI_PATH) + " " + args + " 2>" + out.string() + " >/dev/null").c_str());
  std::ifstream in(out);
  err->assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(StateChecks, CliEvalAndAttackExit2OnABadCheckpoint) {
  std::string name;
  const std::string bad = save("negvar.safetensors", [&](Model& m) {
    const NamedTensor t = find(m, "running_var");
    name = t.name;
    t.tensor.data<float>()[7] = -0.5f;
  });
  std::string err;
  const std::string common = " --device cpu --attack-subset 4 --steps 1 --eps 4/255 --data-dir " + dir_.string();
  EXPECT_EQ(run_cli("eval --checkpoint " + bad + common, &err), 2);
  EXPECT_NE(err.find("checkpoint " + bad + ": " + name + " has a negative value -0.5 at index 7"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(run_cli("attack --checkpoint " + bad + common, &err), 2);
  EXPECT_NE(err.find(name + " has a negative value"), std::string::npos) << err;
  app::RunConfig cfg = config();
  cfg.neuron = "izhikevich";
  const std::string edited = save("edited.safetensors", [](Model&) {}, cfg);
  EXPECT_EQ(run_cli("eval --checkpoint " + edited + common, &err), 2);
  EXPECT_NE(err.find("config.neuron: unknown value 'izhikevich'"), std::string::npos) << err;
}
#endif

}  // namespace
}  // namespace spikegrad::testing
