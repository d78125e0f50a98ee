// The residual spiking networks, as graphs (models/graph.h):
//
//  - spiking_resnet18/34/50 and sew_resnet18/34/50: SpikingJelly's spiking_resnet / sew_resnet as the seed-002
//    code uses them (gradient_sparsity.md §3): the ImageNet stem (conv 7×7/2, BN, neuron, pool 3×3/2/1) even on
//    32×32 inputs, four stages of 64/128/256/512 (×4 for the bottleneck), adaptive average pool, one Linear.
//    Spiking-ResNet puts the neuron after the add and its downsample (conv 1×1 + BN) has no neuron; SEW puts
//    the neuron before the merge (--sew-connect add | and | iand, SpikingJelly's sew_function(identity, out))
//    and its downsample has a neuron of its own ("downsample_sn"). The stem pool is max, or avg for SEW
//    (--stem-pool; the released code's switch). Names are SpikingJelly's, so its modules load our checkpoints
//    with strict=True (scripts/compare/sj_resnet_check.py). --resnet-width w scales the stages to w/2w/4w/8w
//    (64 = the standard networks) for CPU-sized runs.
//  - resnet19: the TET / SNN-RAT ResNet-19 for CIFAR — conv 3×3 128 + BN + neuron, stages 128×3, 256×3 /2,
//    512×2 /2 of Spiking-ResNet basic blocks, adaptive average pool, Linear 256 + neuron, Linear K.
//  - wrn16_4: SNN-RAT's WideResNet-16-4 — conv 3×3 16, three groups of two pre-activation blocks (BN → neuron →
//    conv 3×3 → BN → neuron → conv 3×3) of widths 64/128/256 (strides 1, 2, 2), joined to the shortcut by a
//    learnable convex combination ("block1.0.convex.comb", projected onto the simplex after every step), then
//    BN → neuron → average pool → Linear with a zero bias. The released code pools with avg_pool2d(8) on its
//    8×8 map; we pool adaptively to 1×1, the same on 32×32 inputs and defined on 28×28 ones.
// The neuron is the run's (--neuron; seed 002 used IF with detach-reset and ATan α = 2: configs/sparsity/).
#include <array>

#include "models/resnets.h"
#include "models/zoo.h"

namespace spikegrad {

namespace {

enum class Family { spiking, sew };

struct Blocks {
  bool bottleneck = false;
  std::array<int, 4> counts{};
};

// One residual block of a Spiking-/SEW-ResNet under the current scope ("layer2.0").
LayerPtr resnet_block(GraphBuilder& b, Family family, Merge connect, bool bottleneck, int64_t planes, int stride) {
  const bool sew = family == Family::sew;
  const int64_t out = bottleneck ? planes * 4 : planes;
  const bool downsample = stride != 1 || b.shape().channels != out;
  auto branch = [&] {
    std::vector<LayerPtr> l;
    if (bottleneck) {
      l = {b.conv("conv1", planes, 1, 1, 0, false), b.batch_norm("bn1"), b.neuron("sn1"),
           b.conv("conv2", planes, 3, stride, 1, false), b.batch_norm("bn2"), b.neuron("sn2"),
           b.conv("conv3", out, 1, 1, 0, false), b.batch_norm("bn3")};
    } else {
      l = {b.conv("conv1", planes, 3, stride, 1, false), b.batch_norm("bn1"), b.neuron("sn1"),
           b.conv("conv2", planes, 3, 1, 1, false), b.batch_norm("bn2")};
    }
    if (sew) l.push_back(b.neuron(bottleneck ? "sn3" : "sn2"));  // SEW: the neuron before the merge
    return b.sequential(std::move(l));
  };
  std::function<LayerPtr()> shortcut;
  if (downsample)
    shortcut = [&] {
      std::vector<LayerPtr> l{b.conv("downsample.0", out, 1, stride, 0, false), b.batch_norm("downsample.1")};
      if (sew) l.push_back(b.neuron("downsample_sn"));
      return b.sequential(std::move(l));
    };
  std::function<LayerPtr()> after;
  if (!sew) after = [&] { return b.neuron(bottleneck ? "sn3" : "sn2"); };  // Spiking-ResNet: after the add
  return b.residual(branch, shortcut, sew ? connect : Merge::add, after);
}

GraphModel::BuildFn resnet_build(const std::string& name, const ModelConfig& c, Family family, Blocks blocks) {
  const bool sew = family == Family::sew;
  SG_CHECK(c.stem_pool == "max" || c.stem_pool == "avg",
           name << ": --stem-pool must be max or avg, got '" << c.stem_pool << "'");
  SG_CHECK(sew || c.stem_pool == "max", name << ": Spiking-ResNet's stem pool is max only (--stem-pool avg is a "
                                                "SEW-ResNet switch), got '" << c.stem_pool << "'");
  const Merge connect = parse_sew_connect(c.sew_connect, name);
  SG_CHECK(sew || connect == Merge::add, name << ": --sew-connect is a SEW-ResNet switch; Spiking-ResNet adds");
  SG_CHECK(c.resnet_width >= 1, name << ": --resnet-width must be >= 1, got " << c.resnet_width);
  SG_CHECK(c.width_div == 1, name << ": --width-div is for the stage-list models (vggsnn, vgg11, alexnet, small_cnn); "
                                     "narrow a residual model with --resnet-width");
  return [c, family, blocks, connect](GraphBuilder& b) {
    std::vector<LayerPtr> net{b.conv("conv1", c.resnet_width, 7, 2, 3, false), b.batch_norm("bn1"), b.neuron("sn1"),
                              c.stem_pool == "max" ? b.max_pool("maxpool", 3, 2, 1) : b.avg_pool("avgpool_stem", 3, 2, 1)};
    const int64_t w = c.resnet_width;
    const std::array<int64_t, 4> planes{w, 2 * w, 4 * w, 8 * w};
    for (int stage = 0; stage < 4; ++stage) {
      auto layer_scope = b.scope("layer" + std::to_string(stage + 1));
      for (int i = 0; i < blocks.counts[size_t(stage)]; ++i) {
        auto block_scope = b.scope(i);
        const int stride = stage > 0 && i == 0 ? 2 : 1;
        net.push_back(resnet_block(b, family, connect, blocks.bottleneck, planes[size_t(stage)], stride));
      }
    }
    net.push_back(b.adaptive_avg_pool("avgpool", 1));
    net.push_back(b.flatten());
    net.push_back(b.linear("fc", c.num_classes));
    return b.sequential(std::move(net));
  };
}

void check_plain(const std::string& name, const ModelConfig& c) {
  SG_CHECK(c.stem_pool == "max" && c.sew_connect == "add" && c.resnet_width == 64,
           name << ": --stem-pool, --sew-connect and --resnet-width are Spiking-/SEW-ResNet switches; leave them at "
                   "max / add / 64");
  SG_CHECK(c.width_div == 1, name << ": --width-div is for the stage-list models (vggsnn, vgg11, alexnet, small_cnn)");
}

GraphModel::BuildFn resnet19_build(const ModelConfig& c) {
  check_plain("resnet19", c);
  return [c](GraphBuilder& b) {
    std::vector<LayerPtr> net{b.conv("conv1", 128, 3, 1, 1, false), b.batch_norm("bn1"), b.neuron("sn1")};
    const std::array<int64_t, 3> planes{128, 256, 512};
    const std::array<int, 3> counts{3, 3, 2};
    for (int stage = 0; stage < 3; ++stage) {
      auto layer_scope = b.scope("layer" + std::to_string(stage + 1));
      for (int i = 0; i < counts[size_t(stage)]; ++i) {
        auto block_scope = b.scope(i);
        net.push_back(resnet_block(b, Family::spiking, Merge::add, false, planes[size_t(stage)], stage > 0 && i == 0 ? 2 : 1));
      }
    }
    net.push_back(b.adaptive_avg_pool("avgpool", 1));
    net.push_back(b.flatten());
    net.push_back(b.linear("fc1", 256));
    net.push_back(b.neuron("sn_fc1"));
    net.push_back(b.linear("fc2", c.num_classes));
    return b.sequential(std::move(net));
  };
}

// One pre-activation block of SNN-RAT's WideResNet under the current scope ("block2.0").
LayerPtr wrn_block(GraphBuilder& b, int64_t out, int stride) {
  const bool equal = b.shape().channels == out;
  auto body = [&](bool with_preactivation) {
    std::vector<LayerPtr> l;
    if (with_preactivation) l = {b.batch_norm("bn1"), b.neuron("act1")};
    for (LayerPtr p : {b.conv("conv1", out, 3, stride, 1, false), b.batch_norm("bn2"), b.neuron("act2"),
                       b.conv("conv2", out, 3, 1, 1, false)})
      l.push_back(p);
    return b.sequential(std::move(l));
  };
  if (equal) return b.residual([&] { return body(true); }, nullptr, Merge::convex);
  // Widening: the pre-activation feeds both the branch and the 1×1 shortcut conv.
  LayerPtr pre = b.sequential({b.batch_norm("bn1"), b.neuron("act1")});
  LayerPtr block = b.residual([&] { return body(false); },
                              [&] { return b.conv("convShortcut", out, 1, stride, 0, false); }, Merge::convex);
  return b.sequential({pre, block});
}

GraphModel::BuildFn wrn16_4_build(const ModelConfig& c) {
  check_plain("wrn16_4", c);
  return [c](GraphBuilder& b) {
    std::vector<LayerPtr> net{b.conv("conv1", 16, 3, 1, 1, false)};
    const std::array<int64_t, 3> widths{64, 128, 256};  // 16·k for k = 4
    for (int group = 0; group < 3; ++group) {
      auto group_scope = b.scope("block" + std::to_string(group + 1));
      for (int i = 0; i < 2; ++i) {  // (16 − 4) / 6 blocks per group
        auto block_scope = b.scope(i);
        net.push_back(wrn_block(b, widths[size_t(group)], group > 0 && i == 0 ? 2 : 1));
      }
    }
    for (LayerPtr p : {b.batch_norm("bn1"), b.neuron("act"), b.adaptive_avg_pool("avgpool", 1), b.flatten(),
                       b.linear("fc", c.num_classes, /*zero_bias=*/true)})
      net.push_back(p);
    return b.sequential(std::move(net));
  };
}

const std::array<std::pair<int, Blocks>, 3> kDepths{{{18, {false, {2, 2, 2, 2}}},
                                                     {34, {false, {3, 4, 6, 3}}},
                                                     {50, {true, {3, 4, 6, 3}}}}};

}  // namespace

std::vector<std::string> residual_model_names() {
  std::vector<std::string> names;
  for (const auto& [depth, blocks] : kDepths) {
    names.push_back("spiking_resnet" + std::to_string(depth));
    names.push_back("sew_resnet" + std::to_string(depth));
  }
  names.push_back("resnet19");
  names.push_back("wrn16_4");
  return names;
}

GraphModel::BuildFn residual_model_build(const std::string& name, const ModelConfig& config) {
  for (const auto& [depth, blocks] : kDepths) {
    if (name == "spiking_resnet" + std::to_string(depth)) return resnet_build(name, config, Family::spiking, blocks);
    if (name == "sew_resnet" + std::to_string(depth)) return resnet_build(name, config, Family::sew, blocks);
  }
  if (name == "resnet19") return resnet19_build(config);
  if (name == "wrn16_4") return wrn16_4_build(config);
  SG_FAIL("residual_model_build: unknown residual model '" << name << "'");
}

void register_residual_models() {
  for (const std::string& name : residual_model_names())
    register_model(name, [name](const ModelConfig& c) {
      return std::make_unique<GraphModel>(name, c, residual_model_build(name, c));
    });
}

}  // namespace spikegrad
