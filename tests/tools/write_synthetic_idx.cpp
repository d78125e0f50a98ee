// write_synthetic_idx DIR [TRAIN_N] [TEST_N] [SIZE]: a small learnable Fashion-MNIST-layout dataset in DIR
// (train-*-idx?-ubyte and t10k-*-idx?-ubyte), the one the CLI/trainer tests use (tests/support/synthetic_data.h).
// For scripts that drive the real spikegrad binary (scripts/reliability.sh) without Python or a downloaded
// dataset. Seeds 1 (train) and 2 (test) as in write_synthetic_dataset, so the data is the same every time.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "support/synthetic_data.h"

namespace {

// A positive count or size, or exit 2 naming the argument.
int positive(const char* text, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v <= 0 || v > 10000000) {
    std::fprintf(stderr, "write_synthetic_idx: %s '%s' must be a positive integer\n", what, text);
    std::exit(2);
  }
  return int(v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5) {
    std::fprintf(stderr, "usage: %s DIR [TRAIN_N=512] [TEST_N=128] [SIZE=28]\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const int train = argc > 2 ? positive(argv[2], "TRAIN_N") : 512;
  const int test = argc > 3 ? positive(argv[3], "TEST_N") : 128;
  const int size = argc > 4 ? positive(argv[4], "SIZE") : 28;
  try {
    std::filesystem::create_directories(dir);
    spikegrad::testing::write_synthetic_idx(dir, "train", train, 1, size);
    spikegrad::testing::write_synthetic_idx(dir, "t10k", test, 2, size);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_synthetic_idx: %s\n", e.what());
    return 2;
  }
  // The writer uses std::ofstream without checks: make a short file (disk full) an error here.
  std::error_code ec;
  const auto img = std::filesystem::file_size(dir / "train-images-idx3-ubyte", ec);
  if (ec || img != 16 + uint64_t(train) * uint64_t(size) * uint64_t(size)) {
    std::fprintf(stderr, "write_synthetic_idx: %s/train-images-idx3-ubyte is incomplete\n", dir.c_str());
    return 2;
  }
  std::printf("%s: %d train, %d test images of %dx%d\n", dir.c_str(), train, test, size, size);
  return 0;
}
