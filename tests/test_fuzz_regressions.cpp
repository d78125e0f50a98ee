// Regression inputs found by the fuzzing tier (scripts/fuzz.sh, tests/fuzz/): every file under
// tests/fuzz/regressions/<target>/ is given to the reader its target fuzzes, in the ordinary build. The reader
// may accept it or throw spikegrad::Error; any other exception (or a crash) fails. scripts/fuzz.sh also replays
// them under ASan + UBSan before each fuzzing run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "apps/cli.h"
#include "datasets/cifar.h"
#include "datasets/idx.h"
#include "engine/check.h"
#include "engine/safetensors.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kRegressions = fs::path(__FILE__).parent_path() / "fuzz" / "regressions";

std::vector<fs::path> inputs(const std::string& target) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(kRegressions / target, ec)) return out;
  for (const auto& entry : fs::directory_iterator(kRegressions / target))
    if (entry.is_regular_file()) out.push_back(entry.path());
  return out;
}

// Runs `read` on each input of `target`: success or spikegrad::Error, nothing else.
void replay(const std::string& target, const std::function<void(const fs::path&)>& read) {
  for (const fs::path& input : inputs(target)) {
    SCOPED_TRACE(input.string());
    try {
      read(input);
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "an exception other than spikegrad::Error escaped: " << e.what();
    }
  }
}

fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("spikegrad_fuzz_regressions_" + name + "_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir;
}

TEST(FuzzRegressions, Safetensors) {
  replay("safetensors", [](const fs::path& p) { load_safetensors(p.string()); });
}

TEST(FuzzRegressions, SafetensorsNumberOverflowIsAnError) {
  // nlohmann throws out_of_range, not parse_error, for a number beyond double (found by the fuzzer).
  const fs::path file = scratch_dir("overflow") / "overflow.safetensors";
  {
    std::ofstream out(file, std::ios::binary);
    const char header[] = "1e311";
    const uint64_t n = sizeof(header) - 1;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header, std::streamsize(n));
  }
  EXPECT_THROW(load_safetensors(file.string()), Error);
  fs::remove_all(file.parent_path());
}

TEST(FuzzRegressions, Idx) {
  replay("idx", [](const fs::path& p) { read_idx_images(p.string()); });
  replay("idx", [](const fs::path& p) { read_idx_labels(p.string(), 10); });
}

TEST(FuzzRegressions, Cifar) {
  const fs::path dir = scratch_dir("cifar");
  replay("cifar", [&](const fs::path& p) {
    fs::copy_file(p, dir / cifar10_files(Split::Test).front(), fs::copy_options::overwrite_existing);
    fs::copy_file(p, dir / cifar100_files(Split::Test).front(), fs::copy_options::overwrite_existing);
    try {
      load_cifar10(dir.string(), Split::Test);
    } catch (const Error&) {
    }
    load_cifar100(dir.string(), Split::Test);
  });
  fs::remove_all(dir);
}

TEST(FuzzRegressions, TomlConfig) {
  replay("toml_config", [](const fs::path& p) {
    const std::string path = p.string();
    const char* const argv[] = {"spikegrad", "--config", path.c_str(), "train"};
    app::CommandLine cl;
    const int code = app::parse_command_line(4, argv, &cl);
    EXPECT_TRUE(code == -1 || code == 0 || code == 2) << "parse_command_line returned " << code;
  });
}

}  // namespace
}  // namespace spikegrad::testing
