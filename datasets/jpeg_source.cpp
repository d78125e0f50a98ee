#include "datasets/jpeg_source.h"

#include <algorithm>

#include "datasets/augment.h"
#include "datasets/dataset.h"
#include "datasets/jpeg.h"

namespace spikegrad {
namespace {

constexpr int64_t kMaxImageSize = 4096;

// Buffers of one worker thread, reused from sample to sample (a 500x375 decode is ~560 KB).
struct SampleScratch {
  std::vector<uint8_t> file;
  RgbImage image;
  std::vector<uint8_t> planar, augmented;
};

SampleScratch& scratch() {
  thread_local SampleScratch s;
  return s;
}

// The scale k/8 to decode at when `region_height` x `region_width` source pixels become out_height x out_width.
int decode_scale(const JpegTransform& t, double region_height, double region_width, double out_height,
                 double out_width) {
  if (!t.dct_scaling) return 8;
  return smallest_dct_scale(std::max(out_height / region_height, out_width / region_width));
}

SourceRegion scaled_region(double top, double left, double height, double width, int eighths) {
  const double f = double(eighths) / 8.0;
  return {top * f, left * f, height * f, width * f};
}

}  // namespace

void check_jpeg_transform(const JpegTransform& t, const std::string& context) {
  SG_CHECK(t.image_size >= 1 && t.image_size <= kMaxImageSize,
           context << ": image size must be in [1, " << kMaxImageSize << "], got " << t.image_size);
  if (t.recipe == JpegRecipe::ResizedCrop) {
    SG_CHECK(t.resize_size >= t.image_size && t.resize_size <= 4 * kMaxImageSize,
             context << ": the evaluation resize (shorter side) must be in [image size " << t.image_size << ", "
                     << 4 * kMaxImageSize << "] so the center crop fits, got " << t.resize_size);
    check_resized_crop_params(t.resized_crop, context.c_str());
  } else {
    SG_CHECK(t.crop_padding >= 0 && t.crop_padding <= t.image_size,
             context << ": crop padding must be in [0, image size " << t.image_size << "], got " << t.crop_padding);
  }
}

void PathList::add(const std::string& relative) {
  offsets_.push_back(names_.size());
  names_ += relative;
  names_ += '\0';
}

std::string PathList::operator[](int64_t i) const {
  const char* relative = names_.c_str() + offsets_[size_t(i)];
  return root_.empty() ? std::string(relative) : root_ + "/" + relative;
}

JpegFileSource::JpegFileSource(PathList files, const JpegTransform& transform, std::vector<std::string> skipped)
    : files_(std::move(files)), transform_(transform), skipped_(std::move(skipped)) {
  check_jpeg_transform(transform_, "jpeg dataset");
}

uint64_t JpegFileSource::draws_per_sample() const {
  return transform_.recipe == JpegRecipe::ResizedCrop ? kResizedCropDraws + 1 : kAugmentDrawsPerSample;
}

std::string JpegFileSource::describe(int64_t index) const {
  SG_CHECK(index >= 0 && index < size(), "jpeg dataset: sample " << index << " is outside [0, " << size() << ")");
  return files_[index];
}

void JpegFileSource::load(int64_t index, SampleMode mode, Generator& gen, float* dst) const {
  const std::string path = describe(index);
  SampleScratch& s = scratch();
  read_file_bytes(path, s.file);
  transform_bytes(s.file.data(), s.file.size(), path, mode, gen, dst);
}

void JpegFileSource::transform_bytes(const uint8_t* data, size_t size, const std::string& name, SampleMode mode,
                                     Generator& gen, float* dst) const {
  const JpegTransform& t = transform_;
  const int64_t side = t.image_size;
  SampleScratch& s = scratch();
  if (s.planar.size() < size_t(3 * side * side)) s.planar.resize(size_t(3 * side * side));
  const JpegHeader header = read_jpeg_header(data, size, name);
  const double height = double(header.height), width = double(header.width);
  const uint8_t* result = s.planar.data();

  if (t.recipe == JpegRecipe::ResizedCrop && mode == SampleMode::Train) {
    const CropBox box = random_resized_crop_box(header.height, header.width, t.resized_crop, gen);
    const bool flip = (gen.next_u32() >> 31) != 0;
    const int k = decode_scale(t, double(box.height), double(box.width), double(side), double(side));
    decode_jpeg_rgb(data, size, name, k, s.image);
    resample_to_planar(s.image.pixels.data(), s.image.height, s.image.width,
                       scaled_region(double(box.top), double(box.left), double(box.height), double(box.width), k), side,
                       side, CropBox{0, 0, side, side}, flip, s.planar.data());
  } else if (t.recipe == JpegRecipe::ResizedCrop) {
    int64_t resized_height = 0, resized_width = 0;
    shorter_side_resize(header.height, header.width, t.resize_size, resized_height, resized_width);
    const CropBox window = center_crop_box(resized_height, resized_width, side, side);
    const int k = decode_scale(t, height, width, double(resized_height), double(resized_width));
    decode_jpeg_rgb(data, size, name, k, s.image);
    resample_to_planar(s.image.pixels.data(), s.image.height, s.image.width, scaled_region(0, 0, height, width, k),
                       resized_height, resized_width, window, false, s.planar.data());
  } else {
    const bool native = header.height == side && header.width == side;
    const int k = native ? 8 : decode_scale(t, height, width, double(side), double(side));
    decode_jpeg_rgb(data, size, name, k, s.image);
    if (native) {
      interleaved_to_planar(s.image.pixels.data(), side, side, false, s.planar.data());
    } else {
      resample_to_planar(s.image.pixels.data(), s.image.height, s.image.width, scaled_region(0, 0, height, width, k),
                         side, side, CropBox{0, 0, side, side}, false, s.planar.data());
    }
    if (mode == SampleMode::Train) {
      const Augmentation aug{t.crop_padding, true};
      if (s.augmented.size() < s.planar.size()) s.augmented.resize(s.planar.size());
      apply_augmentation(s.planar.data(), s.augmented.data(), 3, side, side, aug, draw_augmentation(aug, gen));
      result = s.augmented.data();
    }
  }
  to_unit_range(result, dst, size_t(3 * side * side));
}

}  // namespace spikegrad
