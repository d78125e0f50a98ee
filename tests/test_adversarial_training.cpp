// Issue 12, item 1: SNN-RAT adversarial training (reference.md §4.4) — `spikegrad train --adv pgd|fgsm`.
// The orthogonal retraction against its formula in double (conv, linear, the row-subset rule for linear
// layers with >= 200 rows and its generator draws), the adversarial batch crafted with BN in eval mode and
// the model's modes restored, exact --resume of an interrupted RAT run, flag validation naming the flag,
// and the flags' round trip through the config JSON and a checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <vector>

#include "apps/checkpoint.h"
#include "apps/cli.h"
#include "apps/train.h"
#include "engine/check.h"
#include "engine/rng.h"
#include "models/model.h"
#include "models/retraction.h"
#include "support/model_config.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

using Matrix = std::vector<std::vector<double>>;

double parse_fraction_of(const std::string& text) { return app::parse_fraction(text, "test"); }

Matrix to_matrix(const std::vector<double>& flat, int64_t rows, int64_t cols) {
  Matrix m(static_cast<size_t>(rows), std::vector<double>(static_cast<size_t>(cols)));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) m[size_t(r)][size_t(c)] = flat[size_t(r * cols + c)];
  return m;
}

// (1+β)W − β·W·Wᵀ·W with plain loops in double.
Matrix retracted(const Matrix& w, double beta) {
  const size_t R = w.size(), C = w[0].size();
  Matrix g(R, std::vector<double>(R, 0.0));
  for (size_t i = 0; i < R; ++i)
    for (size_t j = 0; j < R; ++j)
      for (size_t k = 0; k < C; ++k) g[i][j] += w[i][k] * w[j][k];
  Matrix out(R, std::vector<double>(C, 0.0));
  for (size_t i = 0; i < R; ++i)
    for (size_t c = 0; c < C; ++c) {
      double gw = 0;
      for (size_t j = 0; j < R; ++j) gw += g[i][j] * w[j][c];
      out[i][c] = (1 + beta) * w[i][c] - beta * gw;
    }
  return out;
}

std::vector<double> as_doubles(const Tensor& t) {
  const Tensor h = t.to(Device::CPU);
  if (h.dtype() == DType::F64) return h.to_vector<double>();
  const std::vector<float> f = h.to_vector<float>();
  return std::vector<double>(f.begin(), f.end());
}

// A model holding exactly the weights under test (forward is never called).
class Weights : public Model {
 public:
  explicit Weights(const std::vector<std::pair<std::string, Shape>>& shapes) : Model("weights", model_config(1, 8)) {
    Generator g(11);
    for (const auto& [name, shape] : shapes) {
      Tensor t = rand_normal(shape, g);
      add_parameter(name, ops::scale(tape_, t, 0.3));
    }
  }

 protected:
  Tensor forward_layers(Tape&, const Tensor&, int64_t, Taps&) override { SG_FAIL("not used"); }

 private:
  Tape tape_;
};

TEST(Retraction, OneMatrixInDoubleIsTheFormula) {
  Generator g(5);
  const Tensor w = rand_normal({5, 7}, g, Device::CPU, DType::F64);
  const Matrix before = to_matrix(as_doubles(w), 5, 7);
  retract_matrix(w, 0.1);  // a large beta, so the cubic term shows well above rounding
  const Matrix want = retracted(before, 0.1), got = to_matrix(as_doubles(w), 5, 7);
  double worst = 0, change = 0;
  for (size_t i = 0; i < 5; ++i)
    for (size_t c = 0; c < 7; ++c) {
      worst = std::max(worst, std::abs(got[i][c] - want[i][c]));
      change = std::max(change, std::abs(want[i][c] - before[i][c]));
    }
  EXPECT_LT(worst, 1e-12);
  EXPECT_GT(change, 1e-2) << "the test must see the update";
}

TEST(Retraction, ConvAndSmallLinearWeightsOnAllRowsOthersUntouched) {
  Weights m({{"conv.weight", {4, 2, 3, 3}}, {"bn.weight", {4}}, {"fc.weight", {10, 12}}, {"fc.bias", {10}}});
  std::vector<std::vector<double>> before;
  for (const auto& p : m.parameters()) before.push_back(as_doubles(p.tensor));
  Generator gen(3);
  const double beta = 0.05;
  orthogonal_retraction(m, beta, gen);
  EXPECT_EQ(gen.offset(), 0u) << "no layer has >= 200 rows: nothing is drawn";
  for (size_t i = 0; i < m.parameters().size(); ++i) {
    const auto& p = m.parameters()[i];
    const std::vector<double> now = as_doubles(p.tensor);
    if (p.tensor.ndim() < 2) {
      EXPECT_EQ(now, before[i]) << p.name << " is not a conv/linear weight";
      continue;
    }
    const int64_t rows = p.tensor.size(0), cols = p.tensor.numel() / rows;  // (out, in·k·k)
    const Matrix want = retracted(to_matrix(before[i], rows, cols), beta);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        ASSERT_NEAR(now[size_t(r * cols + c)], want[size_t(r)][size_t(c)], 1e-6) << p.name << " [" << r << "," << c << "]";
    EXPECT_NE(now, before[i]) << p.name;
  }
}

TEST(Retraction, LinearWithAtLeast200RowsRetractsARandom30PercentSubMatrix) {
  Weights m({{"fc.weight", {250, 6}}, {"fc2.weight", {199, 3}}});
  const std::vector<double> before = as_doubles(m.parameters()[0].tensor);
  Generator gen(21), replay(21);
  const std::vector<int64_t> rows = retraction_rows(250, replay);
  ASSERT_EQ(rows.size(), 75u) << "int(250 * 0.3)";
  EXPECT_EQ(replay.offset(), 250u) << "one key per row";
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_LT(rows[i - 1], rows[i]);
  EXPECT_EQ(retraction_rows(199, replay).size(), 199u);
  EXPECT_EQ(replay.offset(), 250u) << "fewer than 200 rows: all of them, nothing drawn";

  const double beta = 0.05;
  orthogonal_retraction(m, beta, gen);
  EXPECT_EQ(gen.offset(), 250u) << "exactly out counters per layer with out >= 200, so --resume stays exact";
  const std::vector<double> now = as_doubles(m.parameters()[0].tensor);
  Matrix sub;
  for (int64_t r : rows) sub.push_back(std::vector<double>(before.begin() + r * 6, before.begin() + (r + 1) * 6));
  const Matrix want = retracted(sub, beta);
  std::vector<bool> drawn(250, false);
  for (size_t i = 0; i < rows.size(); ++i) {
    drawn[size_t(rows[i])] = true;
    for (int64_t c = 0; c < 6; ++c) EXPECT_NEAR(now[size_t(rows[i] * 6 + c)], want[i][size_t(c)], 1e-6);
  }
  for (int64_t r = 0; r < 250; ++r)
    if (!drawn[size_t(r)])
      for (int64_t c = 0; c < 6; ++c) ASSERT_EQ(now[size_t(r * 6 + c)], before[size_t(r * 6 + c)]) << "row " << r << " was not drawn";
  // The sub-matrix's own Gram matrix, not the full one's: differs from retracting all rows.
  const Matrix full = retracted(to_matrix(before, 250, 6), beta);
  EXPECT_GT(std::abs(full[size_t(rows[0])][0] - want[0][0]), 1e-6);
}

TEST(Retraction, CudaMatchesTheCpu) {
  SG_SKIP_WITHOUT_CUDA();
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"conv.weight", {4, 2, 3, 3}}, {"fc.weight", {250, 6}}, {"head.weight", {10, 12}}};
  Weights cpu(shapes), gpu(shapes);
  gpu.to(Device::CUDA);
  Generator g1(9), g2(9);
  orthogonal_retraction(cpu, 0.05, g1);
  orthogonal_retraction(gpu, 0.05, g2);
  EXPECT_EQ(g1.offset(), g2.offset());
  for (size_t i = 0; i < shapes.size(); ++i)
    expect_close(gpu.parameters()[i].tensor.to(Device::CPU), cpu.parameters()[i].tensor, 1e-5, 1e-6,
                 cpu.parameters()[i].name);
}

// The adversarial batch is crafted with BN in eval mode: the running statistics after a RAT step equal
// those of one train-mode forward on the adversarial images (crafting in train mode would have updated them
// once per PGD step as well), and the model is back in train mode with its backward mode.
TEST(AdversarialTraining, CraftsWithBnInEvalModeAndRestoresTheModes) {
  app::RunConfig c;
  c.adv = "pgd";
  c.adv_steps = 3;
  const std::optional<AttackConfig> adv = app::training_attack(c);
  ASSERT_TRUE(adv.has_value());
  EXPECT_EQ(adv->eps, 2.0 / 255);
  EXPECT_EQ(adv->alpha, 1.0 / 255);
  EXPECT_EQ(adv->steps, 3);
  EXPECT_TRUE(adv->random_start);
  EXPECT_FALSE(app::training_attack(app::RunConfig()).has_value());

  Generator data(8);
  const Tensor images = rand_uniform({6, 1, 28, 28}, data);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 5}, {6});
  LossConfig lcfg;
  lcfg.mi_lambda = 0;
  auto running_stats = [](const Model& m) {
    std::vector<double> all;
    for (const auto& b : m.buffers())
      if (b.name.find("running_") != std::string::npos) {
        const std::vector<double> v = as_doubles(b.tensor);
        all.insert(all.end(), v.begin(), v.end());
      }
    return all;
  };

  std::unique_ptr<Model> model = make_model("small_cnn", model_config(1, 28));
  model->spike_options().backward = ops::SpikeBackward::rga;  // whatever it was, it is put back
  const std::vector<double> initial = running_stats(*model);
  Generator gen(42);
  Tape tape;
  const app::StepLoss step = app::training_step_loss(tape, *model, images, labels, lcfg, adv, 0.0, gen);
  EXPECT_TRUE(model->training());
  EXPECT_EQ(model->spike_options().backward, ops::SpikeBackward::rga);
  EXPECT_TRUE(std::isfinite(step.parts.total.item()));

  std::unique_ptr<Model> ref = make_model("small_cnn", model_config(1, 28));
  Generator ref_gen(42);
  const Tensor adv_images = attack(*ref, images, labels, *adv, ref_gen);
  EXPECT_EQ(running_stats(*ref), initial) << "attack() alone leaves BN's statistics alone";
  Tape ref_tape;
  ref->train(true);
  const ForwardResult out = ref->forward(ref_tape, adv_images);
  EXPECT_EQ(running_stats(*model), running_stats(*ref));
  EXPECT_NE(running_stats(*model), initial);
  EXPECT_EQ(gen.offset(), ref_gen.offset()) << "the random start is drawn from the run's generator";
  EXPECT_EQ(as_doubles(step.logits), as_doubles(out.logits)) << "the loss and accuracy are the adversarial batch's";

  // --adv-mix 0.5: every loss part is the average of the adversarial and the clean batch's.
  std::unique_ptr<Model> mixed = make_model("small_cnn", model_config(1, 28));
  Generator mix_gen(42);
  Tape mix_tape;
  const app::StepLoss m = app::training_step_loss(mix_tape, *mixed, images, labels, lcfg, adv, 0.5, mix_gen);
  std::unique_ptr<Model> clean_model = make_model("small_cnn", model_config(1, 28));
  Tape clean_tape;
  Generator unused(1);
  const app::StepLoss clean = app::training_step_loss(clean_tape, *clean_model, images, labels, lcfg, std::nullopt, 0.0, unused);
  EXPECT_NEAR(m.parts.total.item(), 0.5 * step.parts.total.item() + 0.5 * clean.parts.total.item(), 1e-6);
  EXPECT_NE(step.parts.total.item(), clean.parts.total.item());

  // With TET and the TMI term (the paper's RAT + TMI rows): every part is there and finite.
  LossConfig tet = lcfg;
  tet.base = LossBase::tet;
  tet.mi_lambda = 0.05;
  std::unique_ptr<Model> tet_model = make_model("small_cnn", model_config(1, 28));
  Tape tet_tape;
  Generator tet_gen(42);
  const app::StepLoss t = app::training_step_loss(tet_tape, *tet_model, images, labels, tet, adv, 0.25, tet_gen);
  std::vector<std::string> names;
  for (const auto& [name, value] : t.parts.named()) {
    names.push_back(name);
    EXPECT_TRUE(std::isfinite(value.item())) << name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"loss", "tet", "mi_bits"}));
  tet_tape.backward(t.parts.total);
  EXPECT_TRUE(tet_model->parameters()[0].tensor.grad().defined());
}

// Validation errors name the flag; the CLI refuses out-of-range values.
TEST(AdversarialTraining, BadFlagsAreErrorsNamingTheFlag) {
  auto with = [](auto set) {
    app::RunConfig c;
    c.adv = "pgd";
    set(c);
    return error_of([&] {
      app::validate(c);
      app::check_adversarial_training(c);
    });
  };
  EXPECT_NE(with([](app::RunConfig& c) { c.adv = "cw"; }).find("--adv must be none, fgsm or pgd"), std::string::npos);
  EXPECT_NE(with([](app::RunConfig& c) { c.adv_eps = "8"; }).find("--adv-eps must be in [0, 1]"), std::string::npos);
  EXPECT_NE(with([](app::RunConfig& c) { c.adv_eps = "x/255"; }).find("--adv-eps"), std::string::npos);
  EXPECT_NE(with([](app::RunConfig& c) { c.adv_alpha = "0"; }).find("--adv-alpha must be finite and > 0"), std::string::npos);
  EXPECT_NE(with([](app::RunConfig& c) { c.adv_steps = 0; }).find("--adv-steps must be in [1, "), std::string::npos);
  EXPECT_NE(with([](app::RunConfig& c) { c.adv_mix = 1.5; }).find("--adv-mix must be in [0, 1]"), std::string::npos);
  EXPECT_NE(with([](app::RunConfig& c) { c.adv = "none", c.adv_mix = 0.5; }).find("--adv-mix 0.5 needs --adv"),
            std::string::npos);
  EXPECT_NE(with([](app::RunConfig& c) { c.retraction_beta = 2; }).find("--retraction-beta must be in [0, 1]"),
            std::string::npos);
  EXPECT_EQ(with([](app::RunConfig&) {}), "(no error)");

  auto parse = [](std::vector<std::string> args, std::string* err) {
    args.insert(args.begin(), "spikegrad");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    app::CommandLine cl;
    ::testing::internal::CaptureStderr();
    const int code = app::parse_command_line(int(argv.size()), argv.data(), &cl);
    *err = ::testing::internal::GetCapturedStderr();
    return std::make_pair(code, cl.config);
  };
  std::string err;
  EXPECT_EQ(parse({"train", "--adv", "cw"}, &err).first, 2);
  EXPECT_NE(err.find("--adv"), std::string::npos) << err;
  EXPECT_EQ(parse({"train", "--adv-mix", "1.5"}, &err).first, 2);
  EXPECT_NE(err.find("--adv-mix must be in [0, 1], got 1.5"), std::string::npos) << err;
  EXPECT_EQ(parse({"train", "--retraction-beta", "-0.1"}, &err).first, 2);
  EXPECT_NE(err.find("--retraction-beta must be in [0, 1], got -0.1"), std::string::npos) << err;
  EXPECT_EQ(parse({"train", "--adv-steps", "0"}, &err).first, 2);
  EXPECT_NE(err.find("--adv-steps must be in [1, 2147483647], got 0"), std::string::npos) << err;
  const auto ok = parse({"train", "--adv", "fgsm", "--adv-eps", "4/255", "--no-adv-random-start", "--adv-mix", "0.25",
                         "--retraction-beta", "0.001", "--adv-alpha", "0.5/255", "--adv-steps", "3"},
                        &err);
  ASSERT_EQ(ok.first, -1) << err;
  EXPECT_EQ(ok.second.adv, "fgsm");
  EXPECT_EQ(ok.second.adv_eps, "4/255");
  EXPECT_FALSE(ok.second.adv_random_start);
  EXPECT_EQ(ok.second.adv_mix, 0.25);
  EXPECT_EQ(ok.second.retraction_beta, 0.001);
  EXPECT_EQ(ok.second.adv_alpha, "0.5/255");
  EXPECT_EQ(ok.second.adv_steps, 3);
  EXPECT_EQ(parse({"train"}, &err).second.retraction_beta, -1) << "auto until the run resolves it";
}

TEST(AdversarialTraining, ThePresetIsTheRatRecipeWithTmi) {
  const fs::path preset = fs::path(__FILE__).parent_path().parent_path() / "configs" / "cifar10_vgg11_rat_tmi.toml";
  const std::string path = preset.string();
  const char* argv[] = {"spikegrad", "--config", path.c_str(), "train"};
  app::CommandLine cl;
  ::testing::internal::CaptureStderr();
  const int code = app::parse_command_line(4, argv, &cl);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(code, -1) << err;
  const app::RunConfig& c = cl.config;
  EXPECT_EQ(c.model, "vgg11_rat");
  EXPECT_EQ(c.time_steps, 8);
  EXPECT_EQ(c.optimizer, "sgd");
  EXPECT_EQ(c.lr, 0.1);
  EXPECT_EQ(c.momentum, 0.9);
  EXPECT_EQ(c.schedule, "cosine");
  EXPECT_EQ(c.weight_decay, 0.0) << "no weight decay with the retraction";
  EXPECT_EQ(c.adv, "pgd");
  EXPECT_EQ(parse_fraction_of(c.adv_eps), 2.0 / 255);
  EXPECT_EQ(parse_fraction_of(c.adv_alpha), 1.0 / 255);
  EXPECT_EQ(c.adv_steps, 2);
  EXPECT_TRUE(c.adv_random_start);
  EXPECT_EQ(c.adv_mix, 0.0);
  EXPECT_EQ(c.retraction_beta, 5e-4);
  EXPECT_EQ(c.mi_lambda, 0.05);
}

TEST(AdversarialTraining, FlagsRoundTripThroughTheConfigJsonAndOldConfigsLoad) {
  app::RunConfig c;
  c.adv = "fgsm";
  c.adv_eps = "3/255";
  c.adv_alpha = "0.5/255";
  c.adv_steps = 5;
  c.adv_random_start = false;
  c.adv_mix = 0.25;
  c.retraction_beta = 0.002;
  const app::RunConfig back = app::RunConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  nlohmann::json old = app::RunConfig().to_json();
  for (const char* k : {"adv", "adv_eps", "adv_alpha", "adv_steps", "adv_random_start", "adv_mix", "retraction_beta"}) old.erase(k);
  const app::RunConfig loaded = app::RunConfig::from_json(old);
  EXPECT_EQ(loaded.adv, "none");
  EXPECT_EQ(loaded.retraction_beta, -1);
  app::RunConfig r = loaded;
  app::resolve_training_defaults(r);
  EXPECT_EQ(r.retraction_beta, 0.0) << "an old run had no retraction";
  r = c;
  r.retraction_beta = -1;
  app::resolve_training_defaults(r);
  EXPECT_EQ(r.retraction_beta, 5e-4) << "RAT's --beta default";
}

// A RAT + TMI run interrupted mid-epoch (SIGINT after a step) and resumed ends with the uninterrupted run's
// metrics and weights, bit for bit: the PGD starts come from the checkpointed generator. The recorded config
// carries the flags (with the resolved beta), and an edited checkpoint naming an unknown --adv is refused.
int64_t g_stop_epoch = -1, g_stop_step = -1;
void stop_at(int64_t epoch, int64_t steps_done) {
  if (epoch == g_stop_epoch && steps_done == g_stop_step) std::raise(SIGINT);
}

TEST(AdversarialTraining, AnInterruptedRatRunResumesExactly) {
  const fs::path data = write_synthetic_dataset("spikegrad_rat_data", 64, 8);
  const fs::path runs = fresh_test_dir("spikegrad_rat_runs");
  app::RunConfig base = small_run_config(data, runs, 32, 4, 32);
  base.batch = 16;  // 32 training examples: 2 steps per epoch
  base.adv = "pgd";
  base.mi_lambda = 0.05;
  // Runs `c` with SIGINT raised after `step` steps of the 0-based `epoch`; returns the Interrupted message.
  auto interrupted = [](const app::RunConfig& c, int64_t epoch, int64_t step) {
    g_stop_epoch = epoch, g_stop_step = step;
    app::train_step_hook = stop_at;
    std::string message;
    try {
      app::run_train(c);
    } catch (const app::Interrupted& e) {
      message = e.what();
    }
    app::train_step_hook = nullptr;
    return message;
  };

  app::RunConfig full = base;
  full.name = "full";
  const fs::path a = app::run_train(full);

  app::RunConfig part = base;
  part.name = "part";
  EXPECT_EQ(interrupted(part, 0, 1), "interrupted at epoch 1 step 1; continue with --resume");
  const app::Checkpoint ck = app::read_checkpoint((runs / "part" / "last.safetensors").string());
  EXPECT_EQ(ck.config.adv, "pgd");
  EXPECT_EQ(ck.config.adv_eps, "2/255");
  EXPECT_EQ(ck.config.adv_steps, 2);
  EXPECT_EQ(ck.config.retraction_beta, 5e-4) << "auto resolved and recorded";
  EXPECT_EQ(ck.progress.generator_offset, 16u * 28 * 28) << "one PGD start drawn from the run's generator";
  part.resume = true;
  const fs::path b = app::run_train(part);
  expect_same_run_results(a, b);

  // run_train applies the retraction: the same step without it leaves other weights (every conv and
  // linear weight differs).
  app::RunConfig plain = base;
  plain.name = "no-retraction";
  plain.retraction_beta = 0;
  EXPECT_EQ(interrupted(plain, 0, 1), "interrupted at epoch 1 step 1; continue with --resume");
  const app::Checkpoint p = app::read_checkpoint((runs / "no-retraction" / "last.safetensors").string());
  ASSERT_EQ(p.file.tensors.size(), ck.file.tensors.size());
  int weights = 0;
  for (size_t i = 0; i < p.file.tensors.size(); ++i)
    if (p.file.tensors[i].tensor.ndim() >= 2 && p.file.tensors[i].name.find("optimizer.") != 0) {
      ++weights;
      EXPECT_NE(as_doubles(p.file.tensors[i].tensor), as_doubles(ck.file.tensors[i].tensor)) << p.file.tensors[i].name;
    }
  EXPECT_EQ(weights, 3) << "small_cnn: two conv weights and one linear weight";

  // An edited checkpoint naming an unknown --adv is refused, naming the value.
  std::unique_ptr<Model> model = make_model("small_cnn", model_config(1, 28));
  app::RunConfig bad = base;
  bad.adv = "cw";
  app::save_checkpoint((runs / "bad.safetensors").string(), *model, nullptr, bad, app::TrainProgress());
  EXPECT_NE(error_of([&] { app::read_checkpoint((runs / "bad.safetensors").string()); }).find("config.adv: unknown value 'cw'"),
            std::string::npos);
  std::error_code ec;
  fs::remove_all(runs, ec);
}

}  // namespace
}  // namespace spikegrad::testing
