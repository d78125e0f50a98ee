#include "datasets/cifar.h"

#include <cstring>
#include <filesystem>
#include <fstream>

namespace spikegrad {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kChannels = 3, kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;  // 3072

// The record layout of one CIFAR variant: `label_bytes` leading label bytes, of which the one at
// `label_index` is used, each checked against `num_classes` (the others against their own ranges).
struct CifarFormat {
  const char* dataset;
  int64_t label_bytes;
  int64_t label_index;
  std::vector<int64_t> label_ranges;  // per leading byte: labels must be < this
};

// Number of records in `path`; throws unless the file exists and is a non-empty whole number of records.
int64_t count_records(const std::string& dataset, const std::string& path, int64_t record_bytes) {
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  SG_CHECK(!ec, dataset << ": cannot open '" << path << "': " << ec.message());
  SG_CHECK(bytes > 0 && bytes % uintmax_t(record_bytes) == 0,
           dataset << ": '" << path << "' has " << bytes << " bytes; expected a non-empty multiple of the "
                   << record_bytes << "-byte record (" << bytes / uintmax_t(record_bytes) << " whole records and "
                   << bytes % uintmax_t(record_bytes) << " bytes left over)");
  return int64_t(bytes / uintmax_t(record_bytes));
}

std::vector<uint8_t> read_file(const std::string& dataset, const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  SG_CHECK(in.good(), dataset << ": cannot open '" << path << "' for reading");
  std::vector<uint8_t> buffer(bytes);
  in.read(reinterpret_cast<char*>(buffer.data()), std::streamsize(bytes));
  SG_CHECK(in.gcount() == std::streamsize(bytes),
           dataset << ": '" << path << "': read " << in.gcount() << " of " << bytes << " bytes (file changed while reading?)");
  return buffer;
}

Dataset read_cifar(const std::string& dir, const std::vector<std::string>& names, const CifarFormat& format) {
  const int64_t record_bytes = format.label_bytes + kPixelBytes;
  std::vector<std::string> paths;
  std::vector<int64_t> records;
  int64_t total = 0;
  // Size every file before reading any, so a missing or mis-sized last file fails before 150 MB are read;
  // files are then read one at a time so only one file's buffer exists beside the dataset.
  for (const std::string& name : names) {
    paths.push_back((fs::path(dir) / name).string());
    records.push_back(count_records(format.dataset, paths.back(), record_bytes));
    total += records.back();
  }
  Dataset d;
  d.name = format.dataset;
  d.num_classes = format.label_ranges[size_t(format.label_index)];
  d.images = Tensor::empty({total, kChannels, kSide, kSide}, DType::U8);
  d.labels = Tensor::empty({total}, DType::I32);
  uint8_t* images = d.images.data<uint8_t>();
  int32_t* labels = d.labels.data<int32_t>();
  int64_t sample = 0;
  for (size_t f = 0; f < paths.size(); ++f) {
    const std::vector<uint8_t> file = read_file(format.dataset, paths[f], size_t(records[f] * record_bytes));
    for (int64_t r = 0; r < records[f]; ++r, ++sample) {
      const uint8_t* record = file.data() + r * record_bytes;
      for (int64_t b = 0; b < format.label_bytes; ++b)
        SG_CHECK(record[b] < format.label_ranges[size_t(b)],
                 format.dataset << ": '" << paths[f] << "': record " << r << " has label byte " << b << " = "
                                << int(record[b]) << ", expected < " << format.label_ranges[size_t(b)]);
      labels[sample] = record[format.label_index];
      // The record's pixels are already (C,H,W) channel-planar: one copy per sample.
      std::memcpy(images + sample * kPixelBytes, record + format.label_bytes, size_t(kPixelBytes));
    }
  }
  return d;
}

}  // namespace

std::vector<std::string> cifar10_files(Split split) {
  if (split == Split::Test) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
}

std::vector<std::string> cifar100_files(Split split) { return {split == Split::Train ? "train.bin" : "test.bin"}; }

Dataset load_cifar10(const std::string& dir, Split split) {
  Dataset d = read_cifar(dir, cifar10_files(split), {"cifar10", 1, 0, {10}});
  d.mean = {0.4914f, 0.4822f, 0.4465f};
  d.std = {0.2023f, 0.1994f, 0.2010f};
  return d;
}

Dataset load_cifar100(const std::string& dir, Split split, Cifar100Labels labels) {
  const int64_t index = labels == Cifar100Labels::Coarse ? 0 : 1;
  Dataset d = read_cifar(dir, cifar100_files(split), {"cifar100", 2, index, {20, 100}});
  d.mean = {0.5071f, 0.4867f, 0.4408f};
  d.std = {0.2675f, 0.2565f, 0.2761f};
  return d;
}

}  // namespace spikegrad
