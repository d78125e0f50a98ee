// Optimizers, schedules and clipping: each optimizer against an independent double-precision loop of
// the published update rules, CUDA vs CPU, skipping of parameters without gradients, checkpoint
// round trips, strict loading, and error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

using Vec = std::vector<double>;
using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(NamedTensors)>;

// ---- independent references: the formulas as written in the PyTorch docs / the Adam paper -------

struct SgdRef {
  SgdOptions o;
  std::vector<Vec> buf;  // per parameter; empty until the parameter's first step
  void step(size_t j, Vec& p, const Vec& g) {
    if (buf.size() <= j) buf.resize(j + 1);
    const bool first = buf[j].empty();
    if (first) buf[j].assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + o.weight_decay * p[i];
      if (o.momentum != 0) {
        buf[j][i] = first ? d : o.momentum * buf[j][i] + (1 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * buf[j][i] : buf[j][i];
      }
      p[i] -= o.lr * d;
    }
  }
};

struct AdamRef {
  double lr, b1, b2, eps, wd;
  bool decoupled;
  std::vector<Vec> m, v;
  std::vector<int> t;
  void step(size_t j, Vec& p, const Vec& g) {
    if (m.size() <= j) m.resize(j + 1), v.resize(j + 1), t.resize(j + 1, 0);
    if (m[j].empty()) m[j].assign(p.size(), 0.0), v[j].assign(p.size(), 0.0);
    const int k = ++t[j];
    for (size_t i = 0; i < p.size(); ++i) {
      double gi = g[i];
      if (decoupled) p[i] *= 1 - lr * wd;
      else gi += wd * p[i];
      m[j][i] = b1 * m[j][i] + (1 - b1) * gi;
      v[j][i] = b2 * v[j][i] + (1 - b2) * gi * gi;
      const double mhat = m[j][i] / (1 - std::pow(b1, k)), vhat = v[j][i] / (1 - std::pow(b2, k));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
};
AdamRef adam_ref(const AdamOptions& o) { return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, false, {}, {}, {}}; }
AdamRef adamw_ref(const AdamWOptions& o) { return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, true, {}, {}, {}}; }

// ---- fixtures -------------------------------------------------------------------------------------

const std::vector<Shape> kShapes = {{4, 3}, {5}, {1}};
const std::vector<Shape> kCudaShapes = {{1}, {7}, {1000, 3}, {257}};  // 1, odd, several blocks, block + 1
constexpr int kSteps = 5;

NamedTensors make_params(const std::vector<Shape>& shapes, DType dtype, Device device, uint64_t seed = 7) {
  NamedTensors params;
  for (size_t j = 0; j < shapes.size(); ++j) {
    Tensor p = randn(shapes[j], dtype, seed + j).to(device);
    p.set_requires_grad(true);
    params.push_back({"layer" + std::to_string(j) + ".weight", p});
  }
  return params;
}

Tensor grad_for(const NamedTensors& params, size_t j, int step) {
  const Tensor& p = params[j].tensor;
  return randn(p.shape(), p.dtype(), 1000 + 10 * uint64_t(step) + j, 0.5).to(p.device());
}

Vec as_doubles(const Tensor& t) { return t.to(Device::CPU).to(DType::F64).to_vector<double>(); }

// Runs `make` on fresh parameters for kSteps and the reference on the same (dtype-rounded) numbers.
template <class Ref>
void expect_matches_reference(const MakeOptimizer& make, Ref ref, DType dtype, const std::string& what) {
  NamedTensors params = make_params(kShapes, dtype, Device::CPU);
  std::vector<Vec> expected;
  for (const auto& nt : params) expected.push_back(as_doubles(nt.tensor));
  auto opt = make(params);
  for (int s = 0; s < kSteps; ++s) {
    for (size_t j = 0; j < params.size(); ++j) {
      Tensor g = grad_for(params, j, s);
      params[j].tensor.set_grad(g);
      ref.step(j, expected[j], as_doubles(g));
    }
    opt->step();
  }
  EXPECT_EQ(opt->step_count(), kSteps);
  const double tol = dtype == DType::F64 ? 1e-12 : 2e-6;
  for (size_t j = 0; j < params.size(); ++j)
    expect_close(params[j].tensor, Tensor::from_vector(expected[j], params[j].tensor.shape()), tol, tol,
                 what + " " + dtype_name(dtype) + " " + params[j].name);
}

// Same optimizer and gradients on the CPU and on CUDA (float32): parameters and every state tensor agree.
void expect_cuda_matches_cpu(const MakeOptimizer& make, const std::string& what) {
  NamedTensors cpu = make_params(kCudaShapes, DType::F32, Device::CPU);
  NamedTensors gpu = make_params(kCudaShapes, DType::F32, Device::CUDA);
  auto opt_cpu = make(cpu);
  auto opt_gpu = make(gpu);
  for (int s = 0; s < kSteps; ++s) {
    for (size_t j = 0; j < cpu.size(); ++j) {
      cpu[j].tensor.set_grad(grad_for(cpu, j, s));
      gpu[j].tensor.set_grad(grad_for(gpu, j, s));
    }
    opt_cpu->step();
    opt_gpu->step();
  }
  for (size_t j = 0; j < cpu.size(); ++j) expect_close(gpu[j].tensor, cpu[j].tensor, 1e-5, 1e-6, what + " " + cpu[j].name);
  const NamedTensors sc = opt_cpu->state(), sg = opt_gpu->state();
  ASSERT_EQ(sc.size(), sg.size());
  for (size_t k = 0; k < sc.size(); ++k) {
    ASSERT_EQ(sc[k].name, sg[k].name);
    expect_close(sg[k].tensor.to(Device::CPU).to(DType::F64), sc[k].tensor.to(DType::F64), 1e-5, 1e-6, what + " " + sc[k].name);
  }
}

// ---- optimizers against the references ---------------------------------------------------------

const std::vector<std::pair<std::string, SgdOptions>> kSgdCases = {
    {"plain", {0.1, 0.0, 0.0, 0.0, false}},
    {"momentum", {0.1, 0.9, 0.0, 0.0, false}},
    {"dampening", {0.05, 0.8, 0.3, 0.0, false}},  // first step must ignore dampening
    {"nesterov", {0.1, 0.9, 0.0, 0.0, true}},
    {"rat_defaults_wd", {0.1, 0.9, 0.0, 5e-4, false}},
    {"nesterov_wd", {0.02, 0.5, 0.0, 0.1, true}},
};

TEST(OptimSgd, MatchesReferenceLoop) {
  for (const auto& [name, o] : kSgdCases)
    for (DType d : {DType::F32, DType::F64})
      expect_matches_reference([o = o](NamedTensors p) { return std::make_unique<SGD>(p, o); }, SgdRef{o, {}}, d,
                               "SGD " + name);
}

TEST(OptimAdam, MatchesReferenceLoop) {
  const std::vector<std::pair<std::string, AdamOptions>> cases = {
      {"defaults", {}}, {"tmi_lr", {0.01, 0.9, 0.999, 1e-8, 0.0}}, {"l2", {0.01, 0.8, 0.99, 1e-6, 0.05}}};
  for (const auto& [name, o] : cases)
    for (DType d : {DType::F32, DType::F64})
      expect_matches_reference([o = o](NamedTensors p) { return std::make_unique<Adam>(p, o); }, adam_ref(o), d,
                               "Adam " + name);
}

TEST(OptimAdamW, MatchesReferenceLoop) {
  const std::vector<std::pair<std::string, AdamWOptions>> cases = {{"defaults", {}},
                                                                   {"strong_decay", {0.01, 0.9, 0.95, 1e-8, 0.1}}};
  for (const auto& [name, o] : cases)
    for (DType d : {DType::F32, DType::F64})
      expect_matches_reference([o = o](NamedTensors p) { return std::make_unique<AdamW>(p, o); }, adamw_ref(o), d,
                               "AdamW " + name);
}

TEST(OptimAdamW, DefaultsArePyTorchs) {
  NamedTensors params = make_params({{2}}, DType::F32, Device::CPU);
  AdamW adamw(params);
  EXPECT_EQ(adamw.lr(), 1e-3);
  EXPECT_EQ(adamw.options().weight_decay, 1e-2);
  EXPECT_EQ(adamw.options().beta2, 0.999);
  EXPECT_EQ(Adam(make_params({{2}}, DType::F32, Device::CPU)).options().weight_decay, 0.0);
}

TEST(OptimCuda, SgdMatchesCpu) {
  SG_SKIP_WITHOUT_CUDA();
  for (const auto& [name, o] : kSgdCases)
    expect_cuda_matches_cpu([o = o](NamedTensors p) { return std::make_unique<SGD>(p, o); }, "SGD " + name);
}

TEST(OptimCuda, AdamAndAdamWMatchCpu) {
  SG_SKIP_WITHOUT_CUDA();
  expect_cuda_matches_cpu([](NamedTensors p) { return std::make_unique<Adam>(p, AdamOptions{0.01, 0.9, 0.999, 1e-8, 0.05}); },
                          "Adam l2");
  expect_cuda_matches_cpu([](NamedTensors p) { return std::make_unique<AdamW>(p, AdamWOptions{}); }, "AdamW");
}

// One launch for all parameters (the default on CUDA) gives the bits of one launch per parameter. 45 tensors:
// more than one launch holds (kMultiTensorMax = 40); sizes around the chunk size (16384) and odd ones; some
// parameters skip steps, so their own step counts (and bias corrections) differ within a launch.
void expect_multi_tensor_equals_per_tensor(const std::function<std::unique_ptr<Optimizer>(NamedTensors)>& make,
                                           const std::string& what) {
  std::vector<Shape> shapes;
  const int64_t sizes[] = {1, 7, 300, 16383, 16384, 16385, 40000, 70001, 3};
  for (int k = 0; k < 45; ++k) shapes.push_back({sizes[k % 9]});
  NamedTensors multi = make_params(shapes, DType::F32, Device::CUDA), single = make_params(shapes, DType::F32, Device::CUDA);
  auto a = make(multi), b = make(single);
  b->set_multi_tensor(false);
  for (int s = 0; s < 4; ++s) {
    for (size_t j = 0; j < shapes.size(); ++j) {
      if ((j + size_t(s)) % 5 == 0) continue;  // no gradient for this parameter at this step
      multi[j].tensor.set_grad(grad_for(multi, j, s));
      single[j].tensor.set_grad(grad_for(single, j, s));
    }
    a->step();
    b->step();
    a->zero_grad();
    b->zero_grad();
  }
  for (size_t j = 0; j < shapes.size(); ++j)
    ASSERT_EQ(as_doubles(multi[j].tensor), as_doubles(single[j].tensor)) << what << ": parameter " << j;
  const NamedTensors sa = a->state(), sb = b->state();
  for (size_t j = 0; j < sa.size(); ++j) ASSERT_EQ(as_doubles(sa[j].tensor), as_doubles(sb[j].tensor)) << what << ": " << sa[j].name;
}

TEST(OptimCuda, MultiTensorLaunchEqualsOneLaunchPerParameter) {
  SG_SKIP_WITHOUT_CUDA();
  expect_multi_tensor_equals_per_tensor([](NamedTensors p) { return std::make_unique<Adam>(p, AdamOptions{0.01, 0.9, 0.999, 1e-8, 0.05}); },
                                        "Adam l2");
  expect_multi_tensor_equals_per_tensor([](NamedTensors p) { return std::make_unique<AdamW>(p, AdamWOptions{}); }, "AdamW");
  for (const auto& [name, o] : kSgdCases)
    expect_multi_tensor_equals_per_tensor([o = o](NamedTensors p) { return std::make_unique<SGD>(p, o); }, "SGD " + name);
}

// ---- behaviour ---------------------------------------------------------------------------------

TEST(OptimAdam, SkipsParametersWithoutGradient) {
  NamedTensors params = make_params({{3}, {4}}, DType::F64, Device::CPU);
  const Vec frozen_before = as_doubles(params[1].tensor);
  AdamOptions o{0.01, 0.9, 0.999, 1e-8, 0.0};
  Adam adam(params, o);
  AdamRef ref = adam_ref(o);
  Vec p0 = as_doubles(params[0].tensor), p1 = frozen_before;
  for (int s = 0; s < 3; ++s) {  // only parameter 0 has a gradient
    Tensor g = grad_for(params, 0, s);
    params[0].tensor.set_grad(g);
    ref.step(0, p0, as_doubles(g));
    adam.step();
  }
  EXPECT_EQ(as_doubles(params[1].tensor), frozen_before) << "a parameter without grad must not move";
  for (const auto& nt : adam.state())
    if (nt.name == "layer1.weight.step") EXPECT_EQ(nt.tensor.item(), 0.0);
  // Its first gradient then gets the bias correction of step 1, not of step 4.
  Tensor g = grad_for(params, 1, 3);
  params[1].tensor.set_grad(g);
  params[0].tensor.zero_grad();
  ref.step(1, p1, as_doubles(g));
  adam.step();
  expect_close(params[1].tensor, Tensor::from_vector(p1, {4}), 1e-12, 1e-12, "late parameter");
  expect_close(params[0].tensor, Tensor::from_vector(p0, {3}), 1e-12, 1e-12, "parameter without grad this step");
  EXPECT_EQ(adam.step_count(), 4);
}

TEST(OptimSgd, ZeroGradDropsGradients) {
  NamedTensors params = make_params(kShapes, DType::F32, Device::CPU);
  SGD sgd(params, {0.1});
  for (size_t j = 0; j < params.size(); ++j) params[j].tensor.set_grad(grad_for(params, j, 0));
  sgd.zero_grad();
  for (const auto& nt : params) EXPECT_FALSE(nt.tensor.grad().defined()) << nt.name;
  const Vec before = as_doubles(params[0].tensor);
  sgd.step();
  EXPECT_EQ(as_doubles(params[0].tensor), before);
}

// Saves after 3 steps, restores into fresh objects, and checks 3 more steps agree bit for bit with
// the uninterrupted run.
void expect_resume_is_exact(const MakeOptimizer& make, const std::string& what) {
  NamedTensors run = make_params(kShapes, DType::F32, Device::CPU);
  auto opt = make(run);
  opt->set_lr(0.03);
  for (int s = 0; s < 3; ++s) {
    for (size_t j = 0; j < run.size(); ++j)
      if (!(s == 0 && j == 1)) run[j].tensor.set_grad(grad_for(run, j, s));  // unequal per-parameter steps
    opt->step();
    opt->zero_grad();
  }
  NamedTensors saved;  // a snapshot, as a checkpoint file would hold (state() aliases the live state)
  for (const auto& nt : opt->state()) saved.push_back({nt.name, nt.tensor.clone()});
  const auto hyper = opt->hyper_state();
  NamedTensors resumed = make_params(kShapes, DType::F32, Device::CPU, 99);  // different initial values
  for (size_t j = 0; j < run.size(); ++j) resumed[j].tensor.copy_from(run[j].tensor);
  auto opt2 = make(resumed);
  opt2->load_state(saved);
  opt2->load_hyper_state(hyper);
  EXPECT_EQ(opt2->lr(), 0.03);
  EXPECT_EQ(opt2->step_count(), 3);
  for (int s = 3; s < 6; ++s) {
    for (size_t j = 0; j < run.size(); ++j) {
      run[j].tensor.set_grad(grad_for(run, j, s));
      resumed[j].tensor.set_grad(grad_for(run, j, s));
    }
    opt->step();
    opt2->step();
  }
  for (size_t j = 0; j < run.size(); ++j)
    EXPECT_EQ(resumed[j].tensor.to_vector<float>(), run[j].tensor.to_vector<float>()) << what << " " << run[j].name;
}

TEST(OptimState, ResumeContinuesIdentically) {
  expect_resume_is_exact([](NamedTensors p) { return std::make_unique<SGD>(p, SgdOptions{0.1, 0.9, 0.3, 1e-3, false}); },
                         "SGD");
  expect_resume_is_exact([](NamedTensors p) { return std::make_unique<Adam>(p, AdamOptions{0.01}); }, "Adam");
  expect_resume_is_exact([](NamedTensors p) { return std::make_unique<AdamW>(p, AdamWOptions{}); }, "AdamW");
}

TEST(OptimState, NamesFollowPyTorch) {
  NamedTensors params = make_params({{2, 2}}, DType::F32, Device::CPU);
  params[0].name = "features.0.weight";
  std::vector<std::string> names;
  for (const auto& nt : Adam(params).state()) names.push_back(nt.name);
  EXPECT_EQ(names, (std::vector<std::string>{"features.0.weight.exp_avg", "features.0.weight.exp_avg_sq",
                                             "features.0.weight.step"}));
  names.clear();
  for (const auto& nt : SGD(params, {0.1, 0.9}).state()) names.push_back(nt.name);
  EXPECT_EQ(names, (std::vector<std::string>{"features.0.weight.momentum_buffer", "features.0.weight.step"}));
  EXPECT_EQ(SGD(params, {0.1}).state().size(), 1u) << "no momentum buffer without momentum, as PyTorch";
}

TEST(OptimState, LoadStateIsStrictAndListsEveryProblem) {
  NamedTensors params = make_params(kShapes, DType::F32, Device::CPU);
  Adam adam(params);
  for (size_t j = 0; j < params.size(); ++j) params[j].tensor.set_grad(grad_for(params, j, 0));
  adam.step();
  const Vec exp_avg_before = as_doubles(adam.state()[0].tensor);
  NamedTensors bad;
  for (const auto& nt : adam.state()) {
    if (nt.name == "layer1.weight.exp_avg_sq") continue;                                      // missing
    if (nt.name == "layer0.weight.exp_avg") bad.push_back({nt.name, Tensor::zeros({4, 3})}); // zeroed, must not load
    else if (nt.name == "layer2.weight.exp_avg") bad.push_back({nt.name, Tensor::zeros({2})});  // wrong shape
    else bad.push_back({nt.name, nt.tensor.clone()});
  }
  bad.push_back({"layer9.weight.exp_avg", Tensor::zeros({1})});  // unexpected
  const std::string msg = error_of([&] { adam.load_state(bad); });
  EXPECT_NE(msg.find("Adam load_state: checkpoint does not match the model: missing [layer1.weight.exp_avg_sq]; "
                     "unexpected [layer9.weight.exp_avg]; shape mismatch [layer2.weight.exp_avg: expected (1), got (2)]"),
            std::string::npos)
      << msg;
  EXPECT_EQ(as_doubles(adam.state()[0].tensor), exp_avg_before) << "a rejected state must change nothing";

  NamedTensors negative = adam.state();
  for (auto& nt : negative)
    if (nt.name == "layer0.weight.step") nt.tensor = Tensor::scalar(-1, DType::I64);
  EXPECT_NE(error_of([&] { adam.load_state(negative); }).find("layer0.weight.step must be an integer >= 0, got -1"),
            std::string::npos);
  const std::string hyper_msg = error_of([&] { adam.load_hyper_state({{"lr", 0.1}, {"epoch", 3}}); });
  EXPECT_NE(hyper_msg.find("missing 'step_count'; unexpected 'epoch'"), std::string::npos) << hyper_msg;
}

TEST(OptimErrors, OptionsAndGradientsAreChecked) {
  NamedTensors params = make_params(kShapes, DType::F32, Device::CPU);
  EXPECT_NE(error_of([&] { SGD(params, {0.1, 0.0, 0.0, 0.0, true}); })
                .find("SGD: nesterov requires momentum > 0 and dampening == 0, got momentum=0 dampening=0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { SGD(params, {0.1, 0.9, 0.1, 0.0, true}); }).find("dampening=0.1"), std::string::npos);
  EXPECT_NE(error_of([&] { Adam(params, {0.01, 1.0}); }).find("Adam: beta1 must be in [0, 1), got 1"), std::string::npos);
  EXPECT_NE(error_of([&] { AdamW(params, {-1.0}); }).find("AdamW: lr must be a finite number >= 0, got -1"),
            std::string::npos);
  EXPECT_NE(error_of([] { SGD(NamedTensors{}, {}); }).find("empty parameter list"), std::string::npos);
  NamedTensors twice = {params[0], {"alias", params[0].tensor}};
  EXPECT_NE(error_of([&] { SGD(twice, {}); }).find("'alias' is the same tensor"), std::string::npos);

  SGD sgd(params, {0.1});
  params[2].tensor.set_grad(Tensor::zeros({1}));
  Tensor wrong = Tensor::zeros({5}, DType::F64);
  params[1].tensor.impl()->grad = wrong;  // bypasses set_grad's own check to reach the optimizer's
  const Vec before = as_doubles(params[2].tensor);
  EXPECT_NE(error_of([&] { sgd.step(); }).find("SGD step: grad of 'layer1.weight': grad is float64 but parameter is float32"),
            std::string::npos);
  EXPECT_EQ(as_doubles(params[2].tensor), before) << "a failed step must not have updated anything";
  EXPECT_EQ(sgd.step_count(), 0);
  EXPECT_NE(error_of([&] { sgd.set_lr(std::nan("")); }).find("SGD: lr must be"), std::string::npos);
}

// ---- schedules ---------------------------------------------------------------------------------

TEST(OptimSchedule, CosineAtKnownEpochs) {
  const CosineSchedule tmi(0.01, 300);  // TMI: Adam 0.01, T_max = epochs = 300, eta_min 0
  EXPECT_DOUBLE_EQ(tmi.lr(0), 0.01);
  EXPECT_DOUBLE_EQ(tmi.lr(150), 0.005);
  EXPECT_DOUBLE_EQ(tmi.lr(100), 0.0075);  // (1 + cos(pi/3)) / 2 = 3/4
  EXPECT_NEAR(tmi.lr(300), 0.0, 1e-18);
  const CosineSchedule floor(0.1, 4, 0.02);
  EXPECT_DOUBLE_EQ(floor.lr(2), 0.06);
  EXPECT_DOUBLE_EQ(floor.lr(4), 0.02);
  EXPECT_NEAR(floor.lr(1), 0.02 + 0.08 * (2 + std::sqrt(2.0)) / 4, 1e-15);
  EXPECT_NE(error_of([] { CosineSchedule(0.1, 0); }).find("CosineSchedule: t_max must be > 0, got 0"), std::string::npos);
  EXPECT_NE(error_of([&] { tmi.lr(-1); }).find("epoch must be >= 0"), std::string::npos);
}

TEST(OptimSchedule, StepAtKnownEpochs) {
  const StepSchedule s(0.1, 30, 0.1);
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(29), 0.1);
  EXPECT_DOUBLE_EQ(s.lr(30), 0.01);
  EXPECT_DOUBLE_EQ(s.lr(65), 0.001);
  EXPECT_DOUBLE_EQ(StepSchedule(1.0, 2, 0.5).lr(7), 0.125);
  EXPECT_NE(error_of([] { StepSchedule(0.1, 0); }).find("step_size must be > 0"), std::string::npos);
}

// ---- clipping ----------------------------------------------------------------------------------

NamedTensors clip_case(DType dtype, Device device) {
  NamedTensors p = {{"a", Tensor::zeros({2}, dtype, device)}, {"b", Tensor::zeros({1}, dtype, device)},
                    {"no_grad", Tensor::zeros({3}, dtype, device)}};
  p[0].tensor.set_grad(Tensor::from_vector<double>({3, -4}, {2}).to(dtype).to(device));
  p[1].tensor.set_grad(Tensor::from_vector<double>({12}, {1}).to(dtype).to(device));
  return p;  // global norm sqrt(9 + 16 + 144) = 13
}

TEST(OptimClip, HandComputedNormAndScaling) {
  for (DType d : {DType::F32, DType::F64}) {
    NamedTensors p = clip_case(d, Device::CPU);
    EXPECT_DOUBLE_EQ(global_grad_norm(p), 13.0);
    EXPECT_DOUBLE_EQ(clip_grad_norm(p, 20.0), 13.0);
    EXPECT_EQ(as_doubles(p[0].tensor.grad()), (Vec{3, -4})) << "below max_norm nothing changes";
    EXPECT_DOUBLE_EQ(clip_grad_norm(p, 6.5), 13.0);
    const double c = 6.5 / (13.0 + 1e-6);
    const double tol = d == DType::F64 ? 1e-15 : 1e-6;
    expect_close(p[0].tensor.grad(), Tensor::from_vector<double>({3 * c, -4 * c}, {2}), tol, tol, "clipped a");
    expect_close(p[1].tensor.grad(), Tensor::from_vector<double>({12 * c}, {1}), tol, tol, "clipped b");
    EXPECT_NEAR(global_grad_norm(p), 6.5, 1e-5);
  }
}

TEST(OptimClip, NonFiniteNormIsReturnedUntouched) {
  NamedTensors p = clip_case(DType::F32, Device::CPU);
  p[1].tensor.set_grad(Tensor::from_vector<float>({std::numeric_limits<float>::infinity()}, {1}));
  EXPECT_TRUE(std::isinf(clip_grad_norm(p, 1.0)));
  EXPECT_EQ(as_doubles(p[0].tensor.grad()), (Vec{3, -4}));
  p[1].tensor.set_grad(Tensor::from_vector<float>({std::nanf("")}, {1}));
  EXPECT_TRUE(std::isnan(clip_grad_norm(p, 1.0)));
  EXPECT_EQ(as_doubles(p[0].tensor.grad()), (Vec{3, -4}));
  NamedTensors none = {{"w", Tensor::zeros({2})}};
  EXPECT_EQ(clip_grad_norm(none, 1.0), 0.0);
  EXPECT_NE(error_of([&] { clip_grad_norm(p, -1.0); }).find("clip_grad_norm: max_norm must be >= 0, got -1"),
            std::string::npos);
}

TEST(OptimClip, CudaMatchesCpuAndIsDeterministic) {
  SG_SKIP_WITHOUT_CUDA();
  NamedTensors small = clip_case(DType::F32, Device::CUDA);
  EXPECT_DOUBLE_EQ(global_grad_norm(small), 13.0);
  // Sizes: empty, 1, odd, and one large enough to fill the maximum number of partial blocks.
  const std::vector<Shape> shapes = {{0}, {1}, {1001}, {3, 700001}};
  NamedTensors cpu, gpu;
  for (size_t j = 0; j < shapes.size(); ++j) {
    Tensor g = randn(shapes[j], DType::F32, 50 + j);
    cpu.push_back({"p" + std::to_string(j), Tensor::zeros(shapes[j])});
    gpu.push_back({"p" + std::to_string(j), Tensor::zeros(shapes[j], DType::F32, Device::CUDA)});
    cpu.back().tensor.set_grad(g);
    gpu.back().tensor.set_grad(g.to(Device::CUDA));
  }
  const double n_cpu = global_grad_norm(cpu), n_gpu = global_grad_norm(gpu);
  EXPECT_NEAR(n_gpu, n_cpu, 1e-12 * n_cpu);
  EXPECT_EQ(global_grad_norm(gpu), n_gpu) << "the device reduction must give the same bits every time";
  EXPECT_EQ(clip_grad_norm(gpu, 10.0), n_gpu);
  clip_grad_norm(cpu, 10.0);
  for (size_t j = 0; j < shapes.size(); ++j)
    expect_close(gpu[j].tensor.grad(), cpu[j].tensor.grad(), 1e-6, 1e-7, "clipped " + gpu[j].name);
  EXPECT_NEAR(global_grad_norm(gpu), 10.0, 1e-4);
}

}  // namespace
}  // namespace spikegrad::testing
