// safetensors I/O: the checkpoint format shared with PyTorch (the `safetensors` package).
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
//   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// then the data buffer: offsets are relative to its start, values little-endian and row-major.
// spikegrad reads and writes the dtypes it has: F32, F64, I32, I64, U8.
//
// Writing is atomic: a crash or a full disk never leaves a half-written checkpoint where the previous
// good one was. Reading trusts nothing in the file: every size is checked against the file before any
// allocation, and the entries must tile the buffer exactly, as the format requires.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "engine/named_tensor.h"

namespace spikegrad {

// Headers beyond this are refused before allocation: real checkpoints have headers of kilobytes, and a
// hostile length field must not make the loader allocate gigabytes.
constexpr uint64_t kSafetensorsMaxHeaderBytes = uint64_t(100) << 20;

struct SafetensorsFile {
  NamedTensors tensors;                         // in file-offset order
  std::map<std::string, std::string> metadata;  // the "__metadata__" object (string values only)
};

// Writes `tensors` (data in the given order, without gaps) and `metadata` to `path`. Names must be
// unique, non-empty and not "__metadata__". CUDA tensors are copied to the host one at a time. The file
// is written to a temporary beside `path`, synced, then renamed over it; on any failure the temporary
// is removed, a previous file at `path` is left untouched, and the error names the path and the OS error.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads `path`, validating the header completely before reading data, and moves the tensors to `device`.
// Every error names the file and, where there is one, the entry.
SafetensorsFile load_safetensors(const std::string& path, Device device = Device::CPU);

}  // namespace spikegrad
