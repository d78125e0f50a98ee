// Reading a loader's batches in tests: one whole epoch, and the check that two epochs are the same batches.
#pragma once
#include <gtest/gtest.h>

#include <vector>

#include "datasets/loader.h"

namespace spikegrad::testing {

// The batches of the loader's current epoch, until next() reports its end.
inline std::vector<Batch> whole_epoch(Loader& loader) {
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

// Same epoch, positions, samples, labels and pixels, batch by batch.
inline void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].epoch, b[k].epoch);
    EXPECT_EQ(a[k].batch_index, b[k].batch_index);
    EXPECT_EQ(a[k].indices, b[k].indices);
    EXPECT_EQ(a[k].labels.to_vector<int32_t>(), b[k].labels.to_vector<int32_t>());
    EXPECT_EQ(a[k].images.to_vector<float>(), b[k].images.to_vector<float>()) << "batch " << k;
  }
}

}  // namespace spikegrad::testing
