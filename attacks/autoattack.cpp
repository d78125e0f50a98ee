// AutoAttack, standard L∞ (attacks/autoattack.h).
#include "attacks/autoattack.h"

#include <algorithm>
#include <cmath>

#include "attacks/apgd.h"
#include "attacks/evaluate.h"
#include "attacks/fab.h"
#include "attacks/logit_gradient.h"
#include "attacks/square.h"

namespace spikegrad {

namespace {

// The rows `rows` of a host copy of a (B,...) batch, as a tensor on `device`.
Tensor gather_rows(const std::vector<float>& all, const Shape& shape, const std::vector<int64_t>& rows, Device device) {
  const int64_t d = int64_t(all.size()) / shape[0];
  std::vector<float> out(rows.size() * size_t(d));
  for (size_t r = 0; r < rows.size(); ++r)
    std::copy(all.begin() + rows[r] * d, all.begin() + (rows[r] + 1) * d, out.begin() + int64_t(r) * d);
  Shape s = shape;
  s[0] = int64_t(rows.size());
  return Tensor::from_vector<float>(out, s).to(device);
}

AutoAttackStage named_stage(const std::string& name) {
  AutoAttackStage s;
  s.name = name;
  return s;
}

Tensor gather_labels(const std::vector<int32_t>& all, const std::vector<int64_t>& rows, Device device) {
  std::vector<int32_t> out;
  for (int64_t r : rows) out.push_back(all[size_t(r)]);
  return Tensor::from_vector<int32_t>(out, {int64_t(out.size())}).to(device);
}

}  // namespace

AutoAttackResult& AutoAttackResult::operator+=(const AutoAttackResult& o) {
  if (stages.empty() && total == 0) {
    stages = o.stages;
  } else {
    SG_CHECK(stages.size() == o.stages.size(), "AutoAttackResult: adding results of different stage lists");
    for (size_t s = 0; s < stages.size(); ++s) {
      SG_CHECK(stages[s].name == o.stages[s].name, "AutoAttackResult: stage " << s << " is " << stages[s].name
                                                                               << " here and " << o.stages[s].name << " there");
      stages[s].broken += o.stages[s].broken;
      stages[s].robust_after += o.stages[s].robust_after;
      if (!o.stages[s].ran) {
        stages[s].ran = false;
        stages[s].skipped_because = o.stages[s].skipped_because;
      }
    }
  }
  total += o.total;
  clean_correct += o.clean_correct;
  top_logit_ties += o.top_logit_ties;
  return *this;
}

void check_autoattack_config(const AutoAttackConfig& c) {
  SG_CHECK(!c.stages.empty(), "autoattack: no stage to run");
  for (const std::string& s : c.stages)
    SG_CHECK(s == "apgd-ce" || s == "apgd-t" || s == "fab-t" || s == "square",
             "autoattack: unknown stage '" << s << "' (the stages are apgd-ce, apgd-t, fab-t, square)");
  SG_CHECK(std::isfinite(c.eps) && c.eps >= 0 && c.eps <= 1,
           "autoattack: eps must be in [0,1] (pixel units of [0,1] images), got " << c.eps);
  SG_CHECK(c.apgd_iterations >= 1, "autoattack: apgd_iterations must be >= 1, got " << c.apgd_iterations);
  SG_CHECK(c.fab_iterations >= 1, "autoattack: fab_iterations must be >= 1, got " << c.fab_iterations);
  SG_CHECK(c.square_queries >= 1, "autoattack: square_queries must be >= 1, got " << c.square_queries);
  SG_CHECK(c.target_classes >= 1, "autoattack: target_classes must be >= 1, got " << c.target_classes);
}

AutoAttackResult autoattack(Model& model, const Tensor& images, const Tensor& labels, const AutoAttackConfig& cfg,
                            Generator& gen) {
  attack_detail::check_attack_inputs(model, images, labels, "autoattack");
  check_autoattack_config(cfg);
  const attack_detail::HostBatch in(images, labels);
  const Shape& shape = in.shape;
  const Device device = in.device;
  const int64_t b = in.size, d = in.per_example, k = model.config().num_classes;
  const std::vector<int32_t>& y = in.y;
  std::vector<float> adv = in.x;  // becomes the breaking point of each broken example

  AutoAttackResult r;
  r.total = b;
  r.robust.assign(size_t(b), 0);
  {
    ModelModeGuard eval(model, std::nullopt);
    NoGradGuard no_grad;
    Tape tape;
    const std::vector<float> z = ops::mean_time(tape, model.forward(tape, images, TapKeep::none()).logits).to_vector<float>();
    for (int64_t i = 0; i < b; ++i) {
      const float* row = z.data() + i * k;
      std::vector<float> sorted(row, row + k);
      std::partial_sort(sorted.begin(), sorted.begin() + std::min<int64_t>(2, k), sorted.end(), std::greater<float>());
      if (k >= 2 && sorted[0] == sorted[1]) ++r.top_logit_ties;
      r.robust[size_t(i)] = std::max_element(row, row + k) - row == y[size_t(i)];
      r.clean_correct += r.robust[size_t(i)];
    }
  }
  const int max_rank = int(std::min<int64_t>(k, int64_t(cfg.target_classes) + 1));
  auto robust_rows = [&] {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < b; ++i)
      if (r.robust[size_t(i)]) rows.push_back(i);
    return rows;
  };
  // A gradient stage's verdict comes from the network it attacked. In ANN mode (attacks/attack.h AttackGrad)
  // that is the ANN, so its points count as breaking only where the spiking network misclassifies them too.
  const bool ann = cfg.grad == AttackGrad::ann_relu || cfg.grad == AttackGrad::ann_qcfs;
  auto confirmed_on_snn = [&](const std::vector<int64_t>& rows, std::vector<uint8_t> broken,
                              const std::vector<float>& points) {
    std::vector<int64_t> candidates;
    for (size_t j = 0; j < rows.size(); ++j)
      if (broken[j]) candidates.push_back(int64_t(j));
    if (candidates.empty()) return broken;
    Shape sub = shape;
    sub[0] = int64_t(rows.size());
    const std::vector<int32_t> pred = predict(model, gather_rows(points, sub, candidates, device)).to_vector<int32_t>();
    for (size_t i = 0; i < candidates.size(); ++i)
      broken[size_t(candidates[i])] = pred[i] != y[size_t(rows[size_t(candidates[i])])];
    return broken;
  };
  // Marks rows[j] broken with its point from `points` (rows of the sub-batch).
  auto mark = [&](AutoAttackStage& stage, const std::vector<int64_t>& rows, std::vector<uint8_t> broken,
                  const std::vector<float>& points, bool gradient_stage = true) {
    if (ann && gradient_stage) broken = confirmed_on_snn(rows, std::move(broken), points);
    for (size_t j = 0; j < rows.size(); ++j) {
      if (!broken[j] || !r.robust[size_t(rows[j])]) continue;
      r.robust[size_t(rows[j])] = 0;
      ++stage.broken;
      std::copy(points.begin() + int64_t(j) * d, points.begin() + int64_t(j + 1) * d, adv.begin() + rows[j] * d);
    }
  };

  auto wants = [&](const std::string& name) {
    return std::find(cfg.stages.begin(), cfg.stages.end(), name) != cfg.stages.end();
  };
  // APGD-CE
  if (wants("apgd-ce")) {
    AutoAttackStage stage = named_stage("apgd-ce");
    const std::vector<int64_t> rows = robust_rows();
    if (!rows.empty()) {
      ApgdConfig c;
      c.eps = cfg.eps;
      c.iterations = cfg.apgd_iterations;
      c.grad = cfg.grad;
      const ApgdResult a = apgd(model, gather_rows(adv, shape, rows, device), gather_labels(y, rows, device), c, gen);
      mark(stage, rows, a.fooled, a.adversarial.to_vector<float>());
    }
    r.stages.push_back(stage);
  }
  // APGD-T, FAB-T: one run per target rank, each on the still-robust examples.
  for (const char* name : {"apgd-t", "fab-t"}) {
    if (!wants(name)) continue;
    AutoAttackStage stage = named_stage(name);
    const bool apgd_t = std::string(name) == "apgd-t";
    if (apgd_t && k < 4) {
      stage.ran = false;
      stage.skipped_because = "the targeted DLR loss needs at least 4 classes, the model has " + std::to_string(k);
    } else if (k < 2) {
      stage.ran = false;
      stage.skipped_because = "a targeted attack needs at least 2 classes";
    }
    for (int rank = 2; stage.ran && rank <= max_rank; ++rank) {
      const std::vector<int64_t> rows = robust_rows();
      if (rows.empty()) break;
      const Tensor x = gather_rows(adv, shape, rows, device), yl = gather_labels(y, rows, device);
      if (apgd_t) {
        ApgdConfig c;
        c.eps = cfg.eps;
        c.iterations = cfg.apgd_iterations;
        c.loss = ApgdLoss::dlr_targeted;
        c.target_rank = rank;
        c.grad = cfg.grad;
        const ApgdResult a = apgd(model, x, yl, c, gen);
        mark(stage, rows, a.fooled, a.adversarial.to_vector<float>());
      } else {
        FabConfig c;
        c.iterations = cfg.fab_iterations;
        c.target_rank = rank;
        c.grad = cfg.grad;
        const FabResult f = fab_targeted(model, x, yl, c);
        std::vector<uint8_t> within(rows.size());
        for (size_t j = 0; j < rows.size(); ++j) within[j] = f.found[j] && f.norm[j] <= cfg.eps;
        mark(stage, rows, within, f.adversarial.to_vector<float>());
      }
    }
    r.stages.push_back(stage);
  }
  // Square
  if (wants("square")) {
    AutoAttackStage stage = named_stage("square");
    const std::vector<int64_t> rows = robust_rows();
    if (!rows.empty()) {
      SquareConfig c;
      c.eps = cfg.eps;
      c.queries = cfg.square_queries;
      const SquareResult s = square_attack(model, gather_rows(adv, shape, rows, device), gather_labels(y, rows, device), c, gen);
      mark(stage, rows, s.fooled, s.adversarial.to_vector<float>(), /*gradient_stage=*/false);
    }
    r.stages.push_back(stage);
  }
  // robust_after per stage: the clean-correct count minus everything broken up to that stage.
  int64_t left = r.clean_correct;
  for (AutoAttackStage& s : r.stages) s.robust_after = left -= s.broken;
  r.adversarial = in.on_device(adv);
  return r;
}

}  // namespace spikegrad
