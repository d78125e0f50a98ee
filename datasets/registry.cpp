#include "datasets/registry.h"

#include "datasets/cifar.h"
#include "datasets/idx.h"

namespace spikegrad {
namespace {

struct DatasetEntry {
  const char* name;
  const char* default_dir;
  Dataset (*load)(const std::string& dir, Split split, const DatasetOptions& options);
};

// Adapters to the entry signature; the in-memory readers take no options.
Dataset load_fashion_mnist_entry(const std::string& dir, Split split, const DatasetOptions&) {
  return load_fashion_mnist(dir, split);
}
Dataset load_mnist_entry(const std::string& dir, Split split, const DatasetOptions&) { return load_mnist(dir, split); }
Dataset load_cifar10_entry(const std::string& dir, Split split, const DatasetOptions&) {
  return load_cifar10(dir, split);
}
Dataset load_cifar100_entry(const std::string& dir, Split split, const DatasetOptions&) {
  return load_cifar100(dir, split);
}
Dataset load_tiny_imagenet_entry(const std::string& dir, Split split, const DatasetOptions& o) {
  return load_tiny_imagenet(dir, split, o.jpeg);
}
Dataset load_imagenet_entry(const std::string& dir, Split split, const DatasetOptions& o) {
  return load_imagenet(dir, split, o.jpeg);
}
// Frames in [0,1] with frame_norm max; no normalisation constants (mean 0, std 1), as TET/TMI feed them.
Dataset load_cifar10_dvs_entry(const std::string& dir, Split split, const DatasetOptions& o) {
  DvsSplitData data = load_cifar10_dvs(dir, split, o.dvs);
  Dataset d;
  d.name = "cifar10-dvs";
  d.labels = data.labels;
  d.num_classes = data.num_classes;
  d.source = std::move(data.source);
  d.load_note = data.description;
  return d;
}

const std::vector<DatasetEntry>& entries() {
  static const std::vector<DatasetEntry> table = {
      {"fashion-mnist", "/usr/share/datasets/fashion-mnist", load_fashion_mnist_entry},
      {"mnist", "data/mnist", load_mnist_entry},
      {"cifar10", "data/cifar-10-batches-bin", load_cifar10_entry},
      {"cifar100", "data/cifar-100-binary", load_cifar100_entry},
      {"tiny-imagenet", "data/tiny-imagenet-200", load_tiny_imagenet_entry},
      {"imagenet", "data/imagenet", load_imagenet_entry},
      {"cifar10-dvs", "data/CIFAR10-DVS", load_cifar10_dvs_entry},
  };
  return table;
}

const DatasetEntry& find_entry(const std::string& name) {
  for (const DatasetEntry& e : entries())
    if (name == e.name) return e;
  std::string known;
  for (const DatasetEntry& e : entries()) known += (known.empty() ? "" : "|") + std::string(e.name);
  SG_FAIL("dataset: unknown name '" << name << "', expected one of " << known);
}

}  // namespace

const std::vector<std::string>& known_dataset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const DatasetEntry& e : entries()) out.push_back(e.name);
    return out;
  }();
  return names;
}

std::string default_dataset_dir(const std::string& name) { return find_entry(name).default_dir; }

Dataset load_dataset(const std::string& name, const std::string& dir, Split split) {
  return load_dataset(name, dir, split, DatasetOptions{});
}

Dataset load_dataset(const std::string& name, const std::string& dir, Split split, const DatasetOptions& options) {
  const DatasetEntry& entry = find_entry(name);
  return entry.load(dir.empty() ? std::string(entry.default_dir) : dir, split, options);
}

}  // namespace spikegrad
