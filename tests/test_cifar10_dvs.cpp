// CIFAR10-DVS: AEDAT 2.0 files written byte by byte (so orientation, polarity, timestamp wrap and frame counts
// are checked exactly), frame integration by number and time, the area resize on hand values, the folder scan,
// the split schemes, the frame cache (round trip, staleness, corruption), the augmentation and every bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "datasets/aedat.h"
#include "datasets/cifar10_dvs.h"
#include "datasets/event_frames.h"
#include "engine/safetensors.h"
#include "support/op_cases.h"
#include "support/temp_dir.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;


// A raw event: sensor coordinates and polarity bit as the address encodes them, plus extra high bits.
struct RawEvent {
  uint32_t sensor_x, sensor_y, sensor_p, t, high_bits = 0;
};

uint32_t address_of(const RawEvent& e) { return e.high_bits | (e.sensor_y << 8) | (e.sensor_x << 1) | e.sensor_p; }

void put_be32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(uint8_t(v >> shift));
}

const char kHeader[] = "#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n";

Bytes aedat_bytes(const std::vector<RawEvent>& events, const std::string& header = kHeader) {
  Bytes b(header.begin(), header.end());
  for (const RawEvent& e : events) {
    put_be32(b, address_of(e));
    put_be32(b, e.t);
  }
  return b;
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

DvsEvents events_at(const std::vector<int64_t>& t, uint8_t x = 0, uint8_t y = 0, uint8_t p = 0) {
  DvsEvents e;
  e.t = t;
  e.x.assign(t.size(), x);
  e.y.assign(t.size(), y);
  e.p.assign(t.size(), p);
  return e;
}

constexpr int64_t kPlane = 128 * 128;

TEST(Cifar10Dvs, ParsesEventsExactlyWithConventionAndWrap) {
  TempDir dir;
  const std::vector<RawEvent> raw = {
      {0, 0, 0, 100},                  // -> x 127, y 127, p 1
      {5, 10, 1, 200},                 // -> x 117, y 122, p 0
      {1, 2, 0, 0xFFFFFFF0u, 1u << 15},  // bit 15 set: ignored, counted
      {127, 127, 1, 5},                // a wrap of the 32-bit counter: + 2^32
      {3, 4, 0, 3},                    // 2 us earlier: out of order, kept as it is
  };
  const std::string path = dir.file("sample.aedat");
  write_file(path, aedat_bytes(raw));
  const DvsEvents e = read_aedat2(path);
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e.header_bytes, int64_t(sizeof(kHeader) - 1));
  const int64_t wrap = int64_t(1) << 32;
  EXPECT_EQ(e.t, (std::vector<int64_t>{100, 200, 0xFFFFFFF0ll, wrap + 5, wrap + 3}));
  EXPECT_EQ(e.x, (std::vector<uint8_t>{127, 117, 125, 0, 123}));
  EXPECT_EQ(e.y, (std::vector<uint8_t>{127, 122, 126, 0, 124}));
  EXPECT_EQ(e.p, (std::vector<uint8_t>{1, 0, 1, 0, 1}));
  EXPECT_EQ(e.timestamp_wraps, 1);
  EXPECT_EQ(e.out_of_order_events, 1);
  EXPECT_EQ(e.high_bit_events, 1);

  // The same bytes through the in-memory entry point, and a decoded address on its own.
  const Bytes bytes = aedat_bytes(raw);
  EXPECT_EQ(parse_aedat2(bytes.data(), bytes.size(), "mem").t, e.t);
  const DvsAddress a = decode_dvs128_address((7u << 8) | (9u << 1) | 1u);
  EXPECT_EQ(int(a.x), 120);
  EXPECT_EQ(int(a.y), 118);
  EXPECT_EQ(int(a.p), 0);

  // A header only (no events) is a valid, empty recording; so is a bare magic line with '\n'.
  write_file(path, aedat_bytes({}));
  EXPECT_EQ(read_aedat2(path).size(), 0u);
  write_file(path, aedat_bytes({{1, 1, 1, 7}}, "#!AER-DAT2.0\n"));
  EXPECT_EQ(read_aedat2(path).t, (std::vector<int64_t>{7}));
}

TEST(Cifar10Dvs, BadFilesNameTheFile) {
  TempDir dir;
  const std::string path = dir.file("bad_7.aedat");
  write_file(path, {});
  expect_error([&] { read_aedat2(path); }, {path, "empty"});
  write_file(path, aedat_bytes({{1, 2, 0, 5}}, "#!AER-DAT3.1\r\n"));
  expect_error([&] { read_aedat2(path); }, {path, "#!AER-DAT3.1", "AEDAT 2.0 only"});
  write_file(path, aedat_bytes({{1, 2, 0, 5}}, "hello\n"));
  expect_error([&] { read_aedat2(path); }, {path, "'hello'", "#!AER-DAT2.0"});
  write_file(path, aedat_bytes({{1, 2, 0, 5}}, "#!AER-DAT2.0x\r\n"));
  expect_error([&] { read_aedat2(path); }, {path, "#!AER-DAT2.0"});
  write_file(path, Bytes{'#', '!', 'A', 'E', 'R', '-', 'D', 'A', 'T', '2', '.', '0', '\r', '\n', '#', ' ', 'x'});
  expect_error([&] { read_aedat2(path); }, {path, "no end of line", "truncated header"});
  Bytes odd = aedat_bytes({{1, 2, 0, 5}, {3, 4, 1, 6}});
  odd.resize(odd.size() - 4);  // the last event loses its timestamp
  write_file(path, odd);
  expect_error([&] { read_aedat2(path); }, {path, "12 bytes", "not a whole number of 8-byte events", "1 events and 4"});
  expect_error([&] { read_aedat2(dir.file("missing.aedat")); }, {dir.file("missing.aedat"), "cannot open"});
}

TEST(Cifar10Dvs, FramesByNumberPutTheRemainderInTheLastFrame) {
  // 7 events, T = 3: floor(7/3) = 2 per frame, frames [0,2), [2,4), [4,7).
  DvsEvents e = events_at({10, 20, 30, 40, 50, 60, 70}, 3, 5, 1);
  e.x[6] = 4;  // the last event elsewhere, to see it in frame 2
  EXPECT_EQ(frame_of_events(e, 3, SplitBy::Number), (std::vector<int32_t>{0, 0, 1, 1, 2, 2, 2}));
  std::vector<float> f(size_t(3 * 2 * kPlane), -1.f);
  integrate_events(e, 3, SplitBy::Number, f.data());
  const auto at = [&](int64_t t, int64_t p, int64_t y, int64_t x) { return f[size_t(((t * 2 + p) * 128 + y) * 128 + x)]; };
  EXPECT_EQ(at(0, 1, 5, 3), 2.f);
  EXPECT_EQ(at(1, 1, 5, 3), 2.f);
  EXPECT_EQ(at(2, 1, 5, 3), 2.f);
  EXPECT_EQ(at(2, 1, 5, 4), 1.f);
  double total = 0;
  for (const float v : f) total += v;
  EXPECT_EQ(total, 7.0);  // everything else zero (the -1 fill was overwritten)
  EXPECT_EQ(at(0, 0, 5, 3), 0.f);

  // N < T: frames 0..T-2 are empty windows, the last holds everything; N = 0: T zero frames.
  EXPECT_EQ(frame_of_events(events_at({1, 2}), 3, SplitBy::Number), (std::vector<int32_t>{2, 2}));
  integrate_events(events_at({}), 3, SplitBy::Number, f.data());
  for (const float v : f) ASSERT_EQ(v, 0.f);
  expect_error([&] { frame_of_events(e, 0, SplitBy::Number); }, "time_steps must be >= 1");
}

TEST(Cifar10Dvs, FramesByTimeFollowSpikingJellysWindows) {
  // span 41, T = 4: dt = 10, windows [0,10), [10,20), [20,30), and [30, 41] for the last.
  EXPECT_EQ(frame_of_events(events_at({0, 10, 19, 20, 35, 40, 41}), 4, SplitBy::Time),
            (std::vector<int32_t>{0, 1, 1, 2, 3, 3, 3}));
  // Timestamps keep their offset: only differences matter. An empty window is a zero frame.
  EXPECT_EQ(frame_of_events(events_at({1000, 1001, 1002, 1030}), 3, SplitBy::Time),
            (std::vector<int32_t>{0, 0, 0, 2}));
  // dt = 0 (span < T): every event in the last frame. An out-of-order event before t0 counts as at t0.
  EXPECT_EQ(frame_of_events(events_at({5, 5, 6}), 3, SplitBy::Time), (std::vector<int32_t>{2, 2, 2}));
  EXPECT_EQ(frame_of_events(events_at({100, 90, 125, 200}), 4, SplitBy::Time), (std::vector<int32_t>{0, 0, 1, 3}));

  std::vector<float> f(size_t(3 * 2 * kPlane));
  integrate_events(events_at({1000, 1001, 1002, 1030}, 7, 9, 0), 3, SplitBy::Time, f.data());
  EXPECT_EQ(f[size_t(9 * 128 + 7)], 3.f);
  EXPECT_EQ(f[size_t((2 * 2) * kPlane + 9 * 128 + 7)], 1.f);
  for (int64_t i = 0; i < 2 * kPlane; ++i) ASSERT_EQ(f[size_t(2 * kPlane + i)], 0.f) << "frame 1 must be empty";

  EXPECT_EQ(parse_split_by("time"), SplitBy::Time);
  expect_error([] { parse_split_by("count"); }, {"number|time", "'count'"});
}

TEST(Cifar10Dvs, AreaResizeMatchesAdaptiveAveragePooling) {
  // 5 -> 3: windows [0,2), [1,4), [3,5) (floor(i*5/3), ceil((i+1)*5/3)); input v = 5y + x.
  std::vector<float> in(25), out(9, -1.f);
  for (int i = 0; i < 25; ++i) in[size_t(i)] = float(i);
  area_resize(in.data(), 1, 5, 5, out.data(), 3, 3);
  EXPECT_EQ(out[0], 3.f);      // (0+1+5+6)/4
  EXPECT_EQ(out[4], 12.f);     // rows 1-3, cols 1-3: 108/9
  EXPECT_EQ(out[2], 6.f);      // (3+4+8+9)/4
  EXPECT_EQ(out[7], 19.5f);    // rows 3-4, cols 1-3: 117/6
  EXPECT_EQ(out[3], 10.5f);    // rows 1-3, cols 0-1: 63/6
  EXPECT_EQ(out[8], 21.f);     // (18+19+23+24)/4

  // 128 -> 48: one count at (2, 2) lies in windows rows/cols [0,3) and [2,6); torch divides by kh, then kw.
  std::vector<float> frame(size_t(kPlane), 0.f), small(48 * 48, -1.f);
  frame[2 * 128 + 2] = 1.f;
  area_resize(frame.data(), 1, 128, 128, small.data(), 48, 48);
  EXPECT_EQ(small[0], 1.f / 3.f / 3.f);
  EXPECT_EQ(small[1], 1.f / 3.f / 4.f);
  EXPECT_EQ(small[48], 1.f / 4.f / 3.f);
  EXPECT_EQ(small[49], 1.f / 4.f / 4.f);
  EXPECT_EQ(small[2], 0.f);
  // The order of the two divisions shows in the last bit: 5 counts in a 3x3 window.
  std::fill(frame.begin(), frame.end(), 0.f);
  frame[1 * 128 + 1] = 5.f;
  area_resize(frame.data(), 1, 128, 128, small.data(), 48, 48);
  EXPECT_EQ(small[0], 5.f / 3.f / 3.f);
  EXPECT_NE(small[0], 5.f / 9.f);
  // Uniform input stays uniform; the last window reaches the last pixel.
  std::fill(frame.begin(), frame.end(), 2.f);
  area_resize(frame.data(), 1, 128, 128, small.data(), 48, 48);
  for (const float v : small) ASSERT_EQ(v, 2.f);
}

TEST(Cifar10Dvs, AugmentationFlipsThenRollsCircularly) {
  // One 4x5 plane, v = 10y + x; flip, then roll by (1, -2): out[y][x] = in[(y-1) mod 4][4 - ((x+2) mod 5)].
  std::vector<float> in(20), out(20);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) in[size_t(y * 5 + x)] = float(10 * y + x);
  apply_dvs_augmentation(in.data(), out.data(), 1, 4, 5, {true, 1, -2});
  EXPECT_EQ(out[0], 32.f);   // y 0 <- row 3; x 0 <- flipped col 2 = source col 2
  EXPECT_EQ(out[1], 31.f);   // x 1 <- flipped col 3 = source col 1
  EXPECT_EQ(out[3], 34.f);   // x 3 <- flipped col 0 = source col 4
  EXPECT_EQ(out[5 + 4], 3.f);  // y 1 <- row 0; x 4 <- flipped col 1 = source col 3
  apply_dvs_augmentation(in.data(), out.data(), 1, 4, 5, {false, -1, 2});
  EXPECT_EQ(out[0], 13.f);  // y 0 <- row 1, x 0 <- col 3
  apply_dvs_augmentation(in.data(), out.data(), 1, 4, 5, {false, 0, 0});
  EXPECT_EQ(out, in);

  // Three counters per sample, a pure function of them; every roll in [-5, 5] and both flips occur.
  Generator a(7), b(7);
  a.set_state(7, 300);
  b.set_state(7, 300);
  const DvsAugmentDraw da = draw_dvs_augmentation(a), db = draw_dvs_augmentation(b);
  EXPECT_EQ(a.offset(), 300 + kDvsAugmentDraws);
  EXPECT_EQ(da.flip, db.flip);
  EXPECT_EQ(da.roll_y, db.roll_y);
  EXPECT_EQ(da.roll_x, db.roll_x);
  std::set<int64_t> rolls;
  std::set<bool> flips;
  Generator g(1);
  for (int i = 0; i < 2000; ++i) {
    const DvsAugmentDraw d = draw_dvs_augmentation(g);
    rolls.insert(d.roll_y);
    rolls.insert(d.roll_x);
    flips.insert(d.flip);
  }
  EXPECT_EQ(rolls.size(), 11u);
  EXPECT_EQ(*rolls.begin(), -5);
  EXPECT_EQ(*rolls.rbegin(), 5);
  EXPECT_EQ(flips.size(), 2u);
}

// A dataset folder: `per_class` files per class, numbered 0.. (so 10, 11 sort after 9), each with a few events
// that identify it: sample (c, k) has k+1 events at sensor (c, k), polarity bit c % 2, 10 us apart.
void write_dataset(const fs::path& root, int per_class) {
  for (int c = 0; c < 10; ++c) {
    const fs::path folder = root / cifar10_dvs_classes()[size_t(c)];
    fs::create_directories(folder);
    for (int k = 0; k < per_class; ++k) {
      std::vector<RawEvent> events;
      for (int e = 0; e <= k; ++e) events.push_back({uint32_t(c), uint32_t(k), uint32_t(c % 2), uint32_t(1000 + 10 * e)});
      write_file((folder / ("cifar10_" + cifar10_dvs_classes()[size_t(c)] + "_" + std::to_string(k) + ".aedat")).string(),
                 aedat_bytes(events));
    }
  }
}

DvsOptions small_options(const TempDir& dir) {
  DvsOptions o;
  o.time_steps = 2;
  o.frame_size = 8;
  o.cache_dir = dir.file("cache");
  o.threads = 3;
  return o;
}

TEST(Cifar10Dvs, ScanOrdersByNumberAndSplitsAreExact) {
  TempDir dir;
  write_dataset(dir.path / "data", 12);
  fs::create_directories(dir.path / "data" / "cat" / "notes");  // folders and other files are ignored
  write_file((dir.path / "data" / "cat" / "README.txt").string(), {'x'});
  const std::vector<DvsFile> files = scan_cifar10_dvs((dir.path / "data").string());
  ASSERT_EQ(files.size(), 120u);
  for (size_t i = 0; i < files.size(); ++i) {
    ASSERT_EQ(files[i].label, int32_t(i / 12));
    ASSERT_EQ(files[i].index, int64_t(i % 12)) << files[i].path;
  }
  const auto split = [&](const std::string& scheme, Split s, uint64_t seed = 42) {
    return cifar10_dvs_split_indices(files, scheme, seed, s);
  };
  const auto positions = [&](const std::vector<int64_t>& idx, int label) {
    std::vector<int64_t> out;
    for (const int64_t i : idx)
      if (files[size_t(i)].label == label) out.push_back(files[size_t(i)].index);
    return out;
  };
  // TET: round(0.7 * 12) = 8 first of each class train; TEBN: round(0.1 * 12) = 1 first test; 90/10: 11 train.
  EXPECT_EQ(positions(split("per-class-700-300", Split::Train), 3), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(positions(split("per-class-700-300", Split::Test), 9), (std::vector<int64_t>{8, 9, 10, 11}));
  EXPECT_EQ(positions(split("per-class-100-test", Split::Test), 0), (std::vector<int64_t>{0}));
  EXPECT_EQ(split("per-class-100-test", Split::Train).size(), 110u);
  EXPECT_EQ(positions(split("per-class-90-10", Split::Test), 5), (std::vector<int64_t>{11}));
  for (const std::string& scheme : cifar10_dvs_split_schemes()) {
    const std::vector<int64_t> train = split(scheme, Split::Train), test = split(scheme, Split::Test);
    std::set<int64_t> all(train.begin(), train.end());
    all.insert(test.begin(), test.end());
    EXPECT_EQ(all.size(), 120u) << scheme << ": train and test must be disjoint and cover every sample";
    EXPECT_TRUE(std::is_sorted(train.begin(), train.end())) << scheme;
  }
  // RGA: 108 / 12, a pure function of the seed; another seed gives another split.
  const std::vector<int64_t> test42 = split("random-9000-1000", Split::Test);
  EXPECT_EQ(test42.size(), 12u);
  EXPECT_EQ(split("random-9000-1000", Split::Test), test42);
  EXPECT_NE(split("random-9000-1000", Split::Test, 43), test42);
  std::set<int32_t> labels;  // a permutation of all samples, not the first or last files
  for (const int64_t i : test42) labels.insert(files[size_t(i)].label);
  EXPECT_GT(labels.size(), 3u);
  expect_error([&] { split("random-90-10", Split::Train); }, {"random-9000-1000|per-class-700-300", "'random-90-10'"});
}

TEST(Cifar10Dvs, FolderErrorsNameThePath) {
  TempDir dir;
  const fs::path root = dir.path / "data";
  expect_error([&] { scan_cifar10_dvs(root.string()); }, {root.string(), "does not exist"});
  write_dataset(root, 2);
  fs::remove_all(root / "truck");
  expect_error([&] { scan_cifar10_dvs(root.string()); }, {(root / "truck").string(), "missing"});
  fs::create_directories(root / "truck");
  expect_error([&] { scan_cifar10_dvs(root.string()); }, {(root / "truck").string(), "no .aedat files"});
  write_file((root / "truck" / "cifar10_truck_0.aedat").string(), aedat_bytes({{1, 1, 0, 1}}));
  write_file((root / "truck" / "truck_final.aedat").string(), aedat_bytes({{1, 1, 0, 1}}));
  expect_error([&] { scan_cifar10_dvs(root.string()); }, {"truck_final.aedat", "_<number>.aedat"});
  fs::remove(root / "truck" / "truck_final.aedat");
  write_file((root / "truck" / "other_0.aedat").string(), aedat_bytes({{1, 1, 0, 1}}));
  expect_error([&] { scan_cifar10_dvs(root.string()); }, {"other_0.aedat", "same number 0"});
  fs::remove(root / "truck" / "other_0.aedat");

  // A bad event file fails the cache build with its own name; no cache is left behind.
  Bytes odd = aedat_bytes({{1, 1, 0, 1}});
  odd.push_back(0);
  write_file((root / "dog" / "cifar10_dog_1.aedat").string(), odd);
  DvsOptions o = small_options(dir);
  expect_error([&] { load_cifar10_dvs(root.string(), Split::Train, o); },
               {(root / "dog" / "cifar10_dog_1.aedat").string(), "8-byte events"});
  EXPECT_FALSE(fs::exists(cifar10_dvs_cache_path(root.string(), o)));
  o.split = "per-class-100-test";  // round(0.1 * 2) = 0 test samples per class
  expect_error([&] { load_cifar10_dvs(root.string(), Split::Test, o); }, {"leaves no test samples", root.string()});
  o.time_steps = 0;
  expect_error([&] { load_cifar10_dvs(root.string(), Split::Train, o); }, "time_steps must be in [1, 1000]");
  o.time_steps = 2;
  o.frame_size = 129;
  expect_error([&] { load_cifar10_dvs(root.string(), Split::Train, o); }, "frame_size must be in [1, 128]");
}

TEST(Cifar10Dvs, FramesAreDividedByTheirOwnMaximum) {
  // Two frames of 2 polarity planes of 2 values each: the maximum is taken over both planes of a frame.
  std::vector<float> f = {1, 4, 2, 0, /* frame 1 */ 0, 0, 0, 0};
  normalize_frames_by_max(f.data(), 2, 4);
  EXPECT_EQ(f, (std::vector<float>{0.25f, 1.f, 0.5f, 0.f, 0.f, 0.f, 0.f, 0.f}));  // an empty frame stays 0
  DvsOptions o;
  o.frame_norm = "none";
  EXPECT_NE(cifar10_dvs_cache_path("d", o).find("_48x48_none.safetensors"), std::string::npos);
  o.frame_norm = "sum";
  expect_error([&] { load_cifar10_dvs("d", Split::Train, o); }, "frame_norm must be max or none");
}

// The frames of one file computed directly: the reference the cache must hold.
std::vector<float> expected_frames(const std::string& path, const DvsOptions& o) {
  const DvsEvents events = read_aedat2(path);
  std::vector<float> full(size_t(o.time_steps * 2 * kPlane)), out(size_t(o.time_steps * 2 * o.frame_size * o.frame_size));
  integrate_events(events, o.time_steps, parse_split_by(o.split_by), full.data());
  if (o.frame_norm == "max") normalize_frames_by_max(full.data(), o.time_steps, 2 * kPlane);
  area_resize(full.data(), o.time_steps * 2, 128, 128, out.data(), o.frame_size, o.frame_size);
  return out;
}

std::vector<float> load_sample(const SampleSource& source, int64_t i, SampleMode mode, Generator& gen) {
  std::vector<float> out(size_t(source.layout().numel()));
  source.load(i, mode, gen, out.data());
  return out;
}

TEST(Cifar10Dvs, CacheRoundTripsAndIsRebuiltWhenStale) {
  TempDir dir;
  const fs::path root = dir.path / "data";
  write_dataset(root, 10);
  DvsOptions o = small_options(dir);
  o.split = "per-class-700-300";
  const DvsSplitData first = load_cifar10_dvs(root.string(), Split::Test, o);
  const std::string cache = cifar10_dvs_cache_path(root.string(), o);
  EXPECT_EQ(fs::path(cache).filename().string(), "cifar10-dvs_T2_number_8x8.safetensors");
  EXPECT_NE(first.description.find("cache '" + cache + "' built"), std::string::npos) << first.description;
  EXPECT_NE(first.description.find("split per-class-700-300"), std::string::npos) << first.description;
  ASSERT_EQ(first.source->size(), 30);
  const SampleLayout layout = first.source->layout();
  EXPECT_EQ(layout.time_steps, 2);
  EXPECT_EQ(layout.channels, 2);
  EXPECT_EQ(layout.height, 8);
  EXPECT_EQ(layout.width, 8);
  EXPECT_EQ(first.labels.to_vector<int32_t>()[4], 1);  // test samples 7, 8, 9 of each class

  // Sample 4 of the test split is class 1, file 8: its frames are the direct computation's, bit for bit.
  Generator gen(3);
  const std::string file_1_8 = (root / "automobile" / "cifar10_automobile_8.aedat").string();
  EXPECT_EQ(load_sample(*first.source, 4, SampleMode::Evaluate, gen), expected_frames(file_1_8, o));
  EXPECT_NE(first.source->describe(4).find(file_1_8), std::string::npos);

  // The cache records the conventions.
  const SafetensorsFile saved = load_safetensors(cache);
  EXPECT_EQ(saved.metadata.at("axis_order"), "N,T,P,H,W");
  EXPECT_EQ(saved.metadata.at("time_steps"), "2");
  EXPECT_EQ(saved.metadata.at("split_by"), "number");
  EXPECT_EQ(saved.metadata.at("source_files"), "100");
  EXPECT_NE(saved.metadata.at("event_convention").find("127 - ((a >> 8) & 127)"), std::string::npos);
  EXPECT_EQ(saved.metadata.at("total_events"), "550");
  EXPECT_EQ(saved.metadata.at("normalisation").rfind("max:", 0), 0u) << saved.metadata.at("normalisation");
  float peak = 0.f;
  for (float v : saved.tensors.front().tensor.to_vector<float>()) peak = std::max(peak, v);
  EXPECT_LE(peak, 1.f);  // every frame divided by its maximum: the [0,1] space attacks work in
  EXPECT_GT(peak, 0.f);

  // Second load: from the cache, same frames; the train split shares it.
  const DvsSplitData again = load_cifar10_dvs(root.string(), Split::Test, o);
  EXPECT_NE(again.description.find("' loaded"), std::string::npos) << again.description;
  EXPECT_EQ(load_sample(*again.source, 4, SampleMode::Evaluate, gen), expected_frames(file_1_8, o));
  const DvsSplitData train = load_cifar10_dvs(root.string(), Split::Train, o);
  EXPECT_EQ(train.source->size(), 70);
  EXPECT_NE(train.description.find("' loaded"), std::string::npos);

  // Another T is another file; the first stays.
  DvsOptions o3 = o;
  o3.time_steps = 3;
  o3.split_by = "time";
  const DvsSplitData t3 = load_cifar10_dvs(root.string(), Split::Test, o3);
  EXPECT_TRUE(fs::exists(cifar10_dvs_cache_path(root.string(), o3)));
  EXPECT_NE(cifar10_dvs_cache_path(root.string(), o3), cache);
  EXPECT_TRUE(fs::exists(cache));
  EXPECT_EQ(load_sample(*t3.source, 4, SampleMode::Evaluate, gen), expected_frames(file_1_8, o3));

  // A changed source file makes the cache stale: rebuilt, with the new events.
  write_file(file_1_8, aedat_bytes({{100, 100, 1, 5}, {100, 100, 1, 6}}));
  const DvsSplitData rebuilt = load_cifar10_dvs(root.string(), Split::Test, o);
  EXPECT_NE(rebuilt.description.find("rebuilt (stale: source_fingerprint"), std::string::npos) << rebuilt.description;
  EXPECT_EQ(load_sample(*rebuilt.source, 4, SampleMode::Evaluate, gen), expected_frames(file_1_8, o));
  EXPECT_NE(load_sample(*rebuilt.source, 4, SampleMode::Evaluate, gen), load_sample(*first.source, 4, SampleMode::Evaluate, gen));
  EXPECT_NE(load_cifar10_dvs(root.string(), Split::Test, o).description.find("' loaded"), std::string::npos);
}

TEST(Cifar10Dvs, CorruptOrForeignCacheIsAnErrorNamingIt) {
  TempDir dir;
  const fs::path root = dir.path / "data";
  write_dataset(root, 3);
  const DvsOptions o = small_options(dir);
  const std::string cache = cifar10_dvs_cache_path(root.string(), o);
  fs::create_directories(fs::path(cache).parent_path());
  write_file(cache, {1, 2, 3, 4, 5});
  expect_error([&] { load_cifar10_dvs(root.string(), Split::Train, o); }, {cache, "cannot read the frame cache", "delete it"});
  save_safetensors(cache, {{"w", Tensor::zeros({2})}}, {{"format", "pt"}});
  expect_error([&] { load_cifar10_dvs(root.string(), Split::Train, o); }, {cache, "not a spikegrad CIFAR10-DVS frame cache"});
  // A cache whose metadata matches but whose tensors do not: corruption, not staleness.
  fs::remove(cache);
  load_cifar10_dvs(root.string(), Split::Train, o);
  SafetensorsFile f = load_safetensors(cache);
  for (NamedTensor& t : f.tensors)
    if (t.name == "labels") t.tensor.data<int32_t>()[0] = 5;
  save_safetensors(cache, f.tensors, f.metadata);
  expect_error([&] { load_cifar10_dvs(root.string(), Split::Train, o); }, {cache, "is corrupt", "sample 0"});
}

TEST(Cifar10Dvs, SourceAugmentsTrainingSamplesFromItsCounters) {
  TempDir dir;
  const fs::path root = dir.path / "data";
  write_dataset(root, 3);
  DvsOptions o = small_options(dir);
  o.split = "per-class-90-10";  // round(2.7) = 3 train per class: every sample
  const DvsSplitData data = load_cifar10_dvs(root.string(), Split::Train, o);
  const SampleSource& source = *data.source;
  ASSERT_EQ(source.size(), 30);
  EXPECT_EQ(source.draws_per_sample(), kDvsAugmentDraws);
  Generator gen(11);
  const std::vector<float> plain = load_sample(source, 29, SampleMode::Evaluate, gen);
  EXPECT_EQ(gen.offset(), 0u) << "evaluation draws nothing";
  // Training output = apply(draw at the same counters) of the cached frames, and repeats exactly.
  int differing = 0;
  for (uint64_t offset = 0; offset < 60; offset += kDvsAugmentDraws) {
    gen.set_state(11, offset);
    const std::vector<float> train = load_sample(source, 29, SampleMode::Train, gen);
    EXPECT_EQ(gen.offset(), offset + kDvsAugmentDraws);
    Generator replay(11);
    replay.set_state(11, offset);
    std::vector<float> expected(plain.size());
    apply_dvs_augmentation(plain.data(), expected.data(), 4, 8, 8, draw_dvs_augmentation(replay));
    ASSERT_EQ(train, expected) << "offset " << offset;
    differing += train != plain;
  }
  EXPECT_GT(differing, 10);
  // augment = false: training samples are the cached frames.
  o.augment = false;
  const DvsSplitData off = load_cifar10_dvs(root.string(), Split::Train, o);
  EXPECT_EQ(load_sample(*off.source, 29, SampleMode::Train, gen), plain);
  expect_error([&] { load_sample(source, 30, SampleMode::Evaluate, gen); }, "outside [0, 30)");
}

}  // namespace
}  // namespace spikegrad::testing
