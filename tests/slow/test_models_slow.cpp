// Heavy model checks (every model at both input sizes; VGG11's 50M parameters): ctest -L slow.
#include <gtest/gtest.h>

#include <cmath>

#include "models/model.h"
#include "support/model_config.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {


TEST(Models, EveryModelRunsOnBothInputSizesWithDefaultTaps) {
  for (const std::string& name : model_names()) {
    for (auto [channels, size] : {std::pair<int64_t, int64_t>{1, 28}, {3, 32}}) {
      auto m = make_model(name, model_config(channels, size));
      Tape tape;
      NoGradGuard ng;
      ForwardResult out = m->forward(tape, uniform({2, channels, size, size}, DType::F32, 5, 0, 1));
      EXPECT_EQ(out.logits.shape(), (Shape{2, 2, 10})) << name;
      const Tensor& x = out.taps.get(out.taps.first_name());
      EXPECT_EQ(x.size(0), 2) << name << ": taps are time-major";
      EXPECT_EQ(x.size(1), 2) << name;
      EXPECT_EQ(out.taps.first_name(), "features.0") << name;
      for (float v : out.logits.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << name;
      for (float v : x.to_vector<float>()) ASSERT_TRUE(v == 0.f || v == 1.f) << name << ": taps hold spikes";
    }
  }
}

TEST(Models, Vgg11ZTapIs512x4x4AtCifarSize) {
  auto m = make_model("vgg11", model_config(3, 32, 1));
  Tape tape;
  NoGradGuard ng;
  ForwardResult out = m->forward(tape, uniform({1, 3, 32, 32}, DType::F32, 7, 0, 1));
  EXPECT_EQ(out.taps.get(out.taps.last_conv_name()).shape(), (Shape{1, 1, 512, 4, 4}));
  EXPECT_EQ(out.taps.get(out.taps.first_name()).shape(), (Shape{1, 1, 64, 32, 32}));
}

TEST(Models, Vgg11RatZeroesLinearBiasesAndVgg11DoesNot) {
  for (const char* name : {"vgg11", "vgg11_rat"}) {
    auto m = make_model(name, model_config(3, 32, 1));
    for (const NamedTensor& p : m->parameters()) {
      if (p.name.rfind("classifier.", 0) != 0 || p.name.find(".bias") == std::string::npos) continue;
      bool all_zero = true;
      for (float v : p.tensor.to_vector<float>()) all_zero &= v == 0.f;
      EXPECT_EQ(all_zero, std::string(name) == "vgg11_rat") << name << " " << p.name;
    }
  }
}

}  // namespace
}  // namespace spikegrad::testing
