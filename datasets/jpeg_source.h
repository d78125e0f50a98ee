// The per-sample pipeline of the JPEG datasets (Tiny-ImageNet, ImageNet): read the file, decode it (at a reduced
// DCT scale where the transform shrinks the image anyway), apply the split's transform, write float32 (3,S,S) in
// [0,1] (8-bit result / 255, as ToTensor). A SampleSource (datasets/sample_source.h): load() runs on the loader's
// worker threads, with per-thread buffers and TurboJPEG handles.
//
// Recipes (S = image_size; torchvision semantics, datasets/image_transforms.h):
//   ResizedCrop (ImageNet; Tiny-ImageNet on request -- the TMI reference trains Tiny-ImageNet this way at S = 32)
//     Train:    RandomResizedCrop(S, scale, ratio) + RandomHorizontalFlip. 41 counters: 40 for the box, 1 flip.
//     Evaluate: Resize(resize_size) (the shorter side) + CenterCrop(S).
//   PadCrop (Tiny-ImageNet's default: the common recipe for its native 64x64, as CIFAR's)
//     Train:    RandomCrop(S, padding = crop_padding, zero fill) + RandomHorizontalFlip: datasets/augment.h,
//               3 counters. A file that is not S x S is first resized to S x S.
//     Evaluate: the image as is (resized to S x S if it is not).
// DCT scaling (dct_scaling): the file is decoded at the smallest k/8 scale at which the region the transform reads
// still has at least as many pixels as the output, so the resampler only ever shrinks by less than 2x more;
// the source box maps into the scaled image by k/8 exactly. Off: full-size decode, as PIL/torchvision do.
// Errors name the file (datasets/jpeg.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image_transforms.h"
#include "datasets/sample_source.h"

namespace spikegrad {

enum class JpegRecipe { ResizedCrop, PadCrop };

struct JpegTransform {
  JpegRecipe recipe = JpegRecipe::ResizedCrop;
  int64_t image_size = 224;   // S
  int64_t resize_size = 256;  // ResizedCrop evaluation: shorter side before the center crop, >= S
  ResizedCropParams resized_crop;
  int64_t crop_padding = 4;  // PadCrop training
  bool dct_scaling = true;
};

// Throws naming `context` unless the transform is usable (S in [1, 4096], resize_size >= S, padding >= 0, ...).
void check_jpeg_transform(const JpegTransform& t, const std::string& context);

// File paths under one root, packed in one buffer: ImageNet's 1.28M paths as std::strings would take ~100 MB.
class PathList {
 public:
  explicit PathList(std::string root = "") : root_(std::move(root)) {}
  void add(const std::string& relative);  // a path relative to the root, '/'-separated
  int64_t size() const { return int64_t(offsets_.size()); }
  std::string operator[](int64_t i) const;  // root + "/" + relative
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::string names_;  // relative paths, each followed by '\0'
  std::vector<uint64_t> offsets_;
};

class JpegFileSource final : public SampleSource {
 public:
  // `skipped`: files left out when the list was made ("path: reason"), reported by skipped_files().
  JpegFileSource(PathList files, const JpegTransform& transform, std::vector<std::string> skipped = {});

  int64_t size() const override { return files_.size(); }
  SampleLayout layout() const override { return {0, 3, transform_.image_size, transform_.image_size}; }
  uint64_t draws_per_sample() const override;
  void load(int64_t index, SampleMode mode, Generator& gen, float* dst) const override;
  std::string describe(int64_t index) const override;
  std::vector<std::string> skipped_files() const override { return skipped_; }

  // load() without the file: the transform of an encoded image in memory, `name` naming it in errors.
  void transform_bytes(const uint8_t* data, size_t size, const std::string& name, SampleMode mode, Generator& gen,
                       float* dst) const;
  const JpegTransform& transform() const { return transform_; }

 private:
  PathList files_;
  JpegTransform transform_;
  std::vector<std::string> skipped_;
};

}  // namespace spikegrad
