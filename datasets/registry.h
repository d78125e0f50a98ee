// Datasets by name, for the trainer's --dataset flag.
//   fashion-mnist  IDX files, default dir /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
//   mnist          IDX files, default dir data/mnist
//   cifar10        binary version, default dir data/cifar-10-batches-bin (the extracted official tarball)
//   cifar100       binary version, fine labels, default dir data/cifar-100-binary
//   tiny-imagenet  JPEG folders, default dir data/tiny-imagenet-200 (the extracted official zip); decoded on demand
//   imagenet       JPEG folders (ILSVRC-2012 train/ and val/), default dir data/imagenet; decoded on demand
//   cifar10-dvs    AEDAT 2.0 event files -> T frames (cached once), default dir data/CIFAR10-DVS; samples (T,2,S,S)
// The JPEG datasets' layouts, transforms and errors: datasets/image_folder.h; CIFAR10-DVS: datasets/cifar10_dvs.h.
// Relative default dirs are relative to the working directory (the repository root in the scripts).
#pragma once
#include <string>
#include <vector>

#include "datasets/cifar10_dvs.h"
#include "datasets/dataset.h"
#include "datasets/image_folder.h"

namespace spikegrad {

// Per-family reader options; each reader reads only its own member (a new family adds its struct here).
struct DatasetOptions {
  JpegDatasetOptions jpeg;  // tiny-imagenet, imagenet
  DvsOptions dvs;           // cifar10-dvs
};

const std::vector<std::string>& known_dataset_names();
// Throws for an unknown name, listing the known ones.
std::string default_dataset_dir(const std::string& name);
// An empty `dir` means default_dataset_dir(name).
Dataset load_dataset(const std::string& name, const std::string& dir, Split split);
Dataset load_dataset(const std::string& name, const std::string& dir, Split split, const DatasetOptions& options);

}  // namespace spikegrad
