#include "datasets/image_folder.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "datasets/jpeg.h"

namespace spikegrad {
namespace {

namespace fs = std::filesystem;

constexpr std::array<float, 3> kImageNetMean{0.485f, 0.456f, 0.406f}, kImageNetStd{0.229f, 0.224f, 0.225f};
constexpr std::array<float, 3> kTinyMean{0.4802f, 0.4481f, 0.3975f}, kTinyStd{0.2770f, 0.2691f, 0.2821f};
constexpr int64_t kMaxScanThreads = 8;

// The scan's result: files relative to the root, their labels, and for each file the folder it came from (its
// "group": a class folder, or the flat val folder), so that a group emptied by skip_corrupt can be named.
struct Scan {
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  std::vector<int32_t> group;
  std::vector<std::string> group_paths;
};

bool is_jpeg_name(const std::string& name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  auto ends_with = [&](const char* ext) {
    const std::string e(ext);
    return lower.size() > e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0;
  };
  return ends_with(".jpg") || ends_with(".jpeg");
}

void require_folder(const fs::path& dir, const char* dataset, const std::string& holds) {
  std::error_code ec;
  SG_CHECK(fs::is_directory(dir, ec),
           dataset << ": missing folder '" << dir.string() << "' (expected " << holds << ")");
}

enum class Entries { Folders, JpegFiles, AllFiles };

// Sorted names of the entries of one kind directly in `dir` (symbolic links followed).
std::vector<std::string> list_dir(const fs::path& dir, const char* dataset, Entries kind) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    const std::string name = it->path().filename().string();
    const bool take = kind == Entries::Folders
                          ? it->is_directory(entry_ec)
                          : it->is_regular_file(entry_ec) && (kind == Entries::AllFiles || is_jpeg_name(name));
    if (take) names.push_back(name);
  }
  SG_CHECK(!ec, dataset << ": cannot list folder '" << dir.string() << "': " << ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// Lines of a text file without line ends; `holds` says what the file should hold, for the error.
std::vector<std::string> read_lines(const fs::path& path, const char* dataset, const std::string& holds) {
  std::ifstream in(path);
  SG_CHECK(in.good(), dataset << ": cannot open '" << path.string() << "' (expected " << holds << ")");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  SG_CHECK(!in.bad(), dataset << ": cannot read '" << path.string() << "'");
  return lines;
}

std::vector<std::string> fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

void add_class_folder(Scan& scan, const fs::path& root, const std::string& relative_dir, int32_t label,
                      const char* dataset) {
  const fs::path dir = root / relative_dir;
  const std::vector<std::string> names = list_dir(dir, dataset, Entries::JpegFiles);
  SG_CHECK(!names.empty(), dataset << ": no JPEG images (*.jpg, *.jpeg) in class folder '" << dir.string() << "'");
  scan.group_paths.push_back(dir.string());
  for (const std::string& name : names) {
    scan.files.push_back(relative_dir + "/" + name);
    scan.labels.push_back(label);
    scan.group.push_back(int32_t(scan.group_paths.size() - 1));
  }
}

// Files listed with labels (flat val folders): sorted by name, every file present, no file twice.
void add_listed_files(Scan& scan, const fs::path& root, const std::string& relative_dir,
                      std::vector<std::pair<std::string, int32_t>> listed, const fs::path& list_path,
                      const std::map<std::string, int64_t>& line_of, const char* dataset) {
  const fs::path dir = root / relative_dir;
  const std::vector<std::string> present_names = list_dir(dir, dataset, Entries::AllFiles);
  const std::set<std::string> present(present_names.begin(), present_names.end());
  std::sort(listed.begin(), listed.end());
  SG_CHECK(!listed.empty(), dataset << ": '" << list_path.string() << "' lists no images");
  scan.group_paths.push_back(dir.string());
  for (size_t k = 0; k < listed.size(); ++k) {
    const std::string& name = listed[k].first;
    SG_CHECK(k == 0 || listed[k - 1].first != name,
             dataset << ": '" << list_path.string() << "' lists '" << name << "' more than once");
    SG_CHECK(present.count(name) != 0, dataset << ": '" << (dir / name).string() << "', listed in '"
                                               << list_path.string() << "' line " << line_of.at(name)
                                               << ", is missing");
    scan.files.push_back(relative_dir + "/" + name);
    scan.labels.push_back(listed[k].second);
    scan.group.push_back(int32_t(scan.group_paths.size() - 1));
  }
}

// ---- Tiny-ImageNet ------------------------------------------------------------------------------------------

std::vector<std::string> read_wnids(const fs::path& root) {
  const fs::path path = root / "wnids.txt";
  std::vector<std::string> wnids;
  const std::vector<std::string> lines = read_lines(path, "tiny-imagenet", "one class wnid per line");
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::vector<std::string> f = fields(lines[n]);
    if (f.empty()) continue;
    SG_CHECK(f.size() == 1, "tiny-imagenet: '" << path.string() << "' line " << n + 1 << ": expected one wnid, got '"
                                               << lines[n] << "'");
    SG_CHECK(std::find(wnids.begin(), wnids.end(), f[0]) == wnids.end(),
             "tiny-imagenet: '" << path.string() << "' line " << n + 1 << " repeats wnid '" << f[0] << "'");
    wnids.push_back(f[0]);
  }
  SG_CHECK(!wnids.empty(), "tiny-imagenet: '" << path.string() << "' lists no classes");
  return wnids;
}

Scan scan_tiny_imagenet(const fs::path& root, Split split, const std::vector<std::string>& wnids) {
  Scan scan;
  if (split == Split::Train) {
    for (size_t c = 0; c < wnids.size(); ++c) {
      const std::string relative = "train/" + wnids[c] + "/images";
      require_folder(root / relative, "tiny-imagenet", "the training images of class " + wnids[c] + " of wnids.txt");
      add_class_folder(scan, root, relative, int32_t(c), "tiny-imagenet");
    }
    return scan;
  }
  require_folder(root / "val" / "images", "tiny-imagenet", "the validation images, used as the test split");
  const fs::path annotations = root / "val" / "val_annotations.txt";
  std::map<std::string, int32_t> label_of_wnid;
  for (size_t c = 0; c < wnids.size(); ++c) label_of_wnid[wnids[c]] = int32_t(c);
  std::vector<std::pair<std::string, int32_t>> listed;
  std::map<std::string, int64_t> line_of;
  const std::vector<std::string> lines = read_lines(annotations, "tiny-imagenet", "lines '<file>\\t<wnid>\\t<box>'");
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::vector<std::string> f = fields(lines[n]);
    if (f.empty()) continue;
    SG_CHECK(f.size() >= 2, "tiny-imagenet: '" << annotations.string() << "' line " << n + 1
                                               << ": expected '<file>\\t<wnid>\\t<box>', got '" << lines[n] << "'");
    const auto label = label_of_wnid.find(f[1]);
    SG_CHECK(label != label_of_wnid.end(), "tiny-imagenet: '" << annotations.string() << "' line " << n + 1
                                                              << " names class '" << f[1] << "', which is not in '"
                                                              << (root / "wnids.txt").string() << "'");
    listed.emplace_back(f[0], label->second);
    line_of.emplace(f[0], int64_t(n + 1));
  }
  add_listed_files(scan, root, "val/images", std::move(listed), annotations, line_of, "tiny-imagenet");
  return scan;
}

// ---- ImageNet -----------------------------------------------------------------------------------------------

Scan scan_imagenet(const fs::path& root, Split split, const std::vector<std::string>& classes,
                   const JpegDatasetOptions& options) {
  Scan scan;
  std::map<std::string, int32_t> label_of_wnid;
  for (size_t c = 0; c < classes.size(); ++c) label_of_wnid[classes[c]] = int32_t(c);
  if (split == Split::Train) {
    for (size_t c = 0; c < classes.size(); ++c)
      add_class_folder(scan, root, "train/" + classes[c], int32_t(c), "imagenet");
    return scan;
  }
  const fs::path val = root / "val";
  require_folder(val, "imagenet", "val/<wnid>/*.JPEG, or val/*.JPEG with a label file");
  const std::vector<std::string> folders = list_dir(val, "imagenet", Entries::Folders);
  if (options.val_label_file.empty() && !folders.empty()) {
    for (const std::string& wnid : folders) {
      const auto label = label_of_wnid.find(wnid);
      SG_CHECK(label != label_of_wnid.end(), "imagenet: class folder '"
                                                 << (val / wnid).string() << "' is not a class of '"
                                                 << (root / "train").string()
                                                 << "' (labels come from its sorted class folders)");
      add_class_folder(scan, root, "val/" + wnid, label->second, "imagenet");
    }
    return scan;
  }
  const fs::path list_path =
      options.val_label_file.empty() ? root / "val_labels.txt" : fs::path(options.val_label_file);
  std::error_code ec;
  SG_CHECK(fs::is_regular_file(list_path, ec),
           "imagenet: missing label file '" << list_path.string() << "' (expected lines '<file> <wnid or 0-based class "
                                            << "index>' for the images directly in '" << val.string()
                                            << "', which has no class folders)");
  std::vector<std::pair<std::string, int32_t>> listed;
  std::map<std::string, int64_t> line_of;
  const std::vector<std::string> lines = read_lines(list_path, "imagenet", "lines '<file> <wnid or class index>'");
  for (size_t n = 0; n < lines.size(); ++n) {
    const std::vector<std::string> f = fields(lines[n]);
    if (f.empty()) continue;
    SG_CHECK(f.size() == 2, "imagenet: '" << list_path.string() << "' line " << n + 1
                                          << ": expected '<file> <wnid or class index>', got '" << lines[n] << "'");
    int32_t label = -1;
    if (std::all_of(f[1].begin(), f[1].end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
      const int64_t index = f[1].size() <= 9 ? std::stoll(f[1]) : int64_t(classes.size());
      SG_CHECK(index < int64_t(classes.size()), "imagenet: '" << list_path.string() << "' line " << n + 1
                                                              << ": class index " << f[1] << " is outside [0, "
                                                              << classes.size() << ")");
      label = int32_t(index);
    } else {
      const auto found = label_of_wnid.find(f[1]);
      SG_CHECK(found != label_of_wnid.end(),
               "imagenet: '" << list_path.string() << "' line " << n + 1 << " names class '" << f[1]
                             << "', which is not a class folder of '" << (root / "train").string() << "'");
      label = found->second;
    }
    listed.emplace_back(f[0], label);
    line_of.emplace(f[0], int64_t(n + 1));
  }
  add_listed_files(scan, root, "val", std::move(listed), list_path, line_of, "imagenet");
  return scan;
}

// ---- skip_corrupt ---------------------------------------------------------------------------------------------

// Decodes every file once at 1/8 scale on `threads` threads; removes the failures from `scan` and returns them.
std::vector<std::string> drop_unreadable(Scan& scan, const std::string& root, int64_t threads, const char* dataset) {
  const size_t n = scan.files.size();
  std::vector<std::string> reasons(n);
  std::atomic<size_t> next{0};
  auto work = [&] {
    std::vector<uint8_t> bytes;
    RgbImage image;
    for (size_t i = next++; i < n; i = next++) {
      const std::string path = root + "/" + scan.files[i];
      try {
        read_file_bytes(path, bytes);
        decode_jpeg_rgb(bytes.data(), bytes.size(), path, 1, image);
      } catch (const std::exception& e) {  // Error, or bad_alloc from a hostile header: the file is unusable
        reasons[i] = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();

  Scan kept;
  kept.group_paths = scan.group_paths;
  std::vector<std::string> skipped;
  std::vector<int64_t> kept_per_group(scan.group_paths.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    if (!reasons[i].empty()) {
      skipped.push_back(reasons[i]);
      continue;
    }
    kept.files.push_back(std::move(scan.files[i]));
    kept.labels.push_back(scan.labels[i]);
    kept.group.push_back(scan.group[i]);
    ++kept_per_group[size_t(scan.group[i])];
  }
  for (size_t g = 0; g < kept_per_group.size(); ++g)
    SG_CHECK(
        kept_per_group[g] > 0, dataset << ": every image in '" << scan.group_paths[g]
                                       << "' is unreadable (skip_corrupt would leave the folder empty); first: " <<
                                   [&] {
                                     for (size_t i = 0; i < n; ++i)
                                       if (scan.group[i] == int32_t(g) && !reasons[i].empty()) return reasons[i];
                                     return std::string();
                                   }());
  scan = std::move(kept);
  return skipped;
}

std::string normalised_root(const std::string& root) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r;
}

Dataset build_dataset(const char* name, const std::string& root, Split split, const JpegDatasetOptions& options,
                      int64_t num_classes, const std::array<float, 3>& mean, const std::array<float, 3>& std,
                      Scan scan) {
  const JpegTransform transform = resolve_jpeg_transform(name, options);
  SG_CHECK(options.scan_threads >= 0,
           name << ": scan threads must be >= 0 (0 = automatic), got " << options.scan_threads);
  std::vector<std::string> skipped;
  if (options.skip_corrupt) {
    const int64_t hardware = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()));
    const int64_t threads = options.scan_threads > 0 ? options.scan_threads : std::min(hardware, kMaxScanThreads);
    skipped = drop_unreadable(scan, root, threads, name);
  }
  PathList files(root);
  for (const std::string& f : scan.files) files.add(f);
  Dataset d;
  d.name = name;
  d.num_classes = num_classes;
  d.mean = mean;
  d.std = std;
  d.labels = Tensor::from_vector<int32_t>(scan.labels, {int64_t(scan.labels.size())});
  d.source = std::make_shared<JpegFileSource>(std::move(files), transform, std::move(skipped));
  check_dataset(d, std::string(name) + " (" + split_name(split) + ")");
  return d;
}

}  // namespace

JpegRecipe parse_jpeg_recipe(const std::string& name) {
  if (name == "resized-crop") return JpegRecipe::ResizedCrop;
  if (name == "pad-crop") return JpegRecipe::PadCrop;
  SG_FAIL("jpeg recipe: expected one of resized-crop|pad-crop, got '" << name << "'");
}

JpegTransform resolve_jpeg_transform(const std::string& dataset, const JpegDatasetOptions& options) {
  const bool tiny = dataset == "tiny-imagenet";
  SG_CHECK(options.image_size >= 0,
           dataset << ": image size must be >= 1 (0 = the dataset's), got " << options.image_size);
  SG_CHECK(options.resize_size >= 0,
           dataset << ": resize size must be >= 1 (0 = automatic), got " << options.resize_size);
  JpegTransform t;
  t.recipe = options.recipe.empty() ? (tiny ? JpegRecipe::PadCrop : JpegRecipe::ResizedCrop)
                                    : parse_jpeg_recipe(options.recipe);
  t.image_size = options.image_size > 0 ? options.image_size : (tiny ? 64 : 224);
  t.resize_size = options.resize_size > 0 ? options.resize_size
                  : tiny                  ? t.image_size
                                          : int64_t(std::lround(double(t.image_size) * 256.0 / 224.0));
  t.resized_crop = options.resized_crop;
  t.crop_padding = options.crop_padding;
  t.dct_scaling = options.dct_scaling;
  check_jpeg_transform(t, dataset);
  return t;
}

Dataset load_tiny_imagenet(const std::string& root_dir, Split split, const JpegDatasetOptions& options) {
  const std::string root = normalised_root(root_dir);
  require_folder(root, "tiny-imagenet", "the extracted tiny-imagenet-200 with wnids.txt, train/ and val/");
  const std::vector<std::string> wnids = read_wnids(root);
  return build_dataset("tiny-imagenet", root, split, options, int64_t(wnids.size()), kTinyMean, kTinyStd,
                       scan_tiny_imagenet(root, split, wnids));
}

Dataset load_imagenet(const std::string& root_dir, Split split, const JpegDatasetOptions& options) {
  const std::string root = normalised_root(root_dir);
  require_folder(root, "imagenet", "train/<wnid>/*.JPEG and val/");
  const fs::path train = fs::path(root) / "train";
  require_folder(train, "imagenet", "class folders <wnid>/*.JPEG; their sorted names define the labels of both splits");
  const std::vector<std::string> classes = list_dir(train, "imagenet", Entries::Folders);
  SG_CHECK(!classes.empty(), "imagenet: no class folders in '" << train.string() << "'");
  return build_dataset("imagenet", root, split, options, int64_t(classes.size()), kImageNetMean, kImageNetStd,
                       scan_imagenet(root, split, classes, options));
}

}  // namespace spikegrad
