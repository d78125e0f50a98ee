// An in-memory image-classification dataset as every reader returns it: raw uint8 pixels, int32
// labels and the per-channel constants of the model's first op (normalisation is part of the model,
// so attacks work in [0,1] pixel space and the loader never normalises).
//
// Also here: the train/test split selector and the seeded train/validation split. The best
// checkpoint is chosen on the validation split, never on the test set (spec/pitfalls.md item 12).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace spikegrad {

struct Dataset {
  std::string name;  // registry name: "fashion-mnist", "mnist", "cifar10", "cifar100"
  Tensor images;     // uint8 (N,C,H,W) on the CPU, channel-planar, values 0..255
  Tensor labels;     // int32 (N) on the CPU, each in [0, num_classes)
  int64_t num_classes = 0;
  // Normalisation constants of the first C channels, in [0,1] pixel units: x' = (x - mean[c]) / std[c].
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

enum class Split { Train, Test };
Split parse_split(const std::string& name);  // "train" | "test"; anything else throws, listing both
const char* split_name(Split split);

// Throws unless the dataset is well formed: images uint8 4-D on the CPU with 1..3 channels, labels
// int32 (N) on the CPU, every label in [0, num_classes), std > 0. `context` prefixes the message.
void check_dataset(const Dataset& dataset, const std::string& context);

// The samples at `indices` (each in [0, N), repeats allowed), in that order; same name and constants.
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
