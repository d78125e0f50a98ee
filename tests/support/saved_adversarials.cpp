#include "support/saved_adversarials.h"

#include <gtest/gtest.h>

#include "apps/checkpoint.h"
#include "attacks/evaluate.h"
#include "engine/safetensors.h"
#include "models/model.h"

namespace spikegrad::testing {

int expect_saved_adversarials_reproduce_table(const std::string& adv_path, const std::string& checkpoint,
                                              int64_t examples) {
  const SafetensorsFile adv = load_safetensors(adv_path);
  ModelConfig mc;
  mc.time_steps = 2;
  mc.mean = {0.2860f, 0, 0};
  mc.std = {0.3530f, 1, 1};
  auto model = make_model("small_cnn", mc);
  app::restore_model(*model, app::read_checkpoint(checkpoint));
  Tensor labels;
  for (const auto& t : adv.tensors)
    if (t.name == "labels") labels = t.tensor;
  if (!labels.defined() || labels.numel() != examples) {
    ADD_FAILURE() << adv_path << ": expected " << examples << " labels";
    return 0;
  }
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  int sets = 0;
  for (const auto& t : adv.tensors) {
    if (t.name == "labels") continue;
    ++sets;
    const std::vector<int32_t> p = predict(*model, t.tensor).to_vector<int32_t>();
    int correct = 0;
    for (size_t i = 0; i < p.size(); ++i) correct += p[i] == y[i];
    EXPECT_EQ(std::to_string(correct), adv.metadata.at(t.name + ".robust_correct"))
        << t.name << " (" << adv.metadata.at(t.name) << ")";
  }
  return sets;
}

}  // namespace spikegrad::testing
