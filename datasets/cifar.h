// CIFAR-10 / CIFAR-100 in the official binary format (the "binary version" tarballs, extracted).
//
// CIFAR-10 (`cifar-10-batches-bin/`): data_batch_1..5.bin (train) and test_batch.bin, each a run of
// 3073-byte records: 1 label byte (0..9), then 3072 pixel bytes, channel-planar R, G, B, each 32x32
// row-major. CIFAR-100 (`cifar-100-binary/`): train.bin and test.bin, 3074-byte records: coarse label
// (0..19), fine label (0..99), then the same 3072 pixel bytes. Fine labels are the default (the
// papers train on the 100 fine classes).
//
// A file must exist and be a non-empty exact multiple of the record size; every label must be in
// range. Errors name the file and what was expected versus found. Normalisation constants are those
// of spec/reference.md §4.3.
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace spikegrad {

enum class Cifar100Labels { Fine, Coarse };

Dataset load_cifar10(const std::string& dir, Split split);
Dataset load_cifar100(const std::string& dir, Split split, Cifar100Labels labels = Cifar100Labels::Fine);

// The file names each split reads, in order (exposed so tests and error messages agree on them).
std::vector<std::string> cifar10_files(Split split);
std::vector<std::string> cifar100_files(Split split);

}  // namespace spikegrad
