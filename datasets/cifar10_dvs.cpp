#include "datasets/cifar10_dvs.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "datasets/aedat.h"
#include "datasets/event_frames.h"
#include "engine/check.h"
#include "engine/safetensors.h"

namespace spikegrad {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCacheFormat = "spikegrad-cifar10-dvs-frames";
constexpr const char* kCacheFormatVersion = "1";
constexpr int64_t kMaxTimeSteps = 1000;

// One split scheme: the share num/den of each group (the whole dataset, or each class) that comes first in
// group order (random order for the random scheme) goes to `first_split`, the rest to the other split.
struct SplitScheme {
  const char* name;
  bool per_class;
  int64_t num, den;
  Split first_split;
};

const SplitScheme kSchemes[] = {
    {"random-9000-1000", false, 9, 10, Split::Train},
    {"per-class-700-300", true, 7, 10, Split::Train},
    {"per-class-100-test", true, 1, 10, Split::Test},
    {"per-class-90-10", true, 9, 10, Split::Train},
};

const SplitScheme& find_scheme(const std::string& name) {
  for (const SplitScheme& s : kSchemes)
    if (name == s.name) return s;
  std::ostringstream names;
  for (const SplitScheme& s : kSchemes) names << (&s == kSchemes ? "" : "|") << s.name;
  SG_FAIL("cifar10-dvs: split must be one of " << names.str() << ", got '" << name << "'");
}

// round(n * num / den) in integers, halves up.
int64_t share(int64_t n, int64_t num, int64_t den) { return (2 * n * num + den) / (2 * den); }

void check_options(const DvsOptions& o) {
  SG_CHECK(o.time_steps >= 1 && o.time_steps <= kMaxTimeSteps,
           "cifar10-dvs: time_steps must be in [1, " << kMaxTimeSteps << "], got " << o.time_steps);
  parse_split_by(o.split_by);
  SG_CHECK(o.frame_size >= 1 && o.frame_size <= kDvs128Side,
           "cifar10-dvs: frame_size must be in [1, 128] (frames are resized down from 128x128), got " << o.frame_size);
  find_scheme(o.split);
  SG_CHECK(o.frame_norm == "max" || o.frame_norm == "none",
           "cifar10-dvs: frame_norm must be max or none, got '" << o.frame_norm << "'");
  SG_CHECK(o.threads >= 0 && o.threads <= 256, "cifar10-dvs: threads must be in [0, 256], got " << o.threads);
}

// The number that ends a file stem after '_' (or the whole stem), or -1.
int64_t trailing_number(const std::string& stem) {
  size_t start = stem.size();
  while (start > 0 && stem[start - 1] >= '0' && stem[start - 1] <= '9') --start;
  const size_t digits = stem.size() - start;
  if (digits == 0 || digits > 9 || (start > 0 && stem[start - 1] != '_')) return -1;
  return std::stoll(stem.substr(start));
}

// FNV-1a over "label/name size\n" of every file: the cache's identity of the source folder.
std::string fingerprint(const std::vector<DvsFile>& files) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const DvsFile& f : files) {
    const std::string line =
        std::to_string(f.label) + "/" + fs::path(f.path).filename().string() + " " + std::to_string(f.bytes) + "\n";
    for (const char c : line) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  }
  std::ostringstream out;
  out << std::hex;
  out.width(16);
  out.fill('0');
  out << h;
  return out.str();
}

// The metadata that must match for a cache to be used: conventions, sizes and the source fingerprint.
std::map<std::string, std::string> cache_identity(const DvsOptions& o, const std::vector<DvsFile>& files) {
  return {
      {"format", kCacheFormat},
      {"format_version", kCacheFormatVersion},
      {"time_steps", std::to_string(o.time_steps)},
      {"split_by", o.split_by},
      {"height", std::to_string(o.frame_size)},
      {"width", std::to_string(o.frame_size)},
      {"interpolation", "area: torch adaptive_avg_pool2d, rows [floor(i*128/S), ceil((i+1)*128/S)), sum/kh/kw"},
      {"event_convention",
       "spikingjelly: p = 1 - (a & 1), x (column) = 127 - ((a >> 8) & 127), y (row) = 127 - ((a >> 1) & 127), "
       "bits above 14 ignored"},
      {"timestamp_unwrap", "a decrease > 2^31 us adds 2^32; smaller decreases kept (out of order)"},
      {"axis_order", "N,T,P,H,W"},
      {"normalisation", o.frame_norm == "max" ? "max: each 128x128 frame (both polarities) divided by its maximum "
                                                "before the resize (0 stays 0); values in [0,1]"
                                              : "none: event counts per frame, area-averaged by the resize"},
      {"source_files", std::to_string(files.size())},
      {"source_fingerprint", fingerprint(files)},
  };
}

struct FrameCache {
  Tensor frames, labels, file_index, event_counts;
  std::map<std::string, std::string> metadata;
  std::string status;  // "loaded", "built", "rebuilt (stale: ...)"
};

struct FileStats {
  int64_t events = 0, wraps = 0, out_of_order = 0, high_bits = 0;
};

FrameCache build_cache(const std::vector<DvsFile>& files, const DvsOptions& o) {
  const int64_t n = int64_t(files.size()), t = o.time_steps, s = o.frame_size;
  const SplitBy split_by = parse_split_by(o.split_by);
  const int64_t sample = t * 2 * s * s;
  FrameCache cache;
  cache.frames = Tensor::empty({n, t, 2, s, s}, DType::F32);
  float* frames = cache.frames.data<float>();
  std::vector<FileStats> stats(static_cast<size_t>(n));

  const int64_t hardware = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()));
  const int64_t workers = std::min(n, o.threads > 0 ? o.threads : std::min<int64_t>(4, hardware));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto work = [&] {
    std::vector<float> full(size_t(t * 2 * kDvs128Side * kDvs128Side));
    for (int64_t i = next++; i < n && !failed; i = next++) {
      try {
        const DvsEvents events = read_aedat2(files[size_t(i)].path);
        integrate_events(events, t, split_by, full.data());
        if (o.frame_norm == "max") normalize_frames_by_max(full.data(), t, 2 * kDvs128Side * kDvs128Side);
        area_resize(full.data(), t * 2, kDvs128Side, kDvs128Side, frames + i * sample, s, s);
        stats[size_t(i)] = {int64_t(events.size()), events.timestamp_wraps, events.out_of_order_events,
                            events.high_bit_events};
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (std::thread& th : pool) th.join();
  if (first_error) std::rethrow_exception(first_error);

  cache.labels = Tensor::empty({n}, DType::I32);
  cache.file_index = Tensor::empty({n}, DType::I64);
  cache.event_counts = Tensor::empty({n}, DType::I64);
  FileStats total;
  int64_t empty = 0;
  for (int64_t i = 0; i < n; ++i) {
    cache.labels.data<int32_t>()[i] = files[size_t(i)].label;
    cache.file_index.data<int64_t>()[i] = files[size_t(i)].index;
    cache.event_counts.data<int64_t>()[i] = stats[size_t(i)].events;
    total.events += stats[size_t(i)].events;
    total.wraps += stats[size_t(i)].wraps;
    total.out_of_order += stats[size_t(i)].out_of_order;
    total.high_bits += stats[size_t(i)].high_bits;
    empty += stats[size_t(i)].events == 0;
  }
  cache.metadata = cache_identity(o, files);
  cache.metadata["total_events"] = std::to_string(total.events);
  cache.metadata["samples_without_events"] = std::to_string(empty);
  cache.metadata["timestamp_wraps"] = std::to_string(total.wraps);
  cache.metadata["out_of_order_events"] = std::to_string(total.out_of_order);
  cache.metadata["high_bit_events"] = std::to_string(total.high_bits);
  return cache;
}

const Tensor& find_tensor(const SafetensorsFile& file, const std::string& name, const std::string& path) {
  for (const NamedTensor& t : file.tensors)
    if (t.name == name) return t.tensor;
  SG_FAIL("cifar10-dvs: frame cache '" << path << "' has no tensor '" << name
                                       << "' (corrupt or from another program; delete it to rebuild)");
}

// Checks a cache whose metadata matches against the scanned files; any disagreement is corruption.
FrameCache validate_loaded(const SafetensorsFile& file, const std::vector<DvsFile>& files, const DvsOptions& o,
                           const std::string& path) {
  const int64_t n = int64_t(files.size()), s = o.frame_size;
  FrameCache cache;
  cache.frames = find_tensor(file, "frames", path);
  cache.labels = find_tensor(file, "labels", path);
  cache.file_index = find_tensor(file, "file_index", path);
  cache.event_counts = find_tensor(file, "event_counts", path);
  cache.metadata = file.metadata;
  const Shape want{n, o.time_steps, 2, s, s};
  const auto bad = [&](const std::string& what) {
    SG_FAIL("cifar10-dvs: frame cache '" << path << "' is corrupt: " << what << "; delete it to rebuild");
  };
  if (cache.frames.dtype() != DType::F32 || cache.frames.shape() != want)
    bad("frames are " + std::string(dtype_name(cache.frames.dtype())) + " " + shape_str(cache.frames.shape()) +
        ", expected float32 " + shape_str(want));
  for (const Tensor* t : {&cache.labels, &cache.file_index, &cache.event_counts})
    if (t->ndim() != 1 || t->size(0) != n) bad("a per-sample tensor is " + shape_str(t->shape()) + ", expected (" + std::to_string(n) + ")");
  if (cache.labels.dtype() != DType::I32 || cache.file_index.dtype() != DType::I64 ||
      cache.event_counts.dtype() != DType::I64)
    bad("labels must be int32, file_index and event_counts int64");
  for (int64_t i = 0; i < n; ++i)
    if (cache.labels.data<int32_t>()[i] != files[size_t(i)].label ||
        cache.file_index.data<int64_t>()[i] != files[size_t(i)].index)
      bad("sample " + std::to_string(i) + " does not belong to '" + files[size_t(i)].path + "'");
  return cache;
}

FrameCache load_or_build(const std::string& dir, const std::vector<DvsFile>& files, const DvsOptions& o) {
  const std::string path = cifar10_dvs_cache_path(dir, o);
  const std::map<std::string, std::string> identity = cache_identity(o, files);
  std::string status = "built";
  std::error_code ec;
  if (fs::exists(path, ec)) {
    SafetensorsFile file;
    try {
      file = load_safetensors(path);
    } catch (const Error& e) {
      SG_FAIL("cifar10-dvs: cannot read the frame cache '" << path << "' (" << e.what() << "); delete it to rebuild");
    }
    const auto format = file.metadata.find("format");
    SG_CHECK(format != file.metadata.end() && format->second == kCacheFormat,
             "cifar10-dvs: '" << path << "' is not a spikegrad CIFAR10-DVS frame cache (metadata 'format' is '"
                              << (format == file.metadata.end() ? std::string("missing") : format->second)
                              << "'); move or delete it");
    std::string stale;
    for (const auto& [key, value] : identity) {
      const auto found = file.metadata.find(key);
      const std::string was = found == file.metadata.end() ? "missing" : found->second;
      if (was != value) {
        stale = key + " was '" + was + "', now '" + value + "'";
        break;
      }
    }
    if (stale.empty()) {
      FrameCache cache = validate_loaded(file, files, o, path);
      cache.status = "loaded";
      return cache;
    }
    status = "rebuilt (stale: " + stale + ")";
  }
  const fs::path folder = fs::path(path).parent_path();
  fs::create_directories(folder, ec);
  SG_CHECK(!ec, "cifar10-dvs: cannot create the frame cache folder '" << folder.string() << "': " << ec.message());
  FrameCache cache = build_cache(files, o);
  save_safetensors(path,
                   {{"frames", cache.frames}, {"labels", cache.labels}, {"file_index", cache.file_index},
                    {"event_counts", cache.event_counts}},
                   cache.metadata);
  cache.status = status;
  return cache;
}

class Cifar10DvsSource final : public SampleSource {
 public:
  Cifar10DvsSource(Tensor frames, std::vector<std::string> files, std::string cache_path, bool augment)
      : frames_(std::move(frames)), files_(std::move(files)), cache_path_(std::move(cache_path)), augment_(augment) {
    layout_ = {frames_.size(1), frames_.size(2), frames_.size(3), frames_.size(4)};
  }
  int64_t size() const override { return frames_.size(0); }
  SampleLayout layout() const override { return layout_; }
  uint64_t draws_per_sample() const override { return kDvsAugmentDraws; }
  void load(int64_t index, SampleMode mode, Generator& gen, float* dst) const override {
    SG_CHECK(index >= 0 && index < size(), "cifar10-dvs: sample " << index << " is outside [0, " << size() << ")");
    const int64_t numel = layout_.numel();
    const float* src = frames_.data<float>() + index * numel;
    if (mode == SampleMode::Train && augment_) {
      apply_dvs_augmentation(src, dst, layout_.time_steps * layout_.channels, layout_.height, layout_.width,
                             draw_dvs_augmentation(gen));
    } else {
      std::memcpy(dst, src, size_t(numel) * sizeof(float));
    }
  }
  std::string describe(int64_t index) const override {
    if (index < 0 || index >= size()) return "cifar10-dvs sample " + std::to_string(index) + " (out of range)";
    return "cifar10-dvs sample " + std::to_string(index) + " of '" + cache_path_ + "' (from '" +
           files_[size_t(index)] + "')";
  }

 private:
  Tensor frames_;  // (n, T, 2, S, S) float32, read-only after construction
  std::vector<std::string> files_;
  std::string cache_path_;
  bool augment_;
  SampleLayout layout_;
};

}  // namespace

const std::vector<std::string>& cifar10_dvs_classes() {
  static const std::vector<std::string> classes = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                   "dog",      "frog",       "horse", "ship", "truck"};
  return classes;
}

const std::vector<std::string>& cifar10_dvs_split_schemes() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const SplitScheme& s : kSchemes) out.push_back(s.name);
    return out;
  }();
  return names;
}

std::vector<DvsFile> scan_cifar10_dvs(const std::string& dir) {
  std::error_code ec;
  SG_CHECK(fs::is_directory(dir, ec), "cifar10-dvs: dataset folder '" << dir << "' does not exist or is not a folder");
  std::vector<DvsFile> files;
  const std::vector<std::string>& classes = cifar10_dvs_classes();
  for (size_t label = 0; label < classes.size(); ++label) {
    const fs::path folder = fs::path(dir) / classes[label];
    SG_CHECK(fs::is_directory(folder, ec), "cifar10-dvs: class folder '"
                                               << folder.string() << "' is missing; expected <dir>/<class>/*.aedat "
                                               << "for the 10 classes airplane, automobile, ..., truck");
    std::vector<DvsFile> in_class;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path p = it->path();
      std::error_code type_ec;  // a broken link is skipped, not a listing error
      if (p.extension() != ".aedat" || !it->is_regular_file(type_ec)) continue;
      const int64_t index = trailing_number(p.stem().string());
      SG_CHECK(index >= 0, "cifar10-dvs: '" << p.string() << "': expected a name ending in _<number>.aedat "
                                            << "(like cifar10_" << classes[label] << "_0.aedat)");
      std::error_code size_ec;
      const uintmax_t bytes = fs::file_size(p, size_ec);
      SG_CHECK(!size_ec, "cifar10-dvs: cannot read the size of '" << p.string() << "': " << size_ec.message());
      in_class.push_back({p.string(), int32_t(label), index, uint64_t(bytes)});
    }
    SG_CHECK(!ec, "cifar10-dvs: cannot list '" << folder.string() << "': " << ec.message());
    SG_CHECK(!in_class.empty(), "cifar10-dvs: class folder '" << folder.string() << "' holds no .aedat files");
    std::sort(in_class.begin(), in_class.end(), [](const DvsFile& a, const DvsFile& b) { return a.index < b.index; });
    for (size_t i = 1; i < in_class.size(); ++i)
      SG_CHECK(in_class[i].index != in_class[i - 1].index, "cifar10-dvs: '" << in_class[i - 1].path << "' and '"
                                                                              << in_class[i].path << "' have the same number "
                                                                              << in_class[i].index);
    files.insert(files.end(), in_class.begin(), in_class.end());
  }
  return files;
}

std::vector<int64_t> cifar10_dvs_split_indices(const std::vector<DvsFile>& files, const std::string& scheme_name,
                                               uint64_t seed, Split split) {
  const SplitScheme& scheme = find_scheme(scheme_name);
  const int64_t n = int64_t(files.size());
  // Groups in their order: each class in file order, or all samples in a seeded random order.
  std::vector<std::vector<int64_t>> groups;
  if (scheme.per_class) {
    for (int64_t i = 0; i < n; ++i) {
      const size_t label = size_t(files[size_t(i)].label);
      if (groups.size() <= label) groups.resize(label + 1);
      groups[label].push_back(i);
    }
  } else {
    // Tag 'DVSS' keeps this stream apart from every other use of the same seed.
    Generator gen(derive_seed(seed, 0x44565353u, 0));
    groups.push_back(random_permutation(n, gen));
  }
  std::vector<int64_t> out;
  for (const std::vector<int64_t>& group : groups) {
    const int64_t first = share(int64_t(group.size()), scheme.num, scheme.den);
    const bool take_first = split == scheme.first_split;
    out.insert(out.end(), group.begin() + (take_first ? 0 : first), take_first ? group.begin() + first : group.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string cifar10_dvs_cache_path(const std::string& dir, const DvsOptions& o) {
  const fs::path folder = o.cache_dir.empty() ? fs::path(dir) / "frames_cache" : fs::path(o.cache_dir);
  const std::string s = std::to_string(o.frame_size);
  return (folder / ("cifar10-dvs_T" + std::to_string(o.time_steps) + "_" + o.split_by + "_" + s + "x" + s +
                    (o.frame_norm == "none" ? "_none" : "") + ".safetensors"))
      .string();
}

DvsSplitData load_cifar10_dvs(const std::string& dir, Split split, const DvsOptions& o) {
  check_options(o);
  const std::vector<DvsFile> files = scan_cifar10_dvs(dir);
  const std::vector<int64_t> selected = cifar10_dvs_split_indices(files, o.split, o.split_seed, split);
  SG_CHECK(!selected.empty(), "cifar10-dvs: split " << o.split << " leaves no " << split_name(split) << " samples of the "
                                                    << files.size() << " files in '" << dir << "'");
  const FrameCache cache = load_or_build(dir, files, o);

  const int64_t n = int64_t(selected.size()), s = o.frame_size;
  const int64_t sample = o.time_steps * 2 * s * s;
  Tensor frames = Tensor::empty({n, o.time_steps, 2, s, s}, DType::F32);
  DvsSplitData out;
  out.labels = Tensor::empty({n}, DType::I32);
  std::vector<std::string> names;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = selected[size_t(k)];
    std::memcpy(frames.data<float>() + k * sample, cache.frames.data<float>() + i * sample, size_t(sample) * sizeof(float));
    out.labels.data<int32_t>()[k] = files[size_t(i)].label;
    names.push_back(files[size_t(i)].path);
  }
  const std::string path = cifar10_dvs_cache_path(dir, o);
  out.source = std::make_shared<Cifar10DvsSource>(frames, std::move(names), path, o.augment);

  const auto meta = [&](const char* key) {
    const auto it = cache.metadata.find(key);
    return it == cache.metadata.end() ? std::string("?") : it->second;
  };
  std::ostringstream d;
  d << "cifar10-dvs " << split_name(split) << ": " << n << " of " << files.size() << " samples, split " << o.split;
  if (!find_scheme(o.split).per_class) d << " (seed " << o.split_seed << ")";
  d << "; frames (T=" << o.time_steps << ", 2, " << s << ", " << s << ") split_by " << o.split_by
    << ", area resize, " << (o.frame_norm == "max" ? "each frame / its max" : "event counts")
    << ", SpikingJelly orientation/polarity; augmentation "
    << (o.augment ? "flip + roll 5 (train)" : "off") << "; cache '" << path << "' " << cache.status << "; "
    << meta("total_events") << " events, " << meta("samples_without_events") << " samples without events, "
    << meta("timestamp_wraps") << " timestamp wraps, " << meta("out_of_order_events") << " out-of-order events, "
    << meta("high_bit_events") << " addresses with bits above 14";
  out.description = d.str();
  return out;
}

}  // namespace spikegrad
