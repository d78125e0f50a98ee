#include "datasets/registry.h"

#include "datasets/cifar.h"
#include "datasets/idx.h"

namespace spikegrad {
namespace {

struct DatasetEntry {
  const char* name;
  const char* default_dir;
  Dataset (*load)(const std::string& dir, Split split);
};

Dataset load_cifar100_fine(const std::string& dir, Split split) { return load_cifar100(dir, split); }

const std::vector<DatasetEntry>& entries() {
  static const std::vector<DatasetEntry> table = {
      {"fashion-mnist", "/usr/share/datasets/fashion-mnist", load_fashion_mnist},
      {"mnist", "data/mnist", load_mnist},
      {"cifar10", "data/cifar-10-batches-bin", load_cifar10},
      {"cifar100", "data/cifar-100-binary", load_cifar100_fine},
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
  const DatasetEntry& entry = find_entry(name);
  return entry.load(dir.empty() ? std::string(entry.default_dir) : dir, split);
}

}  // namespace spikegrad
