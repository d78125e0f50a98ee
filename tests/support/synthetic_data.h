// Shared scaffolding of the CLI/trainer tests: a small Fashion-MNIST-layout dataset written by the test,
// a per-test scratch folder, and readers for the text files a run writes.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/options.h"

namespace spikegrad::testing {

// IDX files `<prefix>-images-idx3-ubyte` / `<prefix>-labels-idx1-ubyte` of n size x size images: class c is a
// bright 8x8 square at one of 10 positions on dim noise (learnable in an epoch), clipped to the image.
void write_synthetic_idx(const std::filesystem::path& dir, const std::string& prefix, int n, uint64_t seed,
                         int size = 28);

// TempDir()/<stem>_<pid> with `train` and `t10k` synthetic splits: one dataset per test process.
std::filesystem::path write_synthetic_dataset(const std::string& stem, int train, int test);

// A small CPU training run on `data` writing `runs/run`: 2 epochs, T = 2, batch 32, lr 5e-3, no progress.
app::RunConfig small_run_config(const std::filesystem::path& data, const std::filesystem::path& runs, int64_t val_size,
                                int64_t attack_subset, int64_t eval_batch);

// TempDir()/<stem>_<test name>_<pid>, emptied: the pid keeps two processes running the same test (the
// emulated tree runs each under two thread orders at once) apart.
std::filesystem::path fresh_test_dir(const std::string& stem);

// Two run folders hold the same results: every metrics.csv cell but the three timing columns, and
// byte-identical last.safetensors tensors (gtest expectations).
void expect_same_run_results(const std::filesystem::path& a, const std::filesystem::path& b);

std::string read_text(const std::filesystem::path& p);
std::vector<std::string> read_lines(const std::filesystem::path& p);
std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& p);

}  // namespace spikegrad::testing
