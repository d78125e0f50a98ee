// cudaemu hooks for the emulator's own tests (tests/cudaemu/tests): not part of the CUDA API.
#pragma once

namespace cudaemu {
// Violations since the last call (kernel faults and API misuse), and resets the count. The test listener
// uses it to fail a test that caused one without failing; tests that provoke violations on purpose
// take them first.
int take_violations();
// Runs the following launches with this order ("launch", "reverse", "random:<seed>") instead of
// SPIKEGRAD_CUDAEMU_ORDER, until the scope ends.
class ScopedOrder {
 public:
  explicit ScopedOrder(const char* order);
  ~ScopedOrder();
  ScopedOrder(const ScopedOrder&) = delete;
  ScopedOrder& operator=(const ScopedOrder&) = delete;
};
}  // namespace cudaemu
