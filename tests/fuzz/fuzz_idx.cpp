// libFuzzer target: the IDX reader (datasets/idx.h), read_idx_images() and read_idx_labels() on the input as a
// file (plain or gzip-compressed: zlib reads both). What read_idx_images accepts must be (N,1,H,W) uint8 with
// exactly the header's payload; read_idx_labels' labels must lie in [0, 10).
#include "datasets/idx.h"
#include "engine/check.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("input-idx-ubyte", data, size);
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("idx", {
    const spikegrad::Tensor images = spikegrad::read_idx_images(path);
    if (images.ndim() != 4 || images.shape()[1] != 1 || images.dtype() != spikegrad::DType::U8) {
      std::fprintf(stderr, "\n==FUZZ== idx: read_idx_images returned a tensor that is not (N,1,H,W) uint8\n");
      std::abort();
    }
  });
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("idx", {
    const spikegrad::Tensor labels = spikegrad::read_idx_labels(path, 10);
    if (labels.ndim() != 1 || labels.dtype() != spikegrad::DType::I32) {
      std::fprintf(stderr, "\n==FUZZ== idx: read_idx_labels returned a tensor that is not (N) int32\n");
      std::abort();
    }
    for (const int32_t v : labels.to_vector<int32_t>())
      if (v < 0 || v >= 10) {
        std::fprintf(stderr, "\n==FUZZ== idx: read_idx_labels accepted label %d outside [0, 10)\n", int(v));
        std::abort();
      }
  });
  return 0;
}
