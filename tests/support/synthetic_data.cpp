#include "support/synthetic_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/rng.h"
#include "engine/safetensors.h"

namespace spikegrad::testing {

namespace fs = std::filesystem;

namespace {
void write_be32(std::ofstream& out, uint32_t v) {
  const unsigned char b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  out.write(reinterpret_cast<const char*>(b), 4);
}
}  // namespace

void write_synthetic_idx(const fs::path& dir, const std::string& prefix, int n, uint64_t seed, int size) {
  Generator gen(seed);
  std::ofstream img(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary),
      lab(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  write_be32(img, 0x803);
  write_be32(img, uint32_t(n));
  write_be32(img, uint32_t(size));
  write_be32(img, uint32_t(size));
  write_be32(lab, 0x801);
  write_be32(lab, uint32_t(n));
  for (int i = 0; i < n; ++i) {
    const int c = int(gen.next_u32() % 10);
    std::vector<uint8_t> px(size_t(size * size));
    for (auto& p : px) p = uint8_t(gen.next_u32() % 60);
    const int r0 = 2 + (c / 5) * 14, c0 = 1 + (c % 5) * 5;
    for (int r = r0; r < std::min(size, r0 + 8); ++r)
      for (int q = c0; q < std::min(size, c0 + 6); ++q) px[size_t(r * size + q)] = uint8_t(200 + gen.next_u32() % 55);
    img.write(reinterpret_cast<const char*>(px.data()), std::streamsize(px.size()));
    const char label = char(c);
    lab.write(&label, 1);
  }
}

fs::path write_synthetic_dataset(const std::string& stem, int train, int test) {
  const fs::path dir = fs::path(::testing::TempDir()) / (stem + "_" + std::to_string(getpid()));
  fs::create_directories(dir);
  write_synthetic_idx(dir, "train", train, 1);
  write_synthetic_idx(dir, "t10k", test, 2);
  return dir;
}

app::RunConfig small_run_config(const fs::path& data, const fs::path& runs, int64_t val_size, int64_t attack_subset,
                                int64_t eval_batch) {
  app::RunConfig c;
  c.data_dir = data.string();
  c.runs_dir = runs.string();
  c.device = "cpu";
  c.val_size = val_size;
  c.time_steps = 2;
  c.batch = 32;
  c.epochs = 2;
  c.lr = 5e-3;
  c.attack_subset = attack_subset;
  c.eval_batch = eval_batch;
  c.progress = false;
  c.name = "run";
  return c;
}

fs::path fresh_test_dir(const std::string& stem) {
  const fs::path dir = fs::path(::testing::TempDir()) /
                       (stem + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
                        std::to_string(getpid()));
  fs::remove_all(dir);
  return dir;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::vector<std::string>> read_csv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : read_lines(p)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();  // getline drops a trailing empty field
    rows.push_back(cells);
  }
  return rows;
}

void expect_same_run_results(const fs::path& a, const fs::path& b) {
  const auto ra = read_csv(a / "metrics.csv"), rb = read_csv(b / "metrics.csv");
  ASSERT_EQ(ra.size(), rb.size());
  const size_t timing_cols = 3;  // train_peak_mib, seconds, images_per_s: measurements of the process, not results
  for (size_t r = 0; r < ra.size(); ++r) {
    ASSERT_EQ(ra[r].size(), rb[r].size());
    for (size_t k = 0; k + timing_cols < ra[r].size(); ++k) EXPECT_EQ(ra[r][k], rb[r][k]) << "row " << r << " column " << k;
  }
  const SafetensorsFile fa = load_safetensors((a / "last.safetensors").string());
  const SafetensorsFile fb = load_safetensors((b / "last.safetensors").string());
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    EXPECT_EQ(fa.tensors[i].name, fb.tensors[i].name);
    EXPECT_EQ(0, std::memcmp(fa.tensors[i].tensor.raw_data(), fb.tensors[i].tensor.raw_data(), fa.tensors[i].tensor.nbytes()))
        << fa.tensors[i].name << " differs between " << a << " and " << b;
  }
}

}  // namespace spikegrad::testing
