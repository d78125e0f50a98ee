#include "apps/data_options.h"

#include <algorithm>
#include <cmath>

#include "apps/option_flags.h"

namespace spikegrad::app {

namespace {
std::string joined(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}
}  // namespace

void add_dataset_options(CLI::App* app, RunConfig& c) {
  add_integer_option<int64_t>(app, "--image-size", c.image_size,
                              "tiny-imagenet/imagenet: output side in pixels (0: the dataset's, 64 / 224)", 0, 4096);
  add_integer_option<int64_t>(app, "--resize-size", c.resize_size,
                              "tiny-imagenet/imagenet: evaluation Resize before the center crop (0: round(S*256/224); "
                              "tiny-imagenet: S)",
                              0, 8192);
  app->add_option("--jpeg-recipe", c.jpeg_recipe,
                  "tiny-imagenet/imagenet training transform: resized-crop (RandomResizedCrop + flip) | pad-crop "
                  "(RandomCrop with padding + flip) (default: imagenet resized-crop, tiny-imagenet pad-crop)")
      ->check(CLI::IsMember({"resized-crop", "pad-crop"}));
  add_real_option(app, "--crop-scale-min", c.crop_scale_min, "RandomResizedCrop: smallest fraction of the image area",
                  Bound::open, 0, 1);
  add_integer_option<int64_t>(app, "--crop-padding", c.crop_padding, "pad-crop: RandomCrop padding in pixels", 0, 1024);
  app->add_flag("--dct-scaling,!--no-dct-scaling", c.dct_scaling,
                "decode JPEGs at 1/2, 1/4 or 1/8 scale when the transform shrinks them anyway (default: on)");
  app->add_flag("--skip-corrupt", c.skip_corrupt,
                "validate every JPEG when listing the dataset and leave unreadable files out (counted and named); "
                "without it an unreadable file stops the run, naming the file");
  app->add_option("--dvs-split", c.dvs_split, "cifar10-dvs train/test split: " + joined(cifar10_dvs_split_schemes(), " | "))
      ->check(CLI::IsMember(cifar10_dvs_split_schemes()))
      ->capture_default_str();
  add_integer_option<uint64_t>(app, "--dvs-split-seed", c.dvs_split_seed, "cifar10-dvs: seed of the random split", 0);
  app->add_option("--dvs-split-by", c.dvs_split_by,
                  "cifar10-dvs: events into T frames by count (number) or by time (time)")
      ->check(CLI::IsMember({"number", "time"}))
      ->capture_default_str();
  add_integer_option<int64_t>(app, "--dvs-size", c.dvs_size, "cifar10-dvs: frame side after the area resize from 128", 1,
                              128);
  app->add_option("--dvs-frame-norm", c.dvs_frame_norm,
                  "cifar10-dvs: max (each frame divided by its maximum, TET/TMI; values in [0,1], as attacks need) | "
                  "none (event counts)")
      ->check(CLI::IsMember({"max", "none"}))
      ->capture_default_str();
}

void add_data_location_options(CLI::App* app, RunConfig& c) {
  add_integer_option<int64_t>(app, "--decode-threads", c.decode_threads,
                              "loader threads (-1: auto, 8 at most for JPEG/DVS data, 1 in memory; 0: every hardware "
                              "thread); the batches do not depend on it",
                              -1, 256);
  app->add_option("--dvs-cache-dir", c.dvs_cache_dir,
                  "cifar10-dvs: folder of the frame cache (default: <data-dir>/frames_cache)");
  app->add_option("--val-labels", c.val_labels,
                  "imagenet with a flat val/ folder: its label file, lines '<file> <wnid or index>' (default: "
                  "<data-dir>/val_labels.txt)");
}

void check_dataset_settings(const RunConfig& c) {
  const std::vector<std::string>& names = known_dataset_names();
  SG_CHECK(std::find(names.begin(), names.end(), c.dataset) != names.end() || c.dataset.empty(),
           "--dataset: unknown '" << c.dataset << "', expected one of " << joined(names, ", "));
  SG_CHECK(c.image_size >= 0 && c.resize_size >= 0, "--image-size and --resize-size must be >= 0");
  SG_CHECK(c.jpeg_recipe.empty() || c.jpeg_recipe == "resized-crop" || c.jpeg_recipe == "pad-crop",
           "--jpeg-recipe must be resized-crop or pad-crop, got '" << c.jpeg_recipe << "'");
  SG_CHECK(std::isfinite(c.crop_scale_min) && c.crop_scale_min > 0 && c.crop_scale_min <= 1,
           "--crop-scale-min must be in (0, 1], got " << c.crop_scale_min);
  SG_CHECK(c.crop_padding >= 0, "--crop-padding must be >= 0, got " << c.crop_padding);
  const std::vector<std::string>& schemes = cifar10_dvs_split_schemes();
  SG_CHECK(std::find(schemes.begin(), schemes.end(), c.dvs_split) != schemes.end(),
           "--dvs-split: unknown '" << c.dvs_split << "', expected one of " << joined(schemes, ", "));
  SG_CHECK(c.dvs_split_by == "number" || c.dvs_split_by == "time",
           "--dvs-split-by must be number or time, got '" << c.dvs_split_by << "'");
  SG_CHECK(c.dvs_size >= 1 && c.dvs_size <= 128, "--dvs-size must be in [1, 128], got " << c.dvs_size);
  SG_CHECK(c.dvs_frame_norm == "max" || c.dvs_frame_norm == "none",
           "--dvs-frame-norm must be max or none, got '" << c.dvs_frame_norm << "'");
  SG_CHECK(c.decode_threads >= -1 && c.decode_threads <= 256, "--decode-threads must be in [-1, 256], got " << c.decode_threads);
  // Frame data has no one-image ANN (Model::set_ann_mode): refused here, before a training run or a checkpoint
  // is spent on it.
  SG_CHECK(!(c.dataset == "cifar10-dvs" && c.attack_grad.rfind("ann-", 0) == 0),
           "--attack-grad " << c.attack_grad << ": models of cifar10-dvs read event frames, which have no one-image "
                                                "ANN to run; use bptt or rga");
}

DatasetOptions dataset_options(const RunConfig& c) {
  DatasetOptions o;
  JpegDatasetOptions& j = o.jpeg;
  j.image_size = c.image_size;
  j.resize_size = c.resize_size;
  j.recipe = c.jpeg_recipe;
  j.resized_crop.scale_min = c.crop_scale_min;
  j.crop_padding = c.crop_padding;
  j.dct_scaling = c.dct_scaling;
  j.skip_corrupt = c.skip_corrupt;
  j.val_label_file = c.val_labels;
  j.scan_threads = std::max<int64_t>(c.decode_threads, 0);
  DvsOptions& d = o.dvs;
  d.time_steps = c.time_steps;
  d.split_by = c.dvs_split_by;
  d.frame_size = c.dvs_size;
  d.frame_norm = c.dvs_frame_norm;
  d.split = c.dvs_split;
  d.split_seed = c.dvs_split_seed;
  d.cache_dir = c.dvs_cache_dir;
  d.augment = c.augment != "off";  // the loader's sample mode decides per pass (training augments, evaluation not)
  d.threads = std::max<int64_t>(c.decode_threads, 0);
  return o;
}

}  // namespace spikegrad::app
