// Dataset readers on files the tests write in the official formats (IDX plain/gzip, CIFAR binary),
// every class of bad file, the validation split, augmentation and the registry; the real
// Fashion-MNIST when it is installed.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "datasets/augment.h"
#include "datasets/cifar.h"
#include "datasets/idx.h"
#include "datasets/registry.h"
#include "support/op_cases.h"
#include "support/temp_dir.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;


void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

void put_u32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(uint8_t(v >> shift));
}

Bytes idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& payload) {
  Bytes b;
  put_u32(b, magic);
  for (uint32_t d : dims) put_u32(b, d);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// A varied but reproducible pattern, so a misplaced byte shows up.
Bytes pattern(size_t n, uint32_t salt) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t((i * 131 + salt * 17 + (i >> 3)) & 0xFF);
  return b;
}

constexpr uint32_t kN = 7, kH = 5, kW = 4;
Bytes idx_images(uint32_t n = kN) { return idx_bytes(0x803, {n, kH, kW}, pattern(size_t(n) * kH * kW, 1)); }
Bytes idx_labels(uint32_t n = kN) {
  Bytes labels;
  for (uint32_t i = 0; i < n; ++i) labels.push_back(uint8_t((i * 3) % 10));
  return idx_bytes(0x801, {n}, labels);
}

// Runs `fn`, which must throw spikegrad::Error whose message contains every fragment.

TEST(IdxReader, RoundTripPlainAndGzip) {
  TempDir plain, gz;
  write_file(plain.file("train-images-idx3-ubyte"), idx_images());
  write_file(plain.file("train-labels-idx1-ubyte"), idx_labels());
  write_gz(gz.file("t10k-images-idx3-ubyte.gz"), idx_images());
  write_gz(gz.file("t10k-labels-idx1-ubyte.gz"), idx_labels());
  const Bytes expected_pixels = pattern(size_t(kN) * kH * kW, 1);
  for (const Dataset& d : {load_fashion_mnist(plain.path.string(), Split::Train), load_mnist(gz.path.string(), Split::Test)}) {
    EXPECT_EQ(d.images.shape(), (Shape{kN, 1, kH, kW}));
    EXPECT_EQ(d.images.to_vector<uint8_t>(), expected_pixels);
    const std::vector<int32_t> labels = d.labels.to_vector<int32_t>();
    ASSERT_EQ(labels.size(), size_t(kN));
    for (uint32_t i = 0; i < kN; ++i) EXPECT_EQ(labels[i], int32_t((i * 3) % 10));
    EXPECT_EQ(d.num_classes, 10);
    check_dataset(d, "round trip");
  }
  const Dataset fashion = load_fashion_mnist(plain.path.string(), Split::Train);
  EXPECT_EQ(fashion.name, "fashion-mnist");
  EXPECT_FLOAT_EQ(fashion.mean[0], 0.2860f);
  EXPECT_FLOAT_EQ(fashion.std[0], 0.3530f);
  const Dataset mnist = load_mnist(gz.path.string(), Split::Test);
  EXPECT_FLOAT_EQ(mnist.mean[0], 0.1307f);
  EXPECT_FLOAT_EQ(mnist.std[0], 0.3081f);
}

TEST(IdxReader, PrefersGzipAndNamesBothCandidatesWhenMissing) {
  TempDir dir;
  write_file(dir.file("x"), {1});
  EXPECT_EQ(find_idx_file(dir.path.string(), "x"), dir.file("x"));
  write_file(dir.file("x.gz"), {1});
  EXPECT_EQ(find_idx_file(dir.path.string(), "x"), dir.file("x.gz"));
  expect_error([&] { load_fashion_mnist(dir.path.string(), Split::Train); },
               {dir.file("train-images-idx3-ubyte.gz"), dir.file("train-images-idx3-ubyte"), "neither"});
}

TEST(IdxReader, WrongMagic) {
  TempDir dir;
  write_file(dir.file("labels-as-images"), idx_labels());
  expect_error([&] { read_idx_images(dir.file("labels-as-images")); }, {dir.file("labels-as-images"), "magic 0x801", "0x803"});
  write_file(dir.file("images-as-labels"), idx_images());
  expect_error([&] { read_idx_labels(dir.file("images-as-labels"), 10); }, {"magic 0x803", "0x801"});
  write_file(dir.file("int32"), idx_bytes(0xC01, {1}, {0, 0, 0, 1}));  // type 0x0C: int32 data, not supported
  expect_error([&] { read_idx_labels(dir.file("int32"), 10); }, {"magic 0xc01"});
  write_file(dir.file("short"), {0, 0});
  expect_error([&] { read_idx_labels(dir.file("short"), 10); }, {"inside the 4-byte header"});
}

TEST(IdxReader, TruncatedImagesAndLabels) {
  TempDir dir;
  Bytes images = idx_images();
  images.pop_back();
  Bytes labels = idx_labels();
  labels.pop_back();
  write_file(dir.file("images"), images);
  write_file(dir.file("labels"), labels);
  write_gz(dir.file("images.gz"), images);
  write_gz(dir.file("labels.gz"), labels);
  expect_error([&] { read_idx_images(dir.file("images")); }, {dir.file("images"), "truncated"});
  expect_error([&] { read_idx_labels(dir.file("labels"), 10); }, {dir.file("labels"), "truncated"});
  expect_error([&] { read_idx_images(dir.file("images.gz")); }, {dir.file("images.gz"), "truncated", "ends after 139"});
  expect_error([&] { read_idx_labels(dir.file("labels.gz"), 10); }, {dir.file("labels.gz"), "truncated"});
  Bytes dims_cut = idx_images();
  dims_cut.resize(10);  // magic + 1.5 dimensions
  write_gz(dir.file("dims.gz"), dims_cut);
  expect_error([&] { read_idx_images(dir.file("dims.gz")); }, {"inside the dimension list"});
}

TEST(IdxReader, TrailingBytesAreAnError) {
  TempDir dir;
  Bytes images = idx_images();
  images.push_back(0);
  write_file(dir.file("images"), images);
  write_gz(dir.file("images.gz"), images);
  expect_error([&] { read_idx_images(dir.file("images")); }, {dir.file("images"), "trailing data"});
  expect_error([&] { read_idx_images(dir.file("images.gz")); }, {dir.file("images.gz"), "trailing data"});
}

TEST(IdxReader, CorruptGzipStreams) {
  TempDir dir;
  // Big enough that the deflate stream has real Huffman-coded blocks to damage.
  const Bytes images = idx_bytes(0x803, {64, 28, 28}, pattern(64 * 28 * 28, 5));
  write_gz(dir.file("good.gz"), images);
  EXPECT_EQ(read_idx_images(dir.file("good.gz")).numel(), 64 * 28 * 28);
  const Bytes good = read_file(dir.file("good.gz"));
  ASSERT_GT(good.size(), 64u);
  Bytes flipped = good;
  for (size_t i = good.size() / 2; i < good.size() / 2 + 8; ++i) flipped[i] ^= 0xA5;
  write_file(dir.file("flipped.gz"), flipped);
  expect_error([&] { read_idx_images(dir.file("flipped.gz")); }, {dir.file("flipped.gz")});
  // A damaged trailer (CRC-32) with intact data: only the CRC check can catch it.
  Bytes bad_crc = good;
  bad_crc[good.size() - 8] ^= 0x01;
  write_file(dir.file("crc.gz"), bad_crc);
  expect_error([&] { read_idx_images(dir.file("crc.gz")); }, {dir.file("crc.gz"), "gzip"});
  // A compressed file cut short: zlib reports an unexpected end, not a clean EOF.
  write_file(dir.file("cut.gz"), Bytes(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2)));
  expect_error([&] { read_idx_images(dir.file("cut.gz")); }, {dir.file("cut.gz"), "gzip"});
}

TEST(IdxReader, ImplausibleHeaderIsRejectedBeforeAllocating) {
  TempDir dir;
  write_gz(dir.file("huge.gz"), idx_bytes(0x803, {60000, 60000, 60000}, {1, 2, 3}));
  expect_error([&] { read_idx_images(dir.file("huge.gz")); }, {"2^40"});
  write_gz(dir.file("big.gz"), idx_bytes(0x803, {100000, 1000, 1000}, {1, 2, 3}));
  expect_error([&] { read_idx_images(dir.file("big.gz")); }, {"more than a gzip file of"});
  write_file(dir.file("zero"), idx_bytes(0x803, {0, 28, 28}, {}));
  expect_error([&] { read_idx_images(dir.file("zero")); }, {"dimension 0 is 0"});
}

TEST(IdxReader, LabelOutOfRange) {
  TempDir dir;
  write_file(dir.file("labels"), idx_bytes(0x801, {4}, {1, 9, 10, 2}));
  expect_error([&] { read_idx_labels(dir.file("labels"), 10); }, {dir.file("labels"), "label 10 of sample 2"});
}

TEST(IdxReader, ImageAndLabelCountsMustMatch) {
  TempDir dir;
  write_file(dir.file("train-images-idx3-ubyte"), idx_images(kN));
  write_file(dir.file("train-labels-idx1-ubyte"), idx_labels(kN - 1));
  expect_error([&] { load_fashion_mnist(dir.path.string(), Split::Train); },
               {"holds 7 images", "holds 6 labels", dir.file("train-labels-idx1-ubyte")});
}

// CIFAR records: label byte(s) then 3072 pixel bytes; pixels derived from (file, record) to check order.
Bytes cifar_records(const std::vector<std::vector<uint8_t>>& labels, uint32_t salt) {
  Bytes out;
  for (size_t r = 0; r < labels.size(); ++r) {
    out.insert(out.end(), labels[r].begin(), labels[r].end());
    const Bytes pixels = pattern(3072, salt * 100 + uint32_t(r));
    out.insert(out.end(), pixels.begin(), pixels.end());
  }
  return out;
}

TEST(CifarReader, Cifar10TrainAndTestInFileOrder) {
  TempDir dir;
  const std::vector<size_t> records_per_file = {2, 1, 3, 1, 2};
  std::vector<int32_t> expected_labels;
  Bytes expected_pixels;
  for (size_t f = 0; f < 5; ++f) {
    std::vector<std::vector<uint8_t>> labels;
    for (size_t r = 0; r < records_per_file[f]; ++r) {
      labels.push_back({uint8_t((f * 3 + r) % 10)});
      expected_labels.push_back(int32_t((f * 3 + r) % 10));
      const Bytes pixels = pattern(3072, uint32_t(f) * 100 + uint32_t(r));
      expected_pixels.insert(expected_pixels.end(), pixels.begin(), pixels.end());
    }
    write_file(dir.file(cifar10_files(Split::Train)[f]), cifar_records(labels, uint32_t(f)));
  }
  write_file(dir.file("test_batch.bin"), cifar_records({{9}, {0}}, 7));
  const Dataset train = load_cifar10(dir.path.string(), Split::Train);
  EXPECT_EQ(train.name, "cifar10");
  EXPECT_EQ(train.images.shape(), (Shape{9, 3, 32, 32}));
  EXPECT_EQ(train.labels.to_vector<int32_t>(), expected_labels);
  EXPECT_EQ(train.images.to_vector<uint8_t>(), expected_pixels);
  EXPECT_EQ(train.num_classes, 10);
  EXPECT_FLOAT_EQ(train.mean[2], 0.4465f);
  EXPECT_FLOAT_EQ(train.std[1], 0.1994f);
  const Dataset test = load_cifar10(dir.path.string(), Split::Test);
  EXPECT_EQ(test.labels.to_vector<int32_t>(), (std::vector<int32_t>{9, 0}));
  // Channel-planar: pixel (c=1, y=2, x=3) of test record 1 is byte 1024 + 2*32 + 3 of its pixel block.
  EXPECT_EQ(test.images.to_vector<uint8_t>()[3072 + 1024 + 2 * 32 + 3], pattern(3072, 701)[1024 + 67]);
}

TEST(CifarReader, Cifar100FineByDefaultCoarseOnRequest) {
  TempDir dir;
  write_file(dir.file("train.bin"), cifar_records({{19, 99}, {0, 42}, {7, 3}}, 1));
  write_file(dir.file("test.bin"), cifar_records({{4, 55}}, 2));
  const Dataset fine = load_cifar100(dir.path.string(), Split::Train);
  EXPECT_EQ(fine.labels.to_vector<int32_t>(), (std::vector<int32_t>{99, 42, 3}));
  EXPECT_EQ(fine.num_classes, 100);
  EXPECT_FLOAT_EQ(fine.mean[0], 0.5071f);
  EXPECT_FLOAT_EQ(fine.std[2], 0.2761f);
  const Dataset coarse = load_cifar100(dir.path.string(), Split::Train, Cifar100Labels::Coarse);
  EXPECT_EQ(coarse.labels.to_vector<int32_t>(), (std::vector<int32_t>{19, 0, 7}));
  EXPECT_EQ(coarse.num_classes, 20);
  EXPECT_EQ(coarse.images.to_vector<uint8_t>(), fine.images.to_vector<uint8_t>());
  EXPECT_EQ(load_cifar100(dir.path.string(), Split::Test).labels.to_vector<int32_t>(), (std::vector<int32_t>{55}));
}

TEST(CifarReader, BadFiles) {
  TempDir dir;
  expect_error([&] { load_cifar10(dir.path.string(), Split::Test); }, {dir.file("test_batch.bin"), "cannot open"});
  Bytes records = cifar_records({{1}, {2}}, 3);
  records.pop_back();
  write_file(dir.file("test_batch.bin"), records);
  expect_error([&] { load_cifar10(dir.path.string(), Split::Test); },
               {dir.file("test_batch.bin"), "6145 bytes", "3073-byte record", "3072 bytes left over"});
  write_file(dir.file("test_batch.bin"), {});
  expect_error([&] { load_cifar10(dir.path.string(), Split::Test); }, {"has 0 bytes"});
  write_file(dir.file("test_batch.bin"), cifar_records({{1}, {10}}, 3));
  expect_error([&] { load_cifar10(dir.path.string(), Split::Test); }, {"record 1 has label byte 0 = 10", "expected < 10"});
  // CIFAR-100 records are 3074 bytes: a CIFAR-10 file is the wrong size, and bad coarse labels are caught too.
  write_file(dir.file("test.bin"), cifar_records({{1}, {2}}, 3));
  expect_error([&] { load_cifar100(dir.path.string(), Split::Test); }, {"3074-byte record"});
  write_file(dir.file("test.bin"), cifar_records({{20, 5}}, 3));
  expect_error([&] { load_cifar100(dir.path.string(), Split::Test); }, {"label byte 0 = 20", "expected < 20"});
  write_file(dir.file("test.bin"), cifar_records({{2, 100}}, 3));
  expect_error([&] { load_cifar100(dir.path.string(), Split::Test); }, {"label byte 1 = 100", "expected < 100"});
  // A missing later training batch fails before anything is read.
  write_file(dir.file("data_batch_1.bin"), cifar_records({{1}}, 3));
  expect_error([&] { load_cifar10(dir.path.string(), Split::Train); }, {dir.file("data_batch_2.bin")});
}

Dataset numbered_dataset(int64_t n) {
  Dataset d;
  d.name = "numbered";
  d.num_classes = 10;
  d.images = Tensor::empty({n, 1, 2, 2}, DType::U8);
  d.labels = Tensor::empty({n}, DType::I32);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < 4; ++j) d.images.data<uint8_t>()[i * 4 + j] = uint8_t((i + j) & 0xFF);
    d.labels.data<int32_t>()[i] = int32_t(i % 10);
  }
  return d;
}

TEST(DatasetSplit, ValidationIsDisjointCoveringAndSeeded) {
  const Dataset d = numbered_dataset(200);
  const TrainValidationSplit a = split_train_validation(d, 50, 7);
  EXPECT_EQ(a.train.size(), 150);
  EXPECT_EQ(a.validation.size(), 50);
  // Samples are identified by their first pixel + label (unique for i < 256).
  auto ids = [](const Dataset& part) {
    std::vector<int64_t> out;
    for (int64_t k = 0; k < part.size(); ++k) {
      const int64_t i = part.images.data<uint8_t>()[k * 4];
      EXPECT_EQ(part.labels.data<int32_t>()[k], i % 10);
      EXPECT_EQ(part.images.data<uint8_t>()[k * 4 + 3], uint8_t(i + 3));
      out.push_back(i);
    }
    return out;
  };
  const std::vector<int64_t> train = ids(a.train), validation = ids(a.validation);
  std::set<int64_t> all(train.begin(), train.end());
  all.insert(validation.begin(), validation.end());
  EXPECT_EQ(all.size(), 200u);
  EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));
  EXPECT_TRUE(std::is_sorted(validation.begin(), validation.end()));
  EXPECT_EQ(ids(split_train_validation(d, 50, 7).validation), validation);
  EXPECT_NE(ids(split_train_validation(d, 50, 8).validation), validation);
  EXPECT_EQ(a.validation.name, d.name);
  EXPECT_EQ(a.validation.num_classes, 10);

  const TrainValidationSplit none = split_train_validation(d, 0, 7);
  EXPECT_EQ(none.validation.size(), 0);
  EXPECT_EQ(none.validation.images.shape(), (Shape{0, 1, 2, 2}));
  EXPECT_EQ(none.train.images.to_vector<uint8_t>(), d.images.to_vector<uint8_t>());
  expect_error([&] { split_train_validation(d, 200, 7); }, {"validation_size must be in [0, 200)", "got 200"});
  expect_error([&] { split_train_validation(d, -1, 7); }, {"got -1"});
}

TEST(DatasetSplit, CheckDatasetAndParseSplit) {
  EXPECT_EQ(parse_split("train"), Split::Train);
  EXPECT_EQ(parse_split("test"), Split::Test);
  expect_error([] { parse_split("val"); }, {"train|test", "'val'"});
  Dataset d = numbered_dataset(5);
  d.labels.data<int32_t>()[3] = 10;
  expect_error([&] { check_dataset(d, "ctx"); }, {"ctx: label 10 of sample 3"});
  d.labels = Tensor::zeros({4}, DType::I32);
  expect_error([&] { check_dataset(d, "ctx"); }, {"5 images but 4 labels"});
  expect_error([&] { select_samples(numbered_dataset(5), {0, 5}); }, {"index 5 is outside [0, 5)"});
}

// A 1-channel 6x5 image whose pixel (y, x) is 10*y + x + 1 (never 0, so padding is recognisable).
Bytes ramp_image() {
  Bytes img(30);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 5; ++x) img[size_t(y * 5 + x)] = uint8_t(10 * y + x + 1);
  return img;
}

TEST(Augment, CropShiftsAndZeroFillsPadding) {
  const Bytes src = ramp_image();
  const Augmentation aug{2, false};
  for (int64_t oy = 0; oy <= 4; ++oy) {
    for (int64_t ox = 0; ox <= 4; ++ox) {
      Bytes dst(30, 0xEE);
      apply_augmentation(src.data(), dst.data(), 1, 6, 5, aug, {oy, ox, false});
      for (int64_t y = 0; y < 6; ++y) {
        for (int64_t x = 0; x < 5; ++x) {
          const int64_t sy = y + oy - 2, sx = x + ox - 2;
          const bool inside = sy >= 0 && sy < 6 && sx >= 0 && sx < 5;
          EXPECT_EQ(dst[size_t(y * 5 + x)], inside ? src[size_t(sy * 5 + sx)] : 0) << oy << "," << ox << " at " << y << "," << x;
        }
      }
    }
  }
  expect_error([&] { Bytes dst(30); apply_augmentation(src.data(), dst.data(), 1, 6, 5, aug, {5, 0, false}); },
               {"crop offset (5,0) outside [0, 4]"});
}

TEST(Augment, FlipIsAMirrorOnEveryChannel) {
  Bytes src = ramp_image();
  const Bytes second = pattern(30, 9);
  src.insert(src.end(), second.begin(), second.end());  // 2 channels
  Bytes flipped(60), twice(60);
  const Augmentation aug{0, true};
  apply_augmentation(src.data(), flipped.data(), 2, 6, 5, aug, {0, 0, true});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t y = 0; y < 6; ++y)
      for (int64_t x = 0; x < 5; ++x) EXPECT_EQ(flipped[size_t((c * 6 + y) * 5 + x)], src[size_t((c * 6 + y) * 5 + 4 - x)]);
  apply_augmentation(flipped.data(), twice.data(), 2, 6, 5, aug, {0, 0, true});
  EXPECT_EQ(twice, src);
  Bytes same(60);
  apply_augmentation(src.data(), same.data(), 2, 6, 5, aug, {0, 0, false});
  EXPECT_EQ(same, src);
}

TEST(Augment, DrawsAreDeterministicFixedSizeAndCoverTheRange) {
  const Augmentation cifar = default_augmentation("cifar10");
  EXPECT_EQ(cifar.crop_padding, 4);
  EXPECT_TRUE(cifar.horizontal_flip);
  EXPECT_TRUE(default_augmentation("cifar100").enabled());
  EXPECT_FALSE(default_augmentation("fashion-mnist").enabled());
  EXPECT_FALSE(default_augmentation("mnist").enabled());

  Generator a(42), b(42);
  std::set<int64_t> offsets;
  int flips = 0;
  const int draws = 2000;
  for (int i = 0; i < draws; ++i) {
    const AugmentDraw da = draw_augmentation(cifar, a), db = draw_augmentation(cifar, b);
    EXPECT_EQ(da.offset_y, db.offset_y);
    EXPECT_EQ(da.offset_x, db.offset_x);
    EXPECT_EQ(da.flip, db.flip);
    offsets.insert(da.offset_y);
    offsets.insert(da.offset_x);
    flips += da.flip;
  }
  EXPECT_EQ(offsets, (std::set<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_NEAR(double(flips) / draws, 0.5, 0.05);  // 4.5 standard deviations
  EXPECT_EQ(a.offset(), uint64_t(draws) * kAugmentDrawsPerSample);
  // Disabled parts draw nothing visible but still consume their counters.
  Generator c(1);
  const AugmentDraw none = draw_augmentation(Augmentation{}, c);
  EXPECT_EQ(none.offset_y, 0);
  EXPECT_FALSE(none.flip);
  EXPECT_EQ(c.offset(), kAugmentDrawsPerSample);
}

TEST(DatasetRegistry, LoadsByNameAndListsKnownNames) {
  TempDir dir;
  write_file(dir.file("t10k-images-idx3-ubyte"), idx_images());
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_labels());
  const Dataset d = load_dataset("mnist", dir.path.string(), Split::Test);
  EXPECT_EQ(d.name, "mnist");
  EXPECT_EQ(d.size(), kN);
  EXPECT_EQ(known_dataset_names(), (std::vector<std::string>{"fashion-mnist", "mnist", "cifar10", "cifar100",
                                                              "tiny-imagenet", "imagenet", "cifar10-dvs"}));
  EXPECT_EQ(default_dataset_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
  expect_error([&] { load_dataset("imagenet-21k", "", Split::Test); },
               {"unknown name 'imagenet-21k'", "fashion-mnist|mnist|cifar10|cifar100|tiny-imagenet|imagenet"});
  expect_error([&] { load_dataset("cifar10", dir.path.string(), Split::Test); }, {dir.file("test_batch.bin")});
}

TEST(FashionMnistDataset, RealFilesWhenInstalled) {
  const std::string dir = default_dataset_dir("fashion-mnist");
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz")) GTEST_SKIP() << dir << " is not installed";
  for (Split split : {Split::Train, Split::Test}) {
    const Dataset d = load_dataset("fashion-mnist", "", split);
    const int64_t n = split == Split::Train ? 60000 : 10000;
    EXPECT_EQ(d.images.shape(), (Shape{n, 1, 28, 28}));
    check_dataset(d, "fashion-mnist");  // labels in [0, 10)
    std::vector<int64_t> per_class(10, 0);
    for (int32_t label : d.labels.to_vector<int32_t>()) ++per_class[size_t(label)];
    for (int64_t count : per_class) EXPECT_EQ(count, n / 10);  // Fashion-MNIST is exactly balanced
    if (split == Split::Train) {
      // The pixel mean of the train set is the normalisation constant (0.2860).
      double sum = 0;
      const uint8_t* p = d.images.data<uint8_t>();
      for (int64_t i = 0; i < d.images.numel(); ++i) sum += p[i];
      EXPECT_NEAR(sum / double(d.images.numel()) / 255.0, d.mean[0], 5e-4);
    }
  }
}

}  // namespace
}  // namespace spikegrad::testing
