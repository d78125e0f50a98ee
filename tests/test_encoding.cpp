// Input encoders (models/encoding.h, kernels/encoding.h) and the attack domain (attacks/attack.h AttackDomain):
// phase bits of known bytes, Poisson rates and determinism, CPU = CUDA, the spike-domain attacks, the refusal of
// pixel-domain gradient attacks through a spike encoder, and the flags through a checkpoint's config.
#include <gtest/gtest.h>

#include <cmath>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/train.h"
#include "attacks/attack.h"
#include "attacks/evaluate.h"
#include "engine/ops_encoding.h"
#include "kernels/encoding.h"
#include "models/encoding.h"
#include "support/cli_runs.h"
#include "support/model_config.h"
#include "support/op_cases.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

// (1,1,1,N) images holding the bytes p as p/255, the loader's exact form of 8-bit data.
Tensor byte_images(const std::vector<int>& bytes) {
  std::vector<float> x;
  for (int p : bytes) x.push_back(float(p) / 255.f);
  return Tensor::from_vector<float>(x, {1, 1, 1, int64_t(bytes.size())});
}

TEST(PhaseEncoding, EveryByteRoundTrips) {
  for (int p = 0; p < 256; ++p) EXPECT_EQ(pixel_byte(float(p) / 255.f), uint32_t(p)) << p;
  EXPECT_EQ(pixel_byte(-0.1f), 0u);  // out-of-range values clamp instead of wrapping
  EXPECT_EQ(pixel_byte(1.5f), 255u);
}

TEST(PhaseEncoding, KnownBytesMostSignificantBitFirstAtT10) {
  const std::vector<int> bytes = {0, 1, 128, 255, 0b10110011};
  const Tensor y = ops::phase_encode(byte_images(bytes), 10);
  ASSERT_EQ(y.shape(), (Shape{10, 1, 1, 1, 5}));
  const std::vector<float> v = y.to_vector<float>();
  // Expected bit strings per step t = 0..9 (steps 8, 9 repeat the two most significant bits).
  const std::vector<std::string> want = {"0000000000", "0000000100", "1000000010", "1111111111", "1011001110"};
  for (size_t i = 0; i < bytes.size(); ++i)
    for (int t = 0; t < 10; ++t)
      EXPECT_EQ(v[size_t(t) * bytes.size() + i], want[i][size_t(t)] == '1' ? 1.f : 0.f) << "byte " << bytes[i] << " t " << t;
}

TEST(PoissonEncoding, FiringFrequencyIsThePixelValue) {
  // 40 000 draws per value: the rate's standard deviation is at most 0.0025, the tolerance 4 of them.
  for (float value : {0.f, 0.1f, 0.5f, 0.9f, 1.f}) {
    const Tensor x = Tensor::full({1, 1, 40, 40}, value);
    const std::vector<float> s = ops::poisson_encode(x, 25, 7).to_vector<float>();
    double sum = 0;
    for (float v : s) {
      ASSERT_TRUE(v == 0.f || v == 1.f);
      sum += v;
    }
    const double rate = sum / double(s.size());
    if (value == 0.f || value == 1.f) EXPECT_EQ(rate, double(value));
    else EXPECT_NEAR(rate, value, 0.01) << value;
  }
}

TEST(PoissonEncoding, DeterministicPerExampleWhateverTheBatch) {
  const Tensor a = uniform({1, 2, 8, 8}, DType::F32, 5, 0, 1), b = uniform({1, 2, 8, 8}, DType::F32, 6, 0, 1);
  Tensor ab = Tensor::empty({2, 2, 8, 8});
  ab.slice0(0, 1).copy_from(b);
  ab.slice0(1, 2).copy_from(a);
  const Tensor alone = ops::poisson_encode(a, 4, 11), again = ops::poisson_encode(a, 4, 11);
  EXPECT_EQ(alone.to_vector<float>(), again.to_vector<float>());
  // Example a second in a batch: its spikes (the b = 1 slice of each step) are those it gets alone.
  const std::vector<float> batch = ops::poisson_encode(ab, 4, 11).to_vector<float>(), one = alone.to_vector<float>();
  const size_t m = 2 * 8 * 8;
  for (size_t t = 0; t < 4; ++t)
    for (size_t i = 0; i < m; ++i) ASSERT_EQ(batch[(t * 2 + 1) * m + i], one[t * m + i]) << t << " " << i;
  EXPECT_NE(ops::poisson_encode(a, 4, 12).to_vector<float>(), one) << "another seed draws other spikes";
}

TEST(Encoding, CudaEqualsCpu) {
  SG_SKIP_WITHOUT_CUDA();
  // Odd sizes: 3 examples of 3x7x5, T = 10 (both phase wrap-arounds), not a multiple of the block size.
  const Tensor x = uniform({3, 3, 7, 5}, DType::F32, 9, 0, 1);
  const Tensor xg = x.to(Device::CUDA);
  EXPECT_EQ(ops::phase_encode(xg, 10).to(Device::CPU).to_vector<float>(), ops::phase_encode(x, 10).to_vector<float>());
  EXPECT_EQ(ops::poisson_encode(xg, 10, 1234).to(Device::CPU).to_vector<float>(),
            ops::poisson_encode(x, 10, 1234).to_vector<float>());
}

ModelConfig encoded_config(InputEncoding encoding) {
  ModelConfig c = model_config(1, 12, 3);
  c.num_classes = 4;
  c.mean = {0.5f, 0.f, 0.f};  // ignored by phase/Poisson: spikes are not normalised
  c.std = {0.25f, 1.f, 1.f};
  c.encoding = encoding;
  return c;
}

TEST(Encoding, LevelsOfTheEncodedInput) {
  EXPECT_EQ(encoded_input_levels(encoded_config(InputEncoding::direct)), 0);
  EXPECT_EQ(encoded_input_levels(encoded_config(InputEncoding::phase)), 1);
  EXPECT_EQ(encoded_input_levels(encoded_config(InputEncoding::poisson)), 1);
  expect_error([] { parse_encoding("rate"); }, {"--encoding", "rate", "direct, phase, poisson"});
}

TEST(Encoding, ModelTakesImagesOrTheirEncodedSpikesAlike) {
  for (InputEncoding e : {InputEncoding::phase, InputEncoding::poisson}) {
    auto model = make_model("small_cnn", encoded_config(e));
    model->train(false);
    const Tensor images = uniform({3, 1, 12, 12}, DType::F32, 21, 0, 1);
    const Tensor frames = encode_spike_frames(*model, images);
    ASSERT_EQ(frames.shape(), (Shape{3, 3, 1, 12, 12}));
    NoGradGuard ng;
    Tape tape;
    EXPECT_EQ(model->forward(tape, images).logits.to_vector<float>(), model->forward(tape, frames).logits.to_vector<float>())
        << encoding_name(e);
  }
  auto direct = make_model("small_cnn", encoded_config(InputEncoding::direct));
  expect_error([&] { encode_spike_frames(*direct, uniform({1, 1, 12, 12}, DType::F32, 1, 0, 1)); },
               {"--attack-domain spikes", "--encoding phase or poisson"});
}

TEST(AttackDomain, SpikeDomainFgsmStaysInTheBallAndTheUnitRange) {
  auto model = make_model("small_cnn", encoded_config(InputEncoding::phase));
  const Tensor images = uniform({4, 1, 12, 12}, DType::F32, 31, 0, 1);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1, 2, 3}, {4});
  const Tensor spikes = attack_input(*model, images, AttackDomain::spikes);
  const std::vector<float> g = input_gradient(*model, spikes, labels).to_vector<float>();
  double norm = 0;
  for (float v : g) norm += std::fabs(v);
  EXPECT_GT(norm, 0.0) << "the spike tensor's gradient is BPTT's, not the encoder's zero";

  AttackConfig cfg;
  cfg.kind = AttackKind::fgsm;
  cfg.eps = 6.0 / 255;
  cfg.domain = AttackDomain::spikes;
  const Tensor adv = attack(*model, spikes, labels, cfg);
  ASSERT_EQ(adv.shape(), spikes.shape());
  const std::vector<float> a = adv.to_vector<float>(), s = spikes.to_vector<float>();
  int64_t moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_GE(a[i], 0.f);
    ASSERT_LE(a[i], 1.f);
    ASSERT_LE(std::fabs(a[i] - s[i]), cfg.eps + 1e-7);
    moved += a[i] != s[i];
  }
  EXPECT_GT(moved, 0);
  // A pixel batch handed to a spike-domain attack is a caller mistake, named.
  expect_error([&] { attack(*model, images, labels, cfg); }, {"--attack-domain spikes", "(B,T,C,H,W)"});
}

TEST(AttackDomain, PixelGradientThroughASpikeEncoderIsRefused) {
  auto model = make_model("small_cnn", encoded_config(InputEncoding::phase));
  const Tensor images = uniform({2, 1, 12, 12}, DType::F32, 41, 0, 1);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1}, {2});
  for (AttackKind kind : {AttackKind::fgsm, AttackKind::pgd}) {
    AttackConfig cfg;
    cfg.kind = kind;
    expect_error([&] { attack(*model, images, labels, cfg); },
                 {"--attack-domain pixels with --encoding phase", "identically zero", "use --attack-domain spikes"});
  }
  expect_error([&] { input_gradient(*model, images, labels); }, "--attack-domain pixels with --encoding phase");
  // Gaussian noise needs no gradient: it runs, and every example counts as zero-gradient, as it truly is.
  AttackConfig gn;
  gn.kind = AttackKind::gn;
  Generator gen(3);
  const RobustResult r = evaluate_attack(*model, images, labels, gn, gen);
  EXPECT_EQ(r.zero_grad, 2);
}

TEST(EncodingFlags, RoundTripThroughTheCheckpointConfig) {
  app::CommandLine cl;
  std::string err;
  ASSERT_EQ(parse_cli({"train", "--encoding", "phase", "--attack-domain", "spikes", "--stem-pool", "avg", "--sew-connect",
                       "iand"},
                      &cl, &err),
            -1)
      << err;
  const app::RunConfig back = app::RunConfig::from_json(nlohmann::json::parse(cl.config.to_json().dump()));
  EXPECT_EQ(back.encoding, "phase");
  EXPECT_EQ(back.attack_domain, "spikes");
  EXPECT_EQ(back.stem_pool, "avg");
  EXPECT_EQ(back.sew_connect, "iand");
  app::validate(back);
  // A config written before the fields existed loads with today's behaviour.
  nlohmann::json old = app::RunConfig().to_json();
  for (const char* key : {"encoding", "attack_domain", "stem_pool", "sew_connect"}) old.erase(key);
  const app::RunConfig legacy = app::RunConfig::from_json(old);
  EXPECT_EQ(legacy.encoding, "direct");
  EXPECT_EQ(legacy.attack_domain, "pixels");
  EXPECT_EQ(parse_cli({"train", "--encoding", "rate"}, &cl, &err), 2);
  EXPECT_NE(err.find("--encoding"), std::string::npos) << err;
}

TEST(EncodingFlags, RulesBetweenEncodingAndAttackDomain) {
  app::RunConfig c;
  c.attack_domain = "spikes";
  expect_error([&] { app::validate(c); }, {"--attack-domain spikes needs", "--encoding phase or poisson"});
  c.encoding = "poisson";
  app::validate(c);
  c.attack_domain = "pixels";
  expect_error([&] { app::validate(c); },
               {"--attack-domain pixels with --encoding poisson", "--attacks fgsm,pgd,bim and the obfuscation checks",
                "use --attack-domain spikes"});
  c.attacks = "gn,square";
  c.obfuscation_checks = false;
  app::validate(c);  // gradient-free attacks may run in pixels
  c.attack_domain = "spikes";
  c.attack_grad = "ann-relu";
  expect_error([&] { app::validate(c); }, {"--attack-grad ann-relu", "--encoding poisson"});
  c.attack_grad = "bptt";
  c.dataset = "cifar10-dvs";
  expect_error([&] { app::validate(c); }, {"--encoding poisson", "event frames", "use --encoding direct"});
}

// End to end: a phase-coded run with spike-domain adversarial training; its report states the encoding and the
// domain, and scoring its checkpoint in pixels is refused before any attack runs.
TEST(EncodingRun, PhaseRunAttacksSpikesAndSaysSo) {
  const std::filesystem::path data = write_synthetic_dataset("spikegrad_encoding_data", 96, 32);
  const std::filesystem::path runs = fresh_test_dir("spikegrad_encoding_runs");
  app::RunConfig c = small_run_config(data, runs, 32, 16, 32);
  c.epochs = 1;
  c.obfuscation_checks = false;  // their spike-domain runs are the sweep's (report_attacks); kept short here
  c.encoding = "phase";
  c.time_steps = 3;
  c.attack_domain = "spikes";
  c.adv = "fgsm";
  c.attacks = "pgd,gn";
  const std::filesystem::path dir = app::run_train(c);
  const std::string report = read_text(dir / "report.md");
  EXPECT_NE(report.find("phase input encoding, attacks in the spike domain"), std::string::npos) << report;
  EXPECT_NE(report.find("grad bptt, spike domain (phase encoding)"), std::string::npos) << report;

  app::RunConfig flags;
  flags.checkpoint = (dir / "best.safetensors").string();
  flags.data_dir = data.string();
  flags.device = "cpu";
  flags.progress = false;
  flags.attack_subset = 8;
  expect_error([&] { app::run_attack(flags); }, {"--attack-domain pixels with --encoding phase", "use --attack-domain spikes"});
  std::filesystem::remove_all(runs);
}

}  // namespace
}  // namespace spikegrad::testing
