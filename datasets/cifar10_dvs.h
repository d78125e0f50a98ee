// CIFAR10-DVS (Li et al. 2017): 10 classes x 1000 AEDAT 2.0 recordings of CIFAR-10 images moved in front of a
// DVS128 sensor, read as T event-count frames (T, 2, H, W) of 48 x 48 by default (spec/pitfalls.md 14-16;
// docs/datasets.md says the same for users).
//
// Folder: the original download, extracted: <dir>/<class>/*.aedat for the classes airplane, automobile, bird,
// cat, deer, dog, frog, horse, ship, truck (label = this order). Within a class, files are ordered by the
// number that ends their name (cifar10_airplane_0.aedat ... cifar10_airplane_999.aedat), not
// lexicographically; that order is the dataset's order (class-major). A missing or empty class folder, a
// file name without a trailing _<number>, or two files with one number is an Error naming it.
//
// Events -> frames: datasets/aedat.h (reader, orientation/polarity convention, timestamp unwrap) and
// datasets/event_frames.h (split_by number|time, area resize, augmentation).
//
// Splits (there is no official one; each scheme's counts scale with the files found, rounded to nearest):
//   random-9000-1000    RGA: a seeded random permutation of all samples, the first 90% train, the rest test.
//                       The permutation is Philox Fisher-Yates (datasets/dataset.h random_permutation with the
//                       key derive_seed(split_seed, 'DVSS', 0)); it cannot reproduce torch.random_split's indices.
//   per-class-700-300   TET: in each class the first 70% (700 of 1000) train, the rest test.
//   per-class-100-test  TEBN: in each class the first 10% (files 0-99 of 1000) test, the rest train. Scores on
//                       this split run much higher than on the others; compare like with like.
//   per-class-90-10     SpikingJelly's split_to_train_test_set(0.9, random_split=False): first 90% train.
// Default random-9000-1000 (seed 42): the TMI paper follows TET/RGA's protocol and RGA states this split.
// Both parts keep the dataset order; the loader shuffles.
//
// Frame cache: the frames of all samples (every split shares one cache) are computed once, in parallel over
// files, into <cache_dir>/cifar10-dvs_T<T>_<split_by>_<S>x<S>.safetensors (cache_dir defaults to
// <dir>/frames_cache; "_none" is appended for frame_norm none) with tensors frames F32 (N,T,2,S,S), labels I32 (N), file_index I64 (N) (the number in
// the file name), event_counts I64 (N), and metadata recording the conventions (see docs/datasets.md) and a
// fingerprint of the source file list (class, name, size of each file). A cache whose conventions or
// fingerprint differ from the current ones is stale and is rebuilt in place (atomically); the description says
// so. A file at that path that cannot be read, is not such a cache, or holds tensors that disagree with its
// metadata is an Error naming it (delete it to rebuild): it is never overwritten silently.
//
// Memory: a split's source holds its frames, n * T * 2 * S * S * 4 bytes (the 9000 train samples at T = 10,
// S = 48: 1.66 GB; all 10000: 1.84 GB). While loading, the whole cache is in memory once beside the split.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/sample_source.h"
#include "engine/tensor.h"

namespace spikegrad {

struct DvsOptions {
  int64_t time_steps = 10;                 // T frames per sample (TET and RGA use 10), 1..1000
  std::string split_by = "number";         // number | time (datasets/event_frames.h)
  int64_t frame_size = 48;                 // S: frames are resized 128x128 -> SxS (area), 1..128
  std::string frame_norm = "max";          // max: each frame / its maximum, values in [0,1] (TET's preprocessing,
                                           // read by TMI; attacks need [0,1]) | none: event counts
  std::string split = "random-9000-1000";  // a scheme of cifar10_dvs_split_schemes()
  uint64_t split_seed = 42;                // the random scheme's seed (RGA: 42)
  std::string cache_dir;                   // empty: <dir>/frames_cache
  bool augment = true;                     // TET's flip + roll on SampleMode::Train
  int64_t threads = 0;                     // cache building; 0: min(4, hardware threads)
};

const std::vector<std::string>& cifar10_dvs_classes();
const std::vector<std::string>& cifar10_dvs_split_schemes();

struct DvsFile {
  std::string path;
  int32_t label = 0;
  int64_t index = 0;  // the number that ends the file name
  uint64_t bytes = 0;
};

// Every sample file in dataset order (class-major, by number).
std::vector<DvsFile> scan_cifar10_dvs(const std::string& dir);

// Positions (into the scan order) of the samples of `split` under `scheme`, ascending.
std::vector<int64_t> cifar10_dvs_split_indices(const std::vector<DvsFile>& files, const std::string& scheme,
                                               uint64_t seed, Split split);

std::string cifar10_dvs_cache_path(const std::string& dir, const DvsOptions& options);

struct DvsSplitData {
  std::shared_ptr<const SampleSource> source;  // layout {T, 2, S, S}; frames per DvsOptions::frame_norm, area-resized
  Tensor labels;                               // int32 (N) on the cpu
  int64_t num_classes = 10;
  std::string description;  // one line: split, counts, conventions, cache path and whether it was built
};

// Scans `dir`, loads (or builds) the frame cache and returns the samples of `split`.
DvsSplitData load_cifar10_dvs(const std::string& dir, Split split, const DvsOptions& options);

}  // namespace spikegrad
