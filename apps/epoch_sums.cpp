#include "apps/epoch_sums.h"

#include <nlohmann/json.hpp>

#include "engine/check.h"

namespace spikegrad::app {

const char* const kEpochInProgressKey = "spikegrad_epoch_in_progress";

StepValues read_step(const LossParts& p, const Tensor& predictions) {
  const auto named = p.named();
  std::vector<Tensor> tensors{predictions};
  for (const auto& [name, t] : named) tensors.push_back(t);
  const std::vector<Tensor> host = to_cpu(tensors);
  StepValues v;
  v.predictions = host[0];
  for (size_t i = 0; i < named.size(); ++i) v.parts.push_back({named[i].first, host[i + 1].item()});
  return v;
}

StepTotals step_totals(const StepValues& v, int64_t correct, int64_t batch) {
  StepTotals t;
  for (const auto& [name, value] : v.parts) t.parts.push_back({name, value * double(batch)});
  t.correct = correct;
  t.seen = batch;
  return t;
}

void EpochSums::add(const StepTotals& t) {
  if (parts.empty())
    for (const auto& [name, value] : t.parts) parts.push_back({name, 0.0});
  for (size_t i = 0; i < t.parts.size(); ++i) parts[i].second += t.parts[i].second;
  correct += t.correct;
  seen += t.seen;
}

std::string epoch_sums_json(const EpochSums& s, const LoaderState& at) {
  nlohmann::json j;
  j["epoch"] = at.epoch;
  j["next_batch"] = at.next_batch;
  j["correct"] = s.correct;
  j["seen"] = s.seen;
  j["parts"] = nlohmann::json::array();
  for (const auto& [name, total] : s.parts) j["parts"].push_back({name, total});  // doubles round-trip exactly
  return j.dump();
}

EpochSums read_epoch_sums(const Checkpoint& ck) {
  const LoaderState& at = ck.progress.loader;
  const auto it = ck.file.metadata.find(kEpochInProgressKey);
  SG_CHECK(it != ck.file.metadata.end(), ck.path << ": a mid-epoch checkpoint (epoch " << at.epoch + 1 << ", step "
                                                 << at.next_batch << ") without the epoch's running sums ('"
                                                 << kEpochInProgressKey << "' metadata)");
  EpochSums s;
  try {
    const nlohmann::json j = nlohmann::json::parse(it->second);
    SG_CHECK(j.at("epoch").get<int64_t>() == at.epoch && j.at("next_batch").get<int64_t>() == at.next_batch,
             "the running sums are of epoch " << j.at("epoch").get<int64_t>() + 1 << " step "
                                              << j.at("next_batch").get<int64_t>() << ", the loader is at epoch "
                                              << at.epoch + 1 << " step " << at.next_batch);
    s.correct = j.at("correct").get<int64_t>();
    s.seen = j.at("seen").get<int64_t>();
    for (const auto& p : j.at("parts")) s.parts.push_back({p.at(0).get<std::string>(), p.at(1).get<double>()});
    SG_CHECK(s.seen > 0 && s.correct >= 0 && s.correct <= s.seen && !s.parts.empty(),
             "implausible running sums (correct " << s.correct << ", seen " << s.seen << ")");
  } catch (const Error& e) {
    SG_FAIL(ck.path << ": bad '" << kEpochInProgressKey << "' metadata: " << e.what());
  } catch (const std::exception& e) {
    SG_FAIL(ck.path << ": bad '" << kEpochInProgressKey << "' metadata: " << e.what());
  }
  return s;
}

}  // namespace spikegrad::app
