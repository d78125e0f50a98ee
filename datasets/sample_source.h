// Samples produced on demand, for datasets that are not held in memory as uint8 (N,C,H,W) images:
// JPEG folders (Tiny-ImageNet, ImageNet: decoded and transformed per sample) and event datasets
// (CIFAR10-DVS: frames read from the cache file). A Dataset either owns in-memory images or refers to a
// SampleSource; labels are always in memory (datasets/dataset.h).
//
// Contract:
//   - load() is called concurrently from the loader's worker threads: it must be thread-safe and must
//     not keep per-call state in the object (open files per call, or pread on a shared descriptor).
//   - The result is a pure function of (index, mode, the counters drawn from `gen`): the loader positions
//     `gen` at the sample's own counters, so output does not depend on thread count or batch order.
//     A sample draws at most draws_per_sample() counters (the loader reserves that many per sample).
//   - Errors (unreadable file, corrupt data) throw spikegrad::Error naming the file and what was expected.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"

namespace spikegrad {

// The shape of one sample as load() writes it.
struct SampleLayout {
  int64_t time_steps = 0;  // 0: a static image (C,H,W); T >= 1: T frames (T,C,H,W), time-major within the sample
  int64_t channels = 0, height = 0, width = 0;
  int64_t numel() const { return (time_steps > 0 ? time_steps : 1) * channels * height * width; }
};

enum class SampleMode { Train, Evaluate };  // Train applies the training augmentation, Evaluate the fixed transform

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;
  virtual SampleLayout layout() const = 0;
  virtual uint64_t draws_per_sample() const = 0;
  // Writes sample `index` (in [0, size())) as float32 of layout().numel() values into dst: images in [0,1]
  // (pixel / 255), frames in the units the source documents (e.g. event counts after resizing).
  virtual void load(int64_t index, SampleMode mode, Generator& gen, float* dst) const = 0;
  // What to name in an error about sample `index` (its file path, or the cache file and index).
  virtual std::string describe(int64_t index) const = 0;
  // Samples left out when the source was built (e.g. corrupt files under skip_corrupt), one "what: why" each,
  // so the caller can report the count: a source never drops samples silently.
  virtual std::vector<std::string> skipped_files() const { return {}; }
};

}  // namespace spikegrad
