// A small ModelConfig for model tests: `channels` x `size` px inputs, 10 classes, seeded init.
#pragma once
#include "models/model.h"

namespace spikegrad::testing {

inline ModelConfig model_config(int64_t channels, int64_t size, int64_t steps = 2) {
  ModelConfig c;
  c.in_channels = channels;
  c.image_size = size;
  c.num_classes = 10;
  c.time_steps = steps;
  c.init_seed = 3;
  return c;
}

}  // namespace spikegrad::testing
