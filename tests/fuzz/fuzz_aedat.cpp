// libFuzzer target: the AEDAT 2.0 reader of CIFAR10-DVS (datasets/aedat.h) and the frame integration behind it
// (datasets/event_frames.h). The input is written as an .aedat file and read with read_aedat2; what loads is
// integrated into T = 3 frames by number and by time and resized to 48x48. Every event must land in exactly one
// frame (the frame counts sum to the number of events) and every coordinate must be inside the 128x128 sensor.
#include <cmath>
#include <vector>

#include "datasets/aedat.h"
#include "datasets/event_frames.h"
#include "engine/check.h"
#include "fuzz_util.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "\n==FUZZ== aedat: %s\n", what);
  std::abort();
}

void check_events(const spikegrad::DvsEvents& e) {
  if (e.x.size() != e.size() || e.y.size() != e.size() || e.p.size() != e.size()) finding("event arrays differ in length");
  for (size_t i = 0; i < e.size(); ++i)
    if (e.x[i] > 127 || e.y[i] > 127 || e.p[i] > 1) finding("an event outside the 128x128 sensor or polarity 0/1");
  constexpr int64_t kT = 3;
  std::vector<float> frames(size_t(kT * 2 * 128 * 128)), small(size_t(kT * 2 * 48 * 48));
  for (const spikegrad::SplitBy by : {spikegrad::SplitBy::Number, spikegrad::SplitBy::Time}) {
    spikegrad::integrate_events(e, kT, by, frames.data());
    double total = 0;
    for (const float v : frames) total += v;
    if (total != double(e.size())) finding("frame counts do not sum to the number of events");
    spikegrad::area_resize(frames.data(), kT * 2, 128, 128, small.data(), 48, 48);
    for (const float v : small)
      if (!std::isfinite(v) || v < 0.f) finding("a resized frame value is negative or not finite");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("input.aedat", data, size);
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("aedat", check_events(spikegrad::read_aedat2(path)));
  return 0;
}
