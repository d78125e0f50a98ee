// safetensors I/O and strict loading: round trips, the exact byte layout, atomic writes, rejection of
// corrupt and hostile files, and strict_copy's single error message.
//
// Cross-check with the Python `safetensors` package (scripts/dev/check_safetensors.py):
//   SPIKEGRAD_KEEP_SAFETENSORS=<path>  the round-trip test also writes the reference file to <path>;
//   SPIKEGRAD_READ_SAFETENSORS=<path>  SafetensorsTest.ReadsExternalReferenceFile loads <path> (written by
//                                      the Python script) and checks it holds the reference tensors.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>

#include "engine/cuda_context.h"
#include "engine/safetensors.h"
#include "engine/strict_load.h"
#include "support/op_cases.h"

namespace spikegrad {
namespace {

namespace fs = std::filesystem;
using spikegrad::testing::error_of;

// The reference tensors; scripts/dev/check_safetensors.py builds the same ones with numpy.
NamedTensors reference_tensors() {
  return {
      {"f32", Tensor::from_vector<float>({-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f}, {2, 3})},
      {"f64", Tensor::from_vector<double>({0.0, 1.0 / 3.0, 2.0 / 3.0, 3.0 / 3.0}, {4})},
      {"i32", Tensor::from_vector<int32_t>({-7, 0, 2147483647}, {3, 1})},
      {"i64", Tensor::from_vector<int64_t>({-(int64_t(1) << 40), (int64_t(1) << 40) + 1}, {2})},
      {"u8", Tensor::from_vector<uint8_t>({0, 1, 127, 128, 255}, {5})},
      {"scalar", Tensor::from_vector<float>({3.25f}, {})},
      {"empty", Tensor::zeros({0, 4}, DType::F32)},
  };
}
const std::map<std::string, std::string> kReferenceMetadata = {{"format", "spikegrad-test"},
                                                               {"note", "caf\xc3\xa9 \xe2\x9c\x93"}};

std::vector<uint8_t> bytes_of(const Tensor& t) {
  std::vector<uint8_t> out(t.nbytes());
  if (!out.empty()) copy_bytes(out.data(), Device::CPU, t.raw_data(), t.device(), out.size());
  return out;
}

// Same names, dtypes, shapes and bytes, in any order (another writer may order entries differently).
void expect_same_tensors(const NamedTensors& expected, const NamedTensors& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (const NamedTensor& e : expected) {
    auto it = std::find_if(actual.begin(), actual.end(), [&](const NamedTensor& a) { return a.name == e.name; });
    ASSERT_NE(it, actual.end()) << "missing " << e.name;
    EXPECT_EQ(it->tensor.dtype(), e.tensor.dtype()) << e.name;
    EXPECT_EQ(it->tensor.shape(), e.tensor.shape()) << e.name;
    EXPECT_EQ(bytes_of(it->tensor), bytes_of(e.tensor)) << e.name;
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}
std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return s;
}
// A raw file with the given header text (unpadded) and data bytes.
std::string raw_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "sg_safetensors_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  // Writes `bytes` and expects loading it to fail with a message naming the file and every fragment.
  void expect_rejected(const std::string& bytes, const std::vector<std::string>& fragments) {
    const std::string p = path("bad.safetensors");
    write_file(p, bytes);
    const std::string msg = error_of([&] { load_safetensors(p); });
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    for (const std::string& f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "want '" << f << "' in: " << msg;
  }
  std::string dir_;
};

TEST_F(SafetensorsTest, RoundTripsAllDtypesAndMetadata) {
  const NamedTensors ref = reference_tensors();
  save_safetensors(path("ref.safetensors"), ref, kReferenceMetadata);
  if (const char* keep = std::getenv("SPIKEGRAD_KEEP_SAFETENSORS")) save_safetensors(keep, ref, kReferenceMetadata);
  const SafetensorsFile loaded = load_safetensors(path("ref.safetensors"));
  // Written in the given order without gaps, so file-offset order is the given order.
  ASSERT_EQ(loaded.tensors.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(loaded.tensors[i].name, ref[i].name);
  expect_same_tensors(ref, loaded.tensors);
  EXPECT_EQ(loaded.metadata, kReferenceMetadata);
  EXPECT_EQ(loaded.tensors[5].tensor.item(), 3.25);
  EXPECT_EQ(files(), std::vector<std::string>{"ref.safetensors"});  // no temp file left behind
}

TEST_F(SafetensorsTest, RoundTripsNoTensorsAndOverwrites) {
  save_safetensors(path("a.safetensors"), reference_tensors());
  save_safetensors(path("a.safetensors"), {}, {});
  const SafetensorsFile loaded = load_safetensors(path("a.safetensors"));
  EXPECT_TRUE(loaded.tensors.empty());
  EXPECT_TRUE(loaded.metadata.empty());
  EXPECT_EQ(read_file(path("a.safetensors")), le64(8) + "{}      ");
}

TEST_F(SafetensorsTest, WritesTheExactByteLayout) {
  save_safetensors(
      path("tiny.safetensors"),
      {{"a", Tensor::from_vector<float>({1.0f, -2.0f}, {2})}, {"b", Tensor::from_vector<uint8_t>({7}, {})}},
      {{"k", "v"}});
  // 130 bytes of JSON + 6 spaces = 136 = 0x88, so the data starts at byte 144, a multiple of 8.
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) +
                               R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"U8","shape":[],"data_offsets":[8,9]}})"
                               "      " +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x07", 9);  // 1.0f, -2.0f, 7
  EXPECT_EQ(read_file(path("tiny.safetensors")), expected);
}

TEST_F(SafetensorsTest, LoadsOntoCuda) {
  SG_SKIP_WITHOUT_CUDA();
  NamedTensors on_gpu;
  for (const NamedTensor& nt : reference_tensors()) on_gpu.push_back({nt.name, nt.tensor.to(Device::CUDA)});
  save_safetensors(path("gpu.safetensors"), on_gpu);
  const SafetensorsFile loaded = load_safetensors(path("gpu.safetensors"), Device::CUDA);
  for (const NamedTensor& nt : loaded.tensors) EXPECT_EQ(nt.tensor.device(), Device::CUDA) << nt.name;
  expect_same_tensors(reference_tensors(), loaded.tensors);
}

TEST_F(SafetensorsTest, SaveIntoMissingDirectoryFailsClearly) {
  const std::string p = path("no_such_dir/model.safetensors");
  const std::string msg = error_of([&] { save_safetensors(p, reference_tensors()); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  EXPECT_TRUE(files().empty());
}

// Simulates a full disk: with RLIMIT_FSIZE below the file size (and SIGXFSZ ignored), write() fails
// with EFBIG part-way through the data, exactly where ENOSPC would.
TEST_F(SafetensorsTest, FailedWriteKeepsThePreviousFileAndRemovesTheTemp) {
  const std::string p = path("model.safetensors");
  save_safetensors(p, reference_tensors(), kReferenceMetadata);
  const std::string before = read_file(p);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = std::min<rlim_t>(1024, old.rlim_max);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  const bool limited = ::setrlimit(RLIMIT_FSIZE, &small) == 0;
  // Nothing may print between setting and restoring the limit: a redirected test log could hit it too.
  const std::string msg = limited ? error_of([&] {
    save_safetensors(p, {{"big", Tensor::zeros({1 << 14}, DType::F32)}});
  })
                                  : "";
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(limited) << "setrlimit(RLIMIT_FSIZE) failed";
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_EQ(read_file(p), before);
  EXPECT_EQ(files(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(SafetensorsTest, FailedRenameRemovesTheTemp) {
  const std::string p = path("occupied");
  fs::create_directory(p);  // rename() of a file over a directory fails after the data is written
  const std::string msg = error_of([&] { save_safetensors(p, reference_tensors()); });
  EXPECT_NE(msg.find("renaming"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Is a directory"), std::string::npos) << msg;
  EXPECT_EQ(files(), std::vector<std::string>{"occupied"});
}

TEST_F(SafetensorsTest, SaveRejectsBadNamesBeforeWriting) {
  const Tensor t = Tensor::zeros({2});
  const std::string p = path("x.safetensors");
  EXPECT_NE(error_of([&] {
              save_safetensors(p, {{"w", t}, {"b", t}, {"w", t}});
            }).find("duplicate tensor name 'w'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { save_safetensors(p, {{"", t}}); }).find("empty name"), std::string::npos);
  EXPECT_NE(error_of([&] { save_safetensors(p, {{"__metadata__", t}}); }).find("reserved"), std::string::npos);
  EXPECT_NE(error_of([&] { save_safetensors(p, {{"u", Tensor()}}); }).find("'u' is undefined"), std::string::npos);
  EXPECT_NE(error_of([&] { save_safetensors(p, {{"bad\xff", t}}); }).find("UTF-8"), std::string::npos);
  EXPECT_TRUE(files().empty());
}

TEST_F(SafetensorsTest, RejectsMissingFilesAndDirectories) {
  const std::string p = path("absent.safetensors");
  const std::string msg = error_of([&] { load_safetensors(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { load_safetensors(dir_); }).find("not a regular file"), std::string::npos);
}

TEST_F(SafetensorsTest, RejectsTruncatedFiles) {
  save_safetensors(path("ref.safetensors"), reference_tensors(), kReferenceMetadata);
  const std::string full = read_file(path("ref.safetensors"));
  const uint64_t data_start = 8 + (uint8_t(full[0]) | uint64_t(uint8_t(full[1])) << 8);
  ASSERT_LT(data_start, full.size());
  const std::vector<std::pair<size_t, std::string>> cuts = {{0, "too short"},
                                                            {5, "too short"},
                                                            {7, "too short"},
                                                            {8, "exceeds"},
                                                            {40, "exceeds"},
                                                            {data_start - 1, "exceeds"},
                                                            {data_start, "go past the end"},
                                                            {data_start + 10, "go past the end"},
                                                            {full.size() - 1, "go past the end"}};
  for (const auto& [size, fragment] : cuts) {
    SCOPED_TRACE("truncated to " + std::to_string(size) + " bytes");
    expect_rejected(full.substr(0, size), {fragment});
  }
}

TEST_F(SafetensorsTest, RejectsHostileHeaderLengths) {
  expect_rejected(le64(1000) + "{}", {"header length 1000 exceeds the 2 bytes"});
  expect_rejected(le64(uint64_t(1) << 62) + "{}", {"header length 4611686018427387904 exceeds"});
  // A sparse 200 MiB file: the length fits in the file but is over the limit, and must not be allocated.
  const std::string p = path("sparse.safetensors");
  write_file(p, le64(150u << 20));
  fs::resize_file(p, 200u << 20);
  const std::string msg = error_of([&] { load_safetensors(p); });
  EXPECT_NE(msg.find("exceeds the limit"), std::string::npos) << msg;
}

TEST_F(SafetensorsTest, RejectsMalformedHeaders) {
  const std::string data8(8, '\0');
  expect_rejected(raw_file(R"({"x": [1, 2)", data8), {"not valid JSON"});
  expect_rejected(raw_file("[1, 2]", ""), {"must be a JSON object"});
  expect_rejected(raw_file("{\"x\xff\": 1}", ""), {"not valid JSON"});
  expect_rejected(raw_file(R"({"x": 3})", ""), {"entry 'x'", "expected an object"});
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[2]}})", data8),
                  {"entry 'x'", "needs dtype, shape and data_offsets"});
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", data8),
                  {"entry 'x'", "unknown field 'extra'"});
  expect_rejected(raw_file(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8), {"empty name"});
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           data8),
                  {"entry 'x' appears more than once"});
  expect_rejected(raw_file(R"({"__metadata__":{"a":1}})", ""), {"__metadata__ value of 'a' must be a string"});
  expect_rejected(raw_file(R"({"__metadata__":[]})", ""), {"__metadata__ must be an object"});
  // Deep nesting would exhaust the stack in a recursive JSON walk; brackets inside strings do not count.
  expect_rejected(raw_file(R"({"x":)" + std::string(1000000, '[') + std::string(1000000, ']') + "}", ""),
                  {"header nests JSON deeper than 16 levels"});
  const std::string brackets = R"({"__metadata__":{"b":"[[[[[[[[[[[[[[[[[[[[\"{{{{{{{{{{{{{{{{{{{{"}})";
  write_file(path("brackets.safetensors"), raw_file(brackets, ""));
  EXPECT_EQ(load_safetensors(path("brackets.safetensors")).metadata.at("b"),
            "[[[[[[[[[[[[[[[[[[[[\"{{{{{{{{{{{{{{{{{{{{");
}

TEST_F(SafetensorsTest, RejectsBadEntries) {
  const std::string data8(8, '\0');
  const auto one = [](const std::string& entry) { return R"({"x":)" + entry + "}"; };
  expect_rejected(raw_file(one(R"({"dtype":"F16","shape":[4],"data_offsets":[0,8]})"), data8),
                  {"entry 'x'", "unsupported dtype \"F16\""});
  expect_rejected(raw_file(one(R"({"dtype":7,"shape":[2],"data_offsets":[0,8]})"), data8), {"unsupported dtype 7"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), data8),
                  {"entry 'x'", "needs 12 bytes", "hold 8"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"), data8),
                  {"entry 'x'", "non-negative integers"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})"), data8),
                  {"non-negative integers"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})"), data8),
                  {"shape must be an array"});
  std::string dims65 = "[";
  for (int i = 0; i < 65; ++i) dims65 += "1,";
  dims65.back() = ']';
  expect_rejected(raw_file(one(R"({"dtype":"U8","shape":)" + dims65 + R"(,"data_offsets":[0,1]})"), "x"),
                  {"shape has 65 dimensions, more than 64"});
  expect_rejected(
      raw_file(one(R"({"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]})"), data8),
      {"more elements than fit in 64 bits"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]})"), data8),
                  {"more bytes than fit in 64 bits"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), data8),
                  {"entry 'x'", "[0, 16] go past the end of the 8-byte data buffer"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":[0],"data_offsets":[8,4]})"), data8),
                  {"end before they begin"});
  expect_rejected(raw_file(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), data8),
                  {"data_offsets must be [begin, end]"});
}

TEST_F(SafetensorsTest, RejectsOverlapsAndGaps) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           std::string(12, '\0')),
                  {"entry 'b' (bytes [4, 12)) overlaps entry 'a' (bytes [0, 8))"});
  // A zero-size entry inside another one also counts as an overlap, as in the reference implementation.
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                           std::string(8, '\0')),
                  {"overlaps"});
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           std::string(12, '\0')),
                  {"bytes [4, 8) of the data buffer belong to no tensor (gap before entry 'b')"});
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')),
                  {"bytes [0, 4)", "gap before entry 'a'"});
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(8, '\0')),
                  {"bytes [4, 8) at the end of the data buffer belong to no tensor"});
}

TEST_F(SafetensorsTest, ReturnsTensorsInFileOrderFromAnyWriter) {
  // Header keys out of data order, an unpadded header, and a zero-size entry: all legal.
  const std::string data = std::string("\x01\x02", 2) + std::string("\x00\x00\x80\x3f", 4);
  write_file(path("o.safetensors"), raw_file(R"({"z":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                                             R"("e":{"dtype":"I64","shape":[3,0],"data_offsets":[2,2]},)"
                                             R"("a":{"dtype":"F32","shape":[],"data_offsets":[2,6]}})",
                                             data));
  const SafetensorsFile f = load_safetensors(path("o.safetensors"));
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors[0].name, "z");
  EXPECT_EQ(f.tensors[1].name, "e");
  EXPECT_EQ(f.tensors[2].name, "a");
  EXPECT_EQ(f.tensors[0].tensor.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2}));
  EXPECT_EQ(f.tensors[1].tensor.shape(), (Shape{3, 0}));
  EXPECT_EQ(f.tensors[2].tensor.item(), 1.0);
}

// Reads the file written by scripts/dev/check_safetensors.py with the Python `safetensors` package.
TEST_F(SafetensorsTest, ReadsExternalReferenceFile) {
  const char* external = std::getenv("SPIKEGRAD_READ_SAFETENSORS");
  if (!external) GTEST_SKIP() << "set SPIKEGRAD_READ_SAFETENSORS to a file from scripts/dev/check_safetensors.py";
  const SafetensorsFile f = load_safetensors(external);
  for (const NamedTensor& nt : f.tensors) std::cout << "  " << nt.name << ": " << nt.tensor << "\n";
  expect_same_tensors(reference_tensors(), f.tensors);
  EXPECT_EQ(f.metadata, kReferenceMetadata);
}

TEST(StrictLoadTest, CopiesEveryTensorByName) {
  const NamedTensors model = {{"w", Tensor::zeros({2, 3})}, {"n", Tensor::zeros({}, DType::I64)}};
  const NamedTensors checkpoint = {{"n", Tensor::from_vector<int64_t>({42}, {})},
                                   {"w", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3})}};
  strict_copy(model, checkpoint, "resume");
  EXPECT_EQ(model[0].tensor.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(model[1].tensor.item(), 42.0);
  EXPECT_FALSE(model[0].tensor.same(checkpoint[1].tensor));  // copied into the model's storage, not aliased
}

TEST(StrictLoadTest, ListsEveryMismatchAndCopiesNothing) {
  const NamedTensors model = {{"a", Tensor::zeros({2})},
                              {"b", Tensor::zeros({4})},
                              {"conv.weight", Tensor::zeros({64, 3, 3, 3})},
                              {"e", Tensor::zeros({2})},
                              {"m", Tensor::zeros({5})}};
  const NamedTensors checkpoint = {{"a", Tensor::full({2}, 1.0)},
                                   {"x", Tensor::zeros({1})},
                                   {"conv.weight", Tensor::zeros({64, 1, 3, 3})},
                                   {"e", Tensor::zeros({2}, DType::F64)},
                                   {"y", Tensor::zeros({1})}};
  const std::string msg = error_of([&] { strict_copy(model, checkpoint, "load model.safetensors"); });
  EXPECT_EQ(msg.substr(0, msg.find(" [engine/")),
            "load model.safetensors: checkpoint does not match the model: missing [b, m]; unexpected [x, y]; "
            "shape mismatch [conv.weight: expected (64,3,3,3), got (64,1,3,3)]; "
            "dtype mismatch [e: expected float32, got float64]");
  EXPECT_EQ(model[0].tensor.to_vector<float>(), (std::vector<float>{0, 0}));  // nothing copied
}

TEST(StrictLoadTest, RejectsDuplicateNames) {
  const NamedTensors model = {{"a", Tensor::zeros({2})}};
  const NamedTensors twice = {{"a", Tensor::zeros({2})}, {"a", Tensor::zeros({2})}};
  EXPECT_NE(error_of([&] { strict_copy(model, twice, "resume"); }).find("checkpoint lists tensor 'a' more than once"),
            std::string::npos);
  EXPECT_NE(error_of([&] { strict_copy(twice, model, "resume"); }).find("model lists tensor 'a' more than once"),
            std::string::npos);
}

}  // namespace
}  // namespace spikegrad
