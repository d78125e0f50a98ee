#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

// The file format is little-endian and tensors are written straight from memory; every host spikegrad
// targets (x86-64, aarch64 next to a GPU) is little-endian, so refusing to build elsewhere is simpler
// than byte-swapping paths nobody would test.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace spikegrad {
namespace {

using Json = nlohmann::json;

const char* file_dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
    case DType::U8:
      return "U8";
  }
  return "?";
}

bool parse_file_dtype(const std::string& s, DType* out) {
  for (DType t : {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8}) {
    if (s == file_dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// ---------------------------------------------------------------------------------------------------
// Writing

// A temporary file beside the destination. Unless commit() succeeds, the destructor closes and removes
// it, so every failure path (including exceptions from CUDA copies) cleans up the same way.
class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path) : path_(path) {
    // pid + a process-wide counter: concurrent saves (other processes, other threads) never share a temp.
    static std::atomic<uint64_t> counter{0};
    tmp_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    SG_CHECK(fd_ >= 0, "save_safetensors: cannot create the temporary file '" << tmp_ << "' for '" << path_
                                                                              << "': " << std::strerror(errno));
  }
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!renamed_) ::unlink(tmp_.c_str());
  }

  void write_all(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      // Chunks below 1 GiB: Linux transfers at most ~2 GiB per write() call anyway.
      const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t(1) << 30));
      if (w < 0 && errno == EINTR) continue;
      // A short write is retried; the retry reports the real cause (ENOSPC, EFBIG, EIO).
      SG_CHECK(w > 0, "save_safetensors: writing '"
                          << path_ << "' failed: " << (w < 0 ? std::strerror(errno) : "write returned 0 bytes"));
      p += w;
      n -= size_t(w);
    }
  }

  // fsync before rename so the new name never points at unwritten blocks after a power loss; fsync the
  // directory after it so the rename itself is durable.
  void commit() {
    SG_CHECK(::fsync(fd_) == 0, "save_safetensors: syncing '" << path_ << "' failed: " << std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    SG_CHECK(::close(fd) == 0, "save_safetensors: closing '" << path_ << "' failed: " << std::strerror(errno));
    SG_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0,
             "save_safetensors: renaming '" << tmp_ << "' to '" << path_ << "' failed: " << std::strerror(errno));
    renamed_ = true;
    const std::string dir = directory_of(path_);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    SG_CHECK(dfd >= 0, "save_safetensors: '" << path_ << "' was written but its directory '" << dir
                                             << "' could not be opened to sync it: " << std::strerror(errno));
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    // Some file systems cannot sync a directory (EINVAL); the data itself is already synced there.
    SG_CHECK(rc == 0 || err == EINVAL, "save_safetensors: '" << path_ << "' was written but syncing its directory '"
                                                             << dir << "' failed: " << std::strerror(err));
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool renamed_ = false;
};

std::string build_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the entries in data order, which makes the file easy to read by eye.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const NamedTensor& nt : tensors) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = file_dtype_name(nt.tensor.dtype());
    entry["shape"] = nt.tensor.shape();
    entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + nt.tensor.nbytes()});
    header[nt.name] = entry;
    offset += nt.tensor.nbytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    SG_FAIL("save_safetensors: a tensor name or metadata string is not valid UTF-8: " << e.what());
  }
  // Pad with spaces (JSON whitespace) so the data buffer starts 8-byte aligned in the file, which lets
  // readers that map the file use the tensors in place.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// ---------------------------------------------------------------------------------------------------
// Reading

class InputFile {
 public:
  InputFile(const std::string& path, const std::string& where) : where_(where) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    SG_CHECK(fd_ >= 0, where_ << ": cannot open: " << std::strerror(errno));
    struct stat st {};
    SG_CHECK(::fstat(fd_, &st) == 0, where_ << ": cannot stat: " << std::strerror(errno));
    SG_CHECK(S_ISREG(st.st_mode), where_ << ": not a regular file");
    size_ = uint64_t(st.st_size);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(fd_); }

  uint64_t size() const { return size_; }

  void read_exact(uint64_t offset, void* dst, uint64_t n, const std::string& what) {
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      const ssize_t r = ::pread(fd_, p, std::min<uint64_t>(n, uint64_t(1) << 30), off_t(offset));
      if (r < 0 && errno == EINTR) continue;
      SG_CHECK(r >= 0, where_ << ": reading " << what << " failed: " << std::strerror(errno));
      // Sizes were checked against fstat, so running out means the file shrank while being read.
      SG_CHECK(r > 0, where_ << ": unexpected end of file while reading " << what << " at byte " << offset);
      p += r;
      n -= uint64_t(r);
      offset += uint64_t(r);
    }
  }

 private:
  std::string where_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

struct Entry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// A valid header nests three levels ({ entry { shape [ ). nlohmann's DOM builder, dump() and the error
// messages below recurse or keep a stack per level, so a hostile header of millions of '[' would exhaust
// memory or the call stack; the nesting is bounded by a linear scan before parsing.
void check_nesting(const std::string& text, const std::string& where) {
  constexpr int kMaxDepth = 16;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      SG_CHECK(++depth <= kMaxDepth, where << ": header nests JSON deeper than " << kMaxDepth << " levels");
    } else if (c == '}' || c == ']') {
      --depth;  // unbalanced brackets are left to the parser to report
    }
  }
}

Json parse_header(const std::string& text, const std::string& where) {
  check_nesting(text, where);
  // nlohmann keeps the last of duplicate keys silently; a checkpoint naming a tensor twice is corrupt,
  // so top-level keys are collected while parsing and a repeat is rejected.
  std::set<std::string> seen;
  std::string duplicate;
  const Json::parser_callback_t on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && duplicate.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!seen.insert(key).second) duplicate = key;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, on_event);
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for a number like 1e311
    SG_FAIL(where << ": header is not valid JSON: " << e.what());
  }
  SG_CHECK(header.is_object(), where << ": header must be a JSON object, got " << header.type_name());
  SG_CHECK(duplicate.empty(), where << ": entry '" << duplicate << "' appears more than once in the header");
  return header;
}

uint64_t read_unsigned(const Json& v, const std::string& at, const char* field) {
  SG_CHECK(v.is_number_unsigned(), at << ": " << field << " must hold non-negative integers, got " << v.dump());
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& name, const Json& value, uint64_t buffer_size, const std::string& where) {
  const std::string at = where + ": entry '" + name + "'";
  SG_CHECK(!name.empty(), where << ": an entry has an empty name");
  SG_CHECK(value.is_object(), at << ": expected an object with dtype, shape and data_offsets, got " << value.dump());
  for (const auto& field : value.items()) {
    const std::string& k = field.key();
    SG_CHECK(k == "dtype" || k == "shape" || k == "data_offsets",
             at << ": unknown field '" << k << "' (expected dtype, shape, data_offsets)");
  }
  SG_CHECK(value.contains("dtype") && value.contains("shape") && value.contains("data_offsets"),
           at << ": needs dtype, shape and data_offsets, got " << value.dump());

  Entry e;
  e.name = name;
  const Json& dtype = value["dtype"];
  SG_CHECK(dtype.is_string() && parse_file_dtype(dtype.get<std::string>(), &e.dtype),
           at << ": unsupported dtype " << dtype.dump() << " (spikegrad reads F32, F64, I32, I64, U8)");

  const Json& shape = value["shape"];
  SG_CHECK(shape.is_array(), at << ": shape must be an array, got " << shape.dump());
  // No real tensor comes near this; the bound keeps a hostile shape from being echoed into messages.
  constexpr size_t kMaxDims = 64;
  SG_CHECK(shape.size() <= kMaxDims, at << ": shape has " << shape.size() << " dimensions, more than " << kMaxDims);
  uint64_t numel = 1;
  for (const Json& d : shape) {
    const uint64_t dim = read_unsigned(d, at, "shape");
    SG_CHECK(dim <= uint64_t(std::numeric_limits<int64_t>::max()), at << ": shape " << shape.dump() << " is too large");
    SG_CHECK(dim == 0 || numel <= std::numeric_limits<uint64_t>::max() / dim,
             at << ": shape " << shape.dump() << " has more elements than fit in 64 bits");
    numel *= dim;
    e.shape.push_back(int64_t(dim));
  }
  const uint64_t elem = dtype_size(e.dtype);
  SG_CHECK(numel <= std::numeric_limits<uint64_t>::max() / elem,
           at << ": shape " << shape.dump() << " has more bytes than fit in 64 bits");
  const uint64_t bytes = numel * elem;

  const Json& offsets = value["data_offsets"];
  SG_CHECK(offsets.is_array() && offsets.size() == 2,
           at << ": data_offsets must be [begin, end], got " << offsets.dump());
  e.begin = read_unsigned(offsets[0], at, "data_offsets");
  e.end = read_unsigned(offsets[1], at, "data_offsets");
  SG_CHECK(e.begin <= e.end, at << ": data_offsets [" << e.begin << ", " << e.end << "] end before they begin");
  SG_CHECK(e.end <= buffer_size, at << ": data_offsets [" << e.begin << ", " << e.end << "] go past the end of the "
                                    << buffer_size << "-byte data buffer (truncated file?)");
  SG_CHECK(e.end - e.begin == bytes, at << ": " << dtype.get<std::string>() << " shape " << shape_str(e.shape)
                                        << " needs " << bytes << " bytes, but data_offsets [" << e.begin << ", "
                                        << e.end << "] hold " << (e.end - e.begin));
  return e;
}

// The format requires the entries to tile the buffer: no byte twice (aliasing would make a load
// silently share data) and no byte unowned (a sign of a corrupt or truncated header).
void check_tiling(std::vector<Entry>& entries, uint64_t buffer_size, const std::string& where) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    SG_CHECK(e.begin >= cursor, where << ": entry '" << e.name << "' (bytes [" << e.begin << ", " << e.end
                                      << ")) overlaps entry '" << previous->name << "' (bytes [" << previous->begin
                                      << ", " << previous->end << "))");
    SG_CHECK(e.begin == cursor, where << ": bytes [" << cursor << ", " << e.begin
                                      << ") of the data buffer belong to no tensor (gap before entry '" << e.name
                                      << "')");
    cursor = e.end;
    previous = &e;
  }
  SG_CHECK(cursor == buffer_size, where << ": bytes [" << cursor << ", " << buffer_size
                                        << ") at the end of the data buffer belong to no tensor");
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Validate everything before touching the file system, so a bad call cannot even create a temp file.
  std::set<std::string> names;
  for (const NamedTensor& nt : tensors) {
    SG_CHECK(!nt.name.empty(), "save_safetensors: '" << path << "': a tensor has an empty name");
    SG_CHECK(nt.name != "__metadata__",
             "save_safetensors: '" << path << "': '__metadata__' is reserved and cannot name a tensor");
    SG_CHECK(names.insert(nt.name).second,
             "save_safetensors: '" << path << "': duplicate tensor name '" << nt.name << "'");
    SG_CHECK(nt.tensor.defined(), "save_safetensors: '" << path << "': tensor '" << nt.name << "' is undefined");
  }
  const std::string header = build_header(tensors, metadata);

  AtomicWriter out(path);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(uint64_t(header.size()) >> (8 * i));
  out.write_all(length, sizeof length);
  out.write_all(header.data(), header.size());
  for (const NamedTensor& nt : tensors) {
    if (nt.tensor.nbytes() == 0) continue;
    // One tensor on the host at a time: saving a GPU model never needs a second full copy in RAM.
    const Tensor host = nt.tensor.to(Device::CPU);
    out.write_all(host.raw_data(), host.nbytes());
  }
  out.commit();
}

SafetensorsFile load_safetensors(const std::string& path, Device device) {
  const std::string where = "load_safetensors: '" + path + "'";
  InputFile in(path, where);
  const uint64_t file_size = in.size();
  SG_CHECK(file_size >= 8, where << ": file is " << file_size
                                 << " bytes, too short for the 8-byte header length of a safetensors file");
  unsigned char length[8];
  in.read_exact(0, length, 8, "the header length");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(length[i]) << (8 * i);
  SG_CHECK(header_len <= file_size - 8, where << ": header length " << header_len << " exceeds the " << (file_size - 8)
                                              << " bytes after the length field (truncated or not a safetensors file)");
  SG_CHECK(header_len <= kSafetensorsMaxHeaderBytes, where << ": header length " << header_len
                                                           << " exceeds the limit of " << kSafetensorsMaxHeaderBytes
                                                           << " bytes");
  std::string text(size_t(header_len), '\0');
  in.read_exact(8, text.data(), header_len, "the header");

  const Json header = parse_header(text, where);
  const uint64_t buffer_size = file_size - 8 - header_len;
  SafetensorsFile result;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      SG_CHECK(item.value().is_object(), where << ": __metadata__ must be an object, got " << item.value().dump());
      for (const auto& kv : item.value().items()) {
        SG_CHECK(kv.value().is_string(),
                 where << ": __metadata__ value of '" << kv.key() << "' must be a string, got " << kv.value().dump());
        result.metadata[kv.key()] = kv.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(item.key(), item.value(), buffer_size, where));
  }
  check_tiling(entries, buffer_size, where);

  const uint64_t data_start = 8 + header_len;
  for (const Entry& e : entries) {
    Tensor host = Tensor::empty(e.shape, e.dtype, Device::CPU);
    in.read_exact(data_start + e.begin, host.raw_data(), e.end - e.begin, "entry '" + e.name + "'");
    result.tensors.push_back({e.name, host.to(device)});
  }
  return result;
}

}  // namespace spikegrad
