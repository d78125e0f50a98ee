// libFuzzer target: the safetensors reader (engine/safetensors.h), load_safetensors() on the input as a file.
// A file that loads is also saved and loaded again: the round trip must succeed and give back the same names,
// dtypes, shapes, bytes and metadata (a mismatch or an error there is a finding).
#include <cstring>

#include "engine/check.h"
#include "engine/safetensors.h"
#include "fuzz_util.h"

namespace {

void check_same(const spikegrad::SafetensorsFile& a, const spikegrad::SafetensorsFile& b) {
  bool same = a.tensors.size() == b.tensors.size() && a.metadata == b.metadata;
  for (size_t i = 0; same && i < a.tensors.size(); ++i) {
    const spikegrad::Tensor& x = a.tensors[i].tensor;
    const spikegrad::Tensor& y = b.tensors[i].tensor;
    same = a.tensors[i].name == b.tensors[i].name && x.dtype() == y.dtype() && x.shape() == y.shape() &&
           x.nbytes() == y.nbytes() && (x.nbytes() == 0 || std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0);
  }
  if (!same) {
    std::fprintf(stderr, "\n==FUZZ== safetensors: save(load(input)) does not load back to the same tensors\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("input.safetensors", data, size);
  spikegrad::SafetensorsFile file;
  bool loaded = false;
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("safetensors", {
    file = spikegrad::load_safetensors(path);
    loaded = true;
  });
  if (!loaded) return 0;
  // What was accepted must round-trip: any exception here is a finding.
  try {
    const std::string again = fuzz::temp_dir() + "/roundtrip.safetensors";
    spikegrad::save_safetensors(again, file.tensors, file.metadata);
    check_same(file, spikegrad::load_safetensors(again));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\n==FUZZ== safetensors: the round trip of an accepted file failed\n");
    fuzz::unexpected("safetensors", &e);
  }
  return 0;
}
