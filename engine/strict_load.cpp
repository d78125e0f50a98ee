#include "engine/strict_load.h"

#include <map>
#include <sstream>
#include <vector>

namespace spikegrad {
namespace {

// Name -> tensor, rejecting duplicates and undefined tensors: with two entries of one name it would be
// ambiguous which one a checkpoint restores.
std::map<std::string, const Tensor*> index_by_name(const NamedTensors& list, const std::string& what,
                                                   const char* side) {
  std::map<std::string, const Tensor*> index;
  for (const NamedTensor& nt : list) {
    SG_CHECK(index.emplace(nt.name, &nt.tensor).second,
             what << ": the " << side << " lists tensor '" << nt.name << "' more than once");
    SG_CHECK(nt.tensor.defined(), what << ": the " << side << " tensor '" << nt.name << "' is undefined");
  }
  return index;
}

void append_section(std::ostringstream& os, bool& first, const char* label, const std::vector<std::string>& items) {
  if (items.empty()) return;
  os << (first ? " " : "; ") << label << " [";
  for (size_t i = 0; i < items.size(); ++i) os << (i ? ", " : "") << items[i];
  os << "]";
  first = false;
}

}  // namespace

void strict_copy(const NamedTensors& destination, const NamedTensors& source, const std::string& what) {
  const auto dst = index_by_name(destination, what, "model");
  const auto src = index_by_name(source, what, "checkpoint");

  // Lists follow the order of the model (missing, mismatches) and of the checkpoint (unexpected), which is
  // the order a user reads them in their own code and in the file.
  std::vector<std::string> missing, unexpected, shape_mismatch, dtype_mismatch;
  for (const NamedTensor& d : destination) {
    const auto it = src.find(d.name);
    if (it == src.end()) {
      missing.push_back(d.name);
      continue;
    }
    const Tensor& s = *it->second;
    if (s.shape() != d.tensor.shape()) {
      shape_mismatch.push_back(d.name + ": expected " + shape_str(d.tensor.shape()) + ", got " + shape_str(s.shape()));
    }
    if (s.dtype() != d.tensor.dtype()) {
      dtype_mismatch.push_back(d.name + ": expected " + dtype_name(d.tensor.dtype()) + ", got " +
                               dtype_name(s.dtype()));
    }
  }
  for (const NamedTensor& s : source) {
    if (!dst.count(s.name)) unexpected.push_back(s.name);
  }

  if (!missing.empty() || !unexpected.empty() || !shape_mismatch.empty() || !dtype_mismatch.empty()) {
    std::ostringstream os;
    os << what << ": checkpoint does not match the model:";
    bool first = true;
    append_section(os, first, "missing", missing);
    append_section(os, first, "unexpected", unexpected);
    append_section(os, first, "shape mismatch", shape_mismatch);
    append_section(os, first, "dtype mismatch", dtype_mismatch);
    SG_FAIL(os.str());
  }
  for (const NamedTensor& d : destination) {
    Tensor target = d.tensor;  // shares storage: copying into it fills the model's tensor
    target.copy_from(*src.at(d.name));
  }
}

}  // namespace spikegrad
