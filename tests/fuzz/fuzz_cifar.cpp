// libFuzzer target: the CIFAR binary readers (datasets/cifar.h). The input is written as the test split of both
// CIFAR-10 (test_batch.bin, 3073-byte records) and CIFAR-100 (test.bin, 3074-byte records), and read with
// load_cifar10 and load_cifar100 (fine and coarse labels). What loads must have one label in range per record.
#include "datasets/cifar.h"
#include "engine/check.h"
#include "fuzz_util.h"

namespace {

void check_dataset(const spikegrad::Dataset& d, int64_t num_classes) {
  bool ok = d.images.ndim() == 4;
  const int64_t n = ok ? d.images.shape()[0] : 0;
  ok = ok && d.images.shape()[1] == 3 && d.images.shape()[2] == 32 && d.images.shape()[3] == 32 &&
            d.labels.ndim() == 1 && d.labels.shape()[0] == n && n >= 1 && d.num_classes == num_classes;
  if (ok)
    for (const int32_t v : d.labels.to_vector<int32_t>()) ok = ok && v >= 0 && v < num_classes;
  if (!ok) {
    std::fprintf(stderr, "\n==FUZZ== cifar: %s loaded with a wrong shape, class count or label\n", d.name.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = fuzz::temp_dir();
  fuzz::write_file(spikegrad::cifar10_files(spikegrad::Split::Test).front(), data, size);
  fuzz::write_file(spikegrad::cifar100_files(spikegrad::Split::Test).front(), data, size);
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("cifar", check_dataset(spikegrad::load_cifar10(dir, spikegrad::Split::Test), 10));
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR(
      "cifar", check_dataset(spikegrad::load_cifar100(dir, spikegrad::Split::Test, spikegrad::Cifar100Labels::Fine), 100));
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR(
      "cifar", check_dataset(spikegrad::load_cifar100(dir, spikegrad::Split::Test, spikegrad::Cifar100Labels::Coarse), 20));
  return 0;
}
