// A check shared by the attack-command tests (needs the app library, unlike synthetic_data, which the
// write_synthetic_idx tool links too).
#pragma once
#include <cstdint>
#include <string>

namespace spikegrad::testing {

// Re-classifies every adversarial set of a `spikegrad attack --save-adv` file with the small_cnn of
// `checkpoint` (a small_run_config run: T = 2, Fashion-MNIST constants) and expects each set's correct count
// to equal the robust count its table row wrote into the metadata. `examples`: the expected label count.
// Returns how many sets were checked.
int expect_saved_adversarials_reproduce_table(const std::string& adv_path, const std::string& checkpoint,
                                              int64_t examples);

}  // namespace spikegrad::testing
