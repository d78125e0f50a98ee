// An image-classification dataset as every reader returns it: int32 labels, the per-channel constants of
// the model's first op (normalisation is part of the model, so attacks work in [0,1] pixel space and the
// loader never normalises), and the samples in one of two forms:
//   - in memory: raw uint8 (N,C,H,W) pixels (IDX, CIFAR);
//   - lazy: a shared SampleSource (datasets/sample_source.h) that produces sample `source_index(k)` on demand
//     (JPEG folders, event streams), plus an index map, so that select_samples and the validation split compose
//     index maps instead of copying samples. Labels are in memory for both forms, one per dataset row.
// A lazy sample may be a sequence of frames (layout().time_steps > 0); the loader then batches it (B,T,C,H,W).
//
// Also here: the train/test split selector and the seeded train/validation split. The best
// checkpoint is chosen on the validation split, never on the test set (spec/pitfalls.md item 12).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/sample_source.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace spikegrad {

struct Dataset {
  std::string name;  // registry name: "fashion-mnist", "mnist", "cifar10", "cifar100", "tiny-imagenet", ...
  Tensor images;     // in memory: uint8 (N,C,H,W) on the CPU, channel-planar, values 0..255; lazy: undefined
  Tensor labels;     // int32 (N) on the CPU, each in [0, num_classes)
  int64_t num_classes = 0;
  // Normalisation constants of the first C channels, in [0,1] pixel units: x' = (x - mean[c]) / std[c].
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
  // Lazy datasets only: row k is sample source_index(k) of `source`. A null `source_indices` is the identity
  // (row k = source sample k); shared and immutable, so copying a Dataset of ImageNet's size costs nothing.
  std::shared_ptr<const SampleSource> source;
  std::shared_ptr<const std::vector<int64_t>> source_indices;
  // One line on how the data was read (e.g. CIFAR10-DVS: split, cache built or loaded, event statistics), for
  // the CLI to print; empty when there is nothing to say.
  std::string load_note;

  bool lazy() const { return source != nullptr; }
  int64_t size() const {
    if (lazy()) return labels.defined() ? labels.size(0) : 0;
    return images.defined() ? images.size(0) : 0;
  }
  // The shape of one sample: {0, C, H, W} in memory; the source's layout for a lazy dataset.
  SampleLayout sample_layout() const;
  int64_t channels() const { return sample_layout().channels; }
  int64_t height() const { return sample_layout().height; }
  int64_t width() const { return sample_layout().width; }
  int64_t source_index(int64_t row) const { return source_indices ? (*source_indices)[size_t(row)] : row; }
};

enum class Split { Train, Test };
Split parse_split(const std::string& name);  // "train" | "test"; anything else throws, listing both
const char* split_name(Split split);

// Throws unless the dataset is well formed: either images uint8 4-D on the CPU with 1..3 channels, or a
// source (never both) whose layout has 1..3 channels, non-empty H,W, T >= 0, with an index map (if any) of one
// entry per label, each in [0, source size) (without a map: as many labels as source samples); labels int32 (N)
// on the CPU, every label in [0, num_classes), std > 0. `context` prefixes the message.
void check_dataset(const Dataset& dataset, const std::string& context);

// The samples at `indices` (each in [0, N), repeats allowed), in that order; same name and constants. In memory
// the pixels are copied; a lazy result shares the source and composes the index map.
Dataset select_samples(const Dataset& dataset, const std::vector<int64_t>& indices);

// Seeded draws shared by the validation split, the loader's shuffle and augmentation.
// derive_seed mixes a base seed with labels (epoch, purpose tag) into an independent Philox key, so each
// (seed, epoch, purpose) has its own stream that can be re-created without replaying earlier ones.
uint64_t derive_seed(uint64_t base_seed, uint64_t a, uint64_t b);
// Uniform integer in [0, n), n in [1, 2^32], from one counter (multiply-shift: bias below n / 2^32,
// which is < 1e-3 even for ImageNet-sized n; one counter per draw keeps draws at fixed offsets).
int64_t uniform_below(Generator& gen, int64_t n);
// Fisher-Yates permutation of 0..n-1 using n-1 draws of gen.
std::vector<int64_t> random_permutation(int64_t n, Generator& gen);

struct TrainValidationSplit {
  Dataset train;
  Dataset validation;
};

// Holds out `validation_size` samples chosen by a seeded random permutation; both parts keep the
// original sample order. validation_size 0 gives an empty validation set; it must be < N so that
// some training data remains. Same (dataset, size, seed) -> same split, on any machine.
TrainValidationSplit split_train_validation(const Dataset& dataset, int64_t validation_size, uint64_t seed);

}  // namespace spikegrad
