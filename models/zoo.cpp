// The built-in models, as stage lists (models/sequential_snn.h). Registered on first use of the registry.
#include "models/sequential_snn.h"
#include "models/zoo.h"

namespace spikegrad {

namespace {
using S = StageSpec;

// reference.md §3 VGGSNN: 8 conv stages, downsampling by stride-2 convs, no pooling, one Linear.
std::unique_ptr<Model> vggsnn(const ModelConfig& c) {
  return std::make_unique<SequentialSnn>(
      "vggsnn", c,
      std::vector<StageSpec>{S::Conv(64), S::Conv(128, 2), S::Conv(256), S::Conv(256, 2), S::Conv(512), S::Conv(512, 2),
                             S::Conv(512), S::Conv(512, 2)},
      ClassifierSpec{});
}

std::vector<StageSpec> vgg11_stages() {
  return {S::Conv(64), S::Pool(), S::Conv(128), S::Conv(256), S::Pool(), S::Conv(512), S::Conv(512), S::Conv(512),
          S::Pool(), S::Conv(512), S::Conv(512)};
}
// reference.md §3 VGG11 as released with TMI: the three Linear layers have nothing between them.
std::unique_ptr<Model> vgg11(const ModelConfig& c) {
  return std::make_unique<SequentialSnn>("vgg11", c, vgg11_stages(), ClassifierSpec{{4096, 4096}, false});
}
// The [RAT]/[FEEL] variant: a neuron after each of the first two Linear layers, Linear biases zeroed.
std::unique_ptr<Model> vgg11_rat(const ModelConfig& c) {
  return std::make_unique<SequentialSnn>("vgg11_rat", c, vgg11_stages(), ClassifierSpec{{4096, 4096}, true, true});
}
// Our spiking AlexNet for 32x32 inputs (the TMI authors did not release theirs): AlexNet's five conv
// layers with 3x3 kernels (11x11/5x5 kernels and stride 4 make no sense at 32 px), average pools after
// conv 1, 2 and 5, and a two-layer classifier with a spiking hidden layer.
std::unique_ptr<Model> alexnet(const ModelConfig& c) {
  return std::make_unique<SequentialSnn>(
      "alexnet", c,
      std::vector<StageSpec>{S::Conv(64), S::Pool(), S::Conv(192), S::Pool(), S::Conv(384), S::Conv(256), S::Conv(256),
                             S::Pool()},
      ClassifierSpec{{1024}, true});
}
// The default for 28x28 inputs: small enough to train on a 2-core CPU in minutes.
std::unique_ptr<Model> small_cnn(const ModelConfig& c) {
  return std::make_unique<SequentialSnn>("small_cnn", c, std::vector<StageSpec>{S::Conv(16), S::Pool(), S::Conv(32), S::Pool()},
                                         ClassifierSpec{});
}
}  // namespace

void register_builtin_models() {
  register_model("vggsnn", vggsnn);
  register_model("vgg11", vgg11);
  register_model("vgg11_rat", vgg11_rat);
  register_model("alexnet", alexnet);
  register_model("small_cnn", small_cnn);
  register_residual_models();
}

}  // namespace spikegrad
