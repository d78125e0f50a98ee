#include "datasets/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace spikegrad {
namespace {

namespace fs = std::filesystem;

// Deflate cannot expand data by more than 1032:1, so a header that promises more than that from the
// compressed file's size is rejected before allocating (a hostile header must not cost gigabytes).
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr int64_t kMaxIdxBytes = int64_t(1) << 40;

// A gzFile that closes itself; every read checks zlib's error state, so a corrupt stream can never
// pass as a short (or full) read.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    SG_CHECK(file_ != nullptr, "idx: cannot open '" << path << "': " << (errno ? std::strerror(errno) : "gzopen failed"));
    gzbuffer(file_, 1 << 18);  // fewer, larger file reads than zlib's 8 KiB default for the 26 MB train images
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many arrived before the end of the data. Throws on zlib errors,
  // including a gzip stream that ends mid-member (zlib reports it as Z_BUF_ERROR, not as an EOF).
  size_t read_up_to(void* dst, size_t n) {
    size_t got = 0;
    auto* p = static_cast<unsigned char*>(dst);
    while (got < n) {
      const unsigned chunk = unsigned(std::min<size_t>(n - got, size_t(1) << 30));
      const int r = gzread(file_, p + got, chunk);
      if (r < 0) {
        throw_if_error();
        SG_FAIL("idx: '" << path_ << "': gzread failed without a zlib error");
      }
      if (r == 0) break;
      got += size_t(r);
    }
    throw_if_error();
    return got;
  }

  // True when the data was read through zlib's transparent mode (a plain, uncompressed file).
  bool plain() { return gzdirect(file_) == 1; }

 private:
  void throw_if_error() {
    int code = Z_OK;
    const char* msg = gzerror(file_, &code);
    if (code == Z_OK) return;
    // zlib prefixes its message with the path, which our message already names.
    std::string detail = msg;
    const std::string prefix = path_ + ": ";
    if (detail.compare(0, prefix.size(), prefix) == 0) detail.erase(0, prefix.size());
    SG_FAIL("idx: '" << path_ << "': corrupt or truncated gzip data (zlib: " << detail << ")");
  }

  std::string path_;
  gzFile file_ = nullptr;
};

uint32_t big_endian_u32(const uint8_t* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

// Reads a uint8 IDX array with `ndim` dimensions into a tensor of that shape.
Tensor read_idx_u8(const std::string& path, int ndim, const char* what) {
  std::error_code ec;
  const uint64_t file_bytes = fs::file_size(path, ec);
  SG_CHECK(!ec, "idx: cannot open '" << path << "': " << ec.message());
  GzReader in(path);

  uint8_t header[4];
  const size_t header_got = in.read_up_to(header, 4);
  SG_CHECK(header_got == 4, "idx: '" << path << "': data ends after " << header_got << " bytes, inside the 4-byte header");
  const uint32_t magic = big_endian_u32(header);
  const uint32_t expected_magic = 0x00000800u | uint32_t(ndim);
  SG_CHECK(magic == expected_magic, "idx: '" << path << "': magic 0x" << std::hex << magic << " but " << what
                                             << " must have magic 0x" << expected_magic << std::dec
                                             << " (unsigned bytes, " << ndim << "-D)");

  std::vector<uint8_t> dim_bytes(size_t(4 * ndim));
  const size_t dims_got = in.read_up_to(dim_bytes.data(), dim_bytes.size());
  SG_CHECK(dims_got == dim_bytes.size(), "idx: '" << path << "': data ends inside the dimension list ("
                                                  << dims_got << " of " << dim_bytes.size() << " bytes)");
  Shape shape;
  int64_t payload = 1;
  for (int d = 0; d < ndim; ++d) {
    const int64_t size = big_endian_u32(&dim_bytes[size_t(4 * d)]);
    SG_CHECK(size >= 1, "idx: '" << path << "': dimension " << d << " is 0; every dimension must be >= 1");
    shape.push_back(size);
    SG_CHECK(payload <= kMaxIdxBytes / size, "idx: '" << path << "': dimensions " << shape_str(shape)
                                                      << "... describe more than 2^40 bytes");
    payload *= size;
  }
  const uint64_t header_bytes = 4 + 4 * uint64_t(ndim);
  if (in.plain()) {
    SG_CHECK(file_bytes == header_bytes + uint64_t(payload),
             "idx: '" << path << "': header " << shape_str(shape) << " needs " << header_bytes + uint64_t(payload)
                      << " bytes but the file has " << file_bytes << " ("
                      << (file_bytes < header_bytes + uint64_t(payload) ? "truncated" : "trailing data") << ")");
  } else {
    SG_CHECK(uint64_t(payload) <= file_bytes * kMaxDeflateRatio,
             "idx: '" << path << "': header " << shape_str(shape) << " promises " << payload
                      << " bytes, more than a gzip file of " << file_bytes << " bytes can hold (truncated or corrupt)");
  }

  Tensor out = Tensor::empty(shape, DType::U8);
  const size_t got = in.read_up_to(out.raw_data(), size_t(payload));
  SG_CHECK(got == size_t(payload), "idx: '" << path << "': truncated: header " << shape_str(shape) << " promises "
                                            << payload << " data bytes, the file ends after " << got);
  // Reading one byte more also makes zlib verify the gzip trailer (CRC-32 and length).
  uint8_t extra = 0;
  SG_CHECK(in.read_up_to(&extra, 1) == 0, "idx: '" << path << "': trailing data after the " << payload
                                                   << " data bytes that header " << shape_str(shape) << " promises");
  return out;
}

struct IdxSplitFiles {
  std::string images, labels;
};

IdxSplitFiles idx_files(const std::string& dir, Split split) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  return {find_idx_file(dir, prefix + "-images-idx3-ubyte"), find_idx_file(dir, prefix + "-labels-idx1-ubyte")};
}

Dataset load_idx_dataset(const std::string& name, const std::string& dir, Split split, float mean, float std) {
  const IdxSplitFiles files = idx_files(dir, split);
  Dataset d;
  d.name = name;
  d.num_classes = 10;
  d.images = read_idx_images(files.images);
  d.labels = read_idx_labels(files.labels, d.num_classes);
  SG_CHECK(d.images.size(0) == d.labels.size(0), "idx: " << name << " " << split_name(split) << ": '" << files.images
                                                          << "' holds " << d.images.size(0) << " images but '"
                                                          << files.labels << "' holds " << d.labels.size(0) << " labels");
  d.mean = {mean, 0.f, 0.f};
  d.std = {std, 1.f, 1.f};
  return d;
}

}  // namespace

Tensor read_idx_images(const std::string& path) {
  Tensor images = read_idx_u8(path, 3, "an image file");
  return images.view({images.size(0), 1, images.size(1), images.size(2)});
}

Tensor read_idx_labels(const std::string& path, int64_t num_classes) {
  Tensor raw = read_idx_u8(path, 1, "a label file");
  const int64_t n = raw.size(0);
  Tensor labels = Tensor::empty({n}, DType::I32);
  const uint8_t* src = raw.data<uint8_t>();
  int32_t* dst = labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    SG_CHECK(src[i] < num_classes, "idx: '" << path << "': label " << int(src[i]) << " of sample " << i
                                            << " is outside [0, " << num_classes << ")");
    dst[i] = src[i];
  }
  return labels;
}

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  const fs::path gz = fs::path(dir) / (stem + ".gz");
  const fs::path plain = fs::path(dir) / stem;
  std::error_code ec;
  if (fs::is_regular_file(gz, ec)) return gz.string();
  if (fs::is_regular_file(plain, ec)) return plain.string();
  SG_FAIL("idx: neither '" << gz.string() << "' nor '" << plain.string() << "' exists");
}

Dataset load_fashion_mnist(const std::string& dir, Split split) {
  return load_idx_dataset("fashion-mnist", dir, split, 0.2860f, 0.3530f);
}

Dataset load_mnist(const std::string& dir, Split split) { return load_idx_dataset("mnist", dir, split, 0.1307f, 0.3081f); }

}  // namespace spikegrad
