// ANN mode (models/layers.h AnnMode; attacks' --attack-grad ann-relu | ann-qcfs, reference.md §5.3): the
// model runs as the network written out by hand — one step, BN in eval mode, ReLU or QCFS in place of each
// neuron — attacks craft on it and put the model back, and AutoAttack counts only points the SNN misclassifies.
#include "attack_test_util.h"
#include "attacks/apgd.h"
#include "attacks/autoattack.h"
#include "attacks/cw.h"
#include "attacks/fab.h"

namespace spikegrad {
namespace {
using namespace attack_test;

Tensor named(const Model& m, const std::string& name) {
  for (const NamedTensor& t : m.state())
    if (t.name == name) return t.tensor;
  ADD_FAILURE() << "no tensor " << name;
  return Tensor();
}

// small_cnn (conv 16, pool, conv 32, pool, linear) as an ANN, from its own tensors. tiny_config normalises
// with mean 0 and std 1, which the model's x·1 + 0 leaves bit for bit, so the hand version skips it.
Tensor ann_by_hand(Tape& t, const Model& m, const Tensor& images, AnnActivation act) {
  Tensor h = images;
  for (const char* stage : {"features.0", "features.2"}) {
    const std::string p(stage);
    h = ops::conv2d(t, h, named(m, p + ".conv.weight"), named(m, p + ".conv.bias"), {1, 1});
    ops::BatchNormOptions bn;
    bn.training = false;
    h = ops::batch_norm(t, h, named(m, p + ".bn.weight"), named(m, p + ".bn.bias"), named(m, p + ".bn.running_mean"),
                        named(m, p + ".bn.running_var"), bn);
    h = act == AnnActivation::relu ? ops::relu(t, h) : ops::qcfs(t, h, 1.0, 8);
    h = ops::avg_pool2d(t, h, 2, 2);
  }
  return ops::linear(t, ops::flatten(t, h, 1), named(m, "classifier.0.weight"), named(m, "classifier.0.bias"));
}

TEST(AnnMode, ForwardAndInputGradientAreTheNetworkWrittenOut) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(6, 40);
  for (AnnActivation act : {AnnActivation::relu, AnnActivation::qcfs}) {
    SCOPED_TRACE(act == AnnActivation::relu ? "relu" : "qcfs");
    Tensor want_logits, want_grad;
    {
      Tape t;
      Tensor x = b.images.clone();
      x.set_requires_grad(true);
      want_logits = ann_by_hand(t, model, x, act);
      want_grad = t.grad(ops::cross_entropy(t, want_logits, b.labels), {x})[0];
    }
    model.set_ann_mode(AnnMode{act});
    Tape t;
    const Tensor logits = model.forward(t, b.images).logits;
    model.set_ann_mode(std::nullopt);
    EXPECT_EQ(logits.shape(), (Shape{1, 6, kClasses})) << "one time step";
    EXPECT_TRUE(bitwise_equal(ops::reshape(t, logits, {6, kClasses}), want_logits));
    const AttackGrad grad = act == AnnActivation::relu ? AttackGrad::ann_relu : AttackGrad::ann_qcfs;
    const Tensor g = input_gradient(model, b.images, b.labels, grad);
    EXPECT_TRUE(bitwise_equal(g, want_grad));
    EXPECT_GT(max_abs(g), 0.0);
    EXPECT_FALSE(model.ann_mode().has_value()) << "input_gradient puts the spiking network back";
  }
}

TEST(AnnMode, TheSpikingNetworkIsUnchangedAfterwards) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(4, 41);
  const Tensor before = mean_logits(model, b.images);
  const Tensor ann_grad = input_gradient(model, b.images, b.labels, AttackGrad::ann_qcfs);
  EXPECT_TRUE(bitwise_equal(mean_logits(model, b.images), before));
  EXPECT_GT(max_abs_diff(ann_grad, input_gradient(model, b.images, b.labels, AttackGrad::bptt)), 0.0);
}

TEST(AnnMode, BasicAttacksStayInTheBallAndRestoreTheModel) {
  Model& model = trained_model();
  model.train(true);
  const Batch b = synthetic_batch(8, 42);
  for (AttackGrad grad : {AttackGrad::ann_relu, AttackGrad::ann_qcfs})
    for (AttackKind kind : {AttackKind::fgsm, AttackKind::pgd, AttackKind::bim}) {
      SCOPED_TRACE(std::string(attack_grad_name(grad)) + " " + attack_kind_name(kind));
      AttackConfig c = config(kind, 8.0 / 255);
      c.grad = grad;
      const Tensor adv = attack(model, b.images, b.labels, c);
      EXPECT_LE(max_abs_diff(adv, b.images), 8.0 / 255 + 1e-6);
      const auto px = adv.to_vector<float>();
      EXPECT_GE(*std::min_element(px.begin(), px.end()), 0.f);
      EXPECT_LE(*std::max_element(px.begin(), px.end()), 1.f);
      EXPECT_FALSE(model.ann_mode().has_value());
      EXPECT_TRUE(model.training());
      EXPECT_EQ(model.spike_options().backward, ops::SpikeBackward::bptt);
      c.grad = AttackGrad::bptt;
      EXPECT_FALSE(bitwise_equal(adv, attack(model, b.images, b.labels, c))) << "crafted on another network";
    }
  model.train(false);
}

TEST(AnnMode, IsRestoredWhenTheAttackThrows) {
  auto model = fresh_model();
  Tensor small = testing::uniform({2, 1, 20, 20}, DType::F32, 3, 0.0, 1.0);  // the forward throws inside the guard
  AttackConfig c = tmi_default();
  c.grad = AttackGrad::ann_relu;
  EXPECT_THROW(attack(*model, small, testing::labels(2, kClasses, 4), c), Error);
  EXPECT_FALSE(model->ann_mode().has_value());
}

TEST(AnnMode, ApgdFabAndCwCraftOnTheAnn) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(6, 43);
  ApgdConfig a;
  a.eps = 8.0 / 255;
  a.iterations = 5;
  a.grad = AttackGrad::ann_qcfs;
  Generator gen(3);
  const ApgdResult ra = apgd(model, b.images, b.labels, a, gen);
  EXPECT_LE(max_abs_diff(ra.adversarial, b.images), a.eps + 1e-6);
  FabConfig f;
  f.iterations = 5;
  f.grad = AttackGrad::ann_relu;
  const FabResult rf = fab_targeted(model, b.images, b.labels, f);
  EXPECT_EQ(rf.adversarial.shape(), b.images.shape());
  CwConfig w;
  w.steps = 5;
  w.grad = AttackGrad::ann_qcfs;
  const CwResult rw = cw_l2(model, b.images, b.labels, w);
  EXPECT_EQ(rw.adversarial.shape(), b.images.shape());
  EXPECT_FALSE(model.ann_mode().has_value());
}

// Each example AutoAttack counts as broken must be misclassified by the SNN at its point, and each one it
// counts as robust is classified correctly by the SNN — whatever the ANN thought of the points it crafted.
TEST(AnnMode, AutoAttackBreaksOnlyWhatTheSpikingNetworkMisclassifies) {
  Model& model = trained_model();
  const Batch b = synthetic_batch(16, 44);
  for (AttackGrad grad : {AttackGrad::ann_relu, AttackGrad::ann_qcfs}) {
    SCOPED_TRACE(attack_grad_name(grad));
    AutoAttackConfig c;
    c.eps = 24.0 / 255;
    c.apgd_iterations = 10;
    c.fab_iterations = 10;
    c.stages = {"apgd-ce", "apgd-t", "fab-t"};
    c.grad = grad;
    Generator gen(5);
    const AutoAttackResult r = autoattack(model, b.images, b.labels, c, gen);
    const auto pred = predict(model, r.adversarial).to_vector<int32_t>();
    const auto clean = predict(model, b.images).to_vector<int32_t>(), y = b.labels.to_vector<int32_t>();
    for (size_t i = 0; i < y.size(); ++i) {
      if (clean[i] != y[i]) continue;  // never attacked
      EXPECT_EQ(pred[i] == y[i], bool(r.robust[i])) << "example " << i;
    }
    EXPECT_LT(r.robust_correct(), r.clean_correct) << "an ANN-crafted attack at 24/255 breaks something";
  }
}

// A spiking network that cannot be fooled but whose ANN can: with a threshold of 1e6 no neuron ever fires
// (the SNN's logits are the same for every image), while ReLU ignores the threshold and the ANN's prediction
// moves with the image. APGD in ANN mode "fools" the ANN; AutoAttack must break nothing.
TEST(AnnMode, AutoAttackIgnoresPointsOnlyTheAnnMisclassifies) {
  auto model = fresh_model();
  model->train(false);
  model->spike_options().threshold = 1e6;
  Batch b = synthetic_batch(12, 46);
  b.labels = predict(*model, b.images);  // the one class the SNN predicts for everything
  const auto labels = b.labels.to_vector<int32_t>();
  ASSERT_TRUE(std::all_of(labels.begin(), labels.end(), [&](int32_t v) { return v == labels[0]; }));

  ApgdConfig a;
  a.eps = 0.5;
  a.iterations = 20;
  a.grad = AttackGrad::ann_relu;
  Generator gen(6);
  const ApgdResult ra = apgd(*model, b.images, b.labels, a, gen);
  ASSERT_GT(std::count(ra.fooled.begin(), ra.fooled.end(), 1), 0) << "the ANN is fooled somewhere";
  EXPECT_EQ(predict(*model, ra.adversarial).to_vector<int32_t>(), labels) << "the SNN never is";

  AutoAttackConfig c;
  c.eps = 0.5;
  c.apgd_iterations = 20;
  c.stages = {"apgd-ce"};
  c.grad = AttackGrad::ann_relu;
  Generator gen2(6);
  const AutoAttackResult r = autoattack(*model, b.images, b.labels, c, gen2);
  EXPECT_EQ(r.clean_correct, 12);
  EXPECT_EQ(r.robust_correct(), 12) << "points only the ANN misclassifies do not break the SNN";
}

TEST(AnnMode, CudaMatchesCpu) {
  SG_SKIP_WITHOUT_CUDA();
  Model& model = trained_model();
  const Batch b = synthetic_batch(4, 45);
  for (AttackGrad grad : {AttackGrad::ann_relu, AttackGrad::ann_qcfs}) {
    const Tensor cpu = input_gradient(model, b.images, b.labels, grad);
    model.to(Device::CUDA);
    const Tensor gpu = input_gradient(model, b.images.to(Device::CUDA), b.labels.to(Device::CUDA), grad);
    model.to(Device::CPU);
    EXPECT_FALSE(model.ann_mode().has_value());
    testing::expect_close(gpu.to(Device::CPU), cpu, 1e-4, 1e-6, attack_grad_name(grad));
  }
}

}  // namespace
}  // namespace spikegrad
