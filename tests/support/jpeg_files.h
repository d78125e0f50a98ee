// Test scaffolding of the JPEG dataset tests: a mkdtemp folder, JPEGs written with libjpeg-turbo (smooth patterns,
// solid colours that identify (class, file)), and the Tiny-ImageNet / ImageNet layouts written into a folder.
#pragma once
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "datasets/dataset.h"
#include "datasets/jpeg.h"

namespace spikegrad::testing {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// A fresh folder from mkdtemp (the emulated tree runs every test twice at once), removed afterwards.
struct TempFolder {
  fs::path path;
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "spikegrad-jpeg-XXXXXX").string();
    EXPECT_NE(mkdtemp(pattern.data()), nullptr);
    path = pattern;
  }
  ~TempFolder() { fs::remove_all(path); }
};

inline void write_bytes(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_text(const fs::path& path, const std::string& text) {
  write_bytes(path, Bytes(text.begin(), text.end()));
}

// Smooth interleaved pixels (periods of 40-130 px), `channels` per pixel, varied by `seed`.
inline Bytes smooth_pixels(int64_t width, int64_t height, int channels, int seed) {
  Bytes p(size_t(width * height * channels));
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        p[size_t((y * width + x) * channels + c)] =
            uint8_t(std::lrint(128 + 90 * std::sin(0.11 * double(x) * (1 + 0.2 * c) + 0.07 * double(y) + seed + c)));
  return p;
}

inline Bytes solid_rgb(int64_t width, int64_t height, uint8_t r, uint8_t g, uint8_t b) {
  Bytes p(size_t(width * height * 3));
  for (size_t i = 0; i < p.size(); i += 3) p[i] = r, p[i + 1] = g, p[i + 2] = b;
  return p;
}

inline Bytes jpeg_rgb(const Bytes& rgb, int64_t width, int64_t height, int quality = 100) {
  return encode_jpeg(rgb.data(), width, height, JpegPixelFormat::Rgb, quality, JpegSubsampling::S444);
}

// The colour that identifies image `file` of class `label` in the layout tests. A solid colour survives the JPEG round
// trip within one level per channel (its only loss is rounding Y, Cb, Cr: at most ~1.4 levels before the decoder
// rounds back to an integer), and resampling a constant image returns the constant: kSolidColorError, plus float
// rounding of pixel / 255 * 255.
constexpr double kSolidColorError = 1.0 + 1e-4;
inline Bytes class_color_jpeg(int64_t width, int64_t height, int label, int file) {
  return jpeg_rgb(solid_rgb(width, height, uint8_t(20 + 60 * label), uint8_t(20 + 20 * file), 200), width, height);
}

inline std::vector<float> load_sample(const Dataset& d, int64_t row, SampleMode mode, uint64_t counter = 0) {
  std::vector<float> out(size_t(d.sample_layout().numel()));
  Generator gen(17);
  gen.set_state(17, counter);
  d.source->load(d.source_index(row), mode, gen, out.data());
  return out;
}

// Mean of channel c of a (3,S,S) sample, in 0..255 units.
inline double channel_mean(const std::vector<float>& sample, int c) {
  const size_t plane = sample.size() / 3;
  double sum = 0;
  for (size_t i = 0; i < plane; ++i) sum += sample[size_t(c) * plane + i];
  return 255.0 * sum / double(plane);
}

inline const std::vector<std::string> kTinyWnids = {"n02", "n00", "n01"};  // label = line order, not sorted order

// Tiny-ImageNet: 3 classes x 3 train images (file f of class c has the colour of (c, f)), 7 val images of class
// v % 3; one train image grayscale, one val image 40x30 (resized to 64x64).
inline void write_tiny(const fs::path& root) {
  std::string wnids;
  for (const std::string& w : kTinyWnids) wnids += w + "\n";
  write_text(root / "wnids.txt", wnids);
  for (int c = 0; c < 3; ++c) {
    const std::string& wnid = kTinyWnids[size_t(c)];
    for (int f = 0; f < 3; ++f)
      write_bytes(root / "train" / wnid / "images" / (wnid + "_" + std::to_string(f) + ".JPEG"),
                  class_color_jpeg(64, 64, c, f));
    write_text(root / "train" / wnid / (wnid + "_boxes.txt"), "ignored\n");
  }
  const Bytes gray = smooth_pixels(64, 64, 1, 9);
  write_bytes(root / "train" / "n01" / "images" / "n01_9.JPEG",
              encode_jpeg(gray.data(), 64, 64, JpegPixelFormat::Gray, 100, JpegSubsampling::Gray));
  std::string annotations;
  for (int v = 0; v < 7; ++v) {
    const std::string name = "val_" + std::to_string(v * 3) + ".JPEG";  // val_0, val_12, val_15, val_18, val_3, ...
    const int64_t side = v == 2 ? 40 : 64;
    write_bytes(root / "val" / "images" / name, class_color_jpeg(side, v == 2 ? 30 : 64, v % 3, v));
    annotations += name + "\t" + kTinyWnids[size_t(v % 3)] + "\t0\t0\t10\t10\r\n";
  }
  write_text(root / "val" / "val_annotations.txt", annotations);
}

// ImageNet: classes created out of sorted order; images of varied sizes, one grayscale, one CMYK.
inline const std::vector<std::string> kImageNetWnids = {"n03", "n01", "n02"};  // sorted: n01 = 0, n02 = 1, n03 = 2

inline int imagenet_label(const std::string& wnid) { return wnid == "n01" ? 0 : wnid == "n02" ? 1 : 2; }

inline void write_imagenet(const fs::path& root, bool val_folders) {
  for (const std::string& wnid : kImageNetWnids) {
    const int c = imagenet_label(wnid);
    for (int f = 0; f < 3; ++f)
      write_bytes(root / "train" / wnid / (wnid + "_" + std::to_string(f) + ".JPEG"),
                  class_color_jpeg(30 + 17 * f, 50 - 9 * f, c, f));
  }
  write_text(root / "train" / "n02" / "README.txt", "not an image\n");
  const Bytes gray = smooth_pixels(45, 31, 1, 4);
  write_bytes(root / "train" / "n03" / "n03_gray.jpg",
              encode_jpeg(gray.data(), 45, 31, JpegPixelFormat::Gray, 95, JpegSubsampling::Gray));
  const Bytes cmyk = smooth_pixels(33, 41, 4, 5);
  write_bytes(root / "train" / "n01" / "n01_cmyk.jpeg",
              encode_jpeg(cmyk.data(), 33, 41, JpegPixelFormat::Cmyk, 95, JpegSubsampling::S444));
  std::string labels;
  for (int v = 0; v < 5; ++v) {
    const std::string& wnid = kImageNetWnids[size_t(v % 3)];
    const std::string name = "ILSVRC2012_val_" + std::to_string(v + 1) + ".JPEG";
    const Bytes jpeg = class_color_jpeg(40 + v, 36, imagenet_label(wnid), v);
    if (val_folders) {
      write_bytes(root / "val" / wnid / name, jpeg);
    } else {
      write_bytes(root / "val" / name, jpeg);
      // wnids and 0-based indices both accepted
      labels += name + " " + (v % 2 ? wnid : std::to_string(imagenet_label(wnid))) + "\n";
    }
  }
  if (!val_folders) write_text(root / "val_labels.txt", labels);
}

}  // namespace spikegrad::testing
