// Datasets by name, for the trainer's --dataset flag.
//   fashion-mnist  IDX files, default dir /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
//   mnist          IDX files, default dir data/mnist
//   cifar10        binary version, default dir data/cifar-10-batches-bin (the extracted official tarball)
//   cifar100       binary version, fine labels, default dir data/cifar-100-binary
// Relative default dirs are relative to the working directory (the repository root in the scripts).
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace spikegrad {

const std::vector<std::string>& known_dataset_names();
// Throws for an unknown name, listing the known ones.
std::string default_dataset_dir(const std::string& name);
// An empty `dir` means default_dataset_dir(name).
Dataset load_dataset(const std::string& name, const std::string& dir, Split split);

}  // namespace spikegrad
