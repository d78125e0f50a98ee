// The JPEG datasets on files the tests write with libjpeg-turbo into a fresh temporary folder: decoding (RGB,
// grayscale, CMYK, DCT-domain scaling, corrupt data), the transforms' geometry on exact pixel patterns, and the
// Tiny-ImageNet and ImageNet layouts with their labels and transforms. Errors of the layouts, skip_corrupt and the
// loader over JPEG folders: test_jpeg_loader.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "datasets/augment.h"
#include "datasets/image_folder.h"
#include "datasets/jpeg.h"
#include "datasets/registry.h"
#include "support/jpeg_files.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// ---- decoding -----------------------------------------------------------------------------------------------

int max_abs_diff(const uint8_t* a, const uint8_t* b, size_t n) {
  int m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::abs(int(a[i]) - int(b[i])));
  return m;
}

// Quality 100 uses unit quantisers, so the losses are the rounding of the YCbCr planes and of the DCT coefficients
// to integers: up to ~1.4 levels from the colour conversion (R = Y + 1.402 Cr, B = Y + 1.772 Cb, each rounded) plus
// the coefficient rounding spread over the block; 4 levels bounds it (measured: 3-4 on these images, mean < 0.5).
// Grayscale has no colour conversion: 1 level.
constexpr int kColorJpegError = 4, kGrayJpegError = 1;

TEST(JpegDatasets, DecodeMatchesEncodedPixelsForRgbGrayAndCmyk) {
  const int64_t w = 37, h = 29;  // not multiples of the 8x8 block
  const Bytes rgb = smooth_pixels(w, h, 3, 1);
  RgbImage image;
  const Bytes rgb_jpeg = jpeg_rgb(rgb, w, h);
  decode_jpeg_rgb(rgb_jpeg.data(), rgb_jpeg.size(), "rgb", 8, image);
  ASSERT_EQ(image.width, w);
  ASSERT_EQ(image.height, h);
  EXPECT_LE(max_abs_diff(image.pixels.data(), rgb.data(), rgb.size()), kColorJpegError);
  JpegHeader header = read_jpeg_header(rgb_jpeg.data(), rgb_jpeg.size(), "rgb");
  EXPECT_EQ(header.width, w);
  EXPECT_EQ(header.height, h);
  EXPECT_FALSE(header.gray || header.cmyk);

  // Grayscale: the luminance in all three channels.
  const Bytes gray = smooth_pixels(w, h, 1, 2);
  const Bytes gray_jpeg = encode_jpeg(gray.data(), w, h, JpegPixelFormat::Gray, 100, JpegSubsampling::Gray);
  EXPECT_TRUE(read_jpeg_header(gray_jpeg.data(), gray_jpeg.size(), "gray").gray);
  decode_jpeg_rgb(gray_jpeg.data(), gray_jpeg.size(), "gray", 8, image);
  int gray_error = 0;
  for (int64_t p = 0; p < w * h; ++p)
    for (int c = 0; c < 3; ++c)
      gray_error = std::max(gray_error, std::abs(int(image.pixels[size_t(3 * p + c)]) - gray[size_t(p)]));
  EXPECT_LE(gray_error, kGrayJpegError);

  // CMYK (Adobe polarity): with K = 255 (no black ink) R,G,B = C,M,Y; with K = 128, R = C * 128 / 255.
  Bytes cmyk(size_t(w * h * 4));
  for (int64_t p = 0; p < w * h; ++p) {
    for (int c = 0; c < 3; ++c) cmyk[size_t(4 * p + c)] = rgb[size_t(3 * p + c)];
    cmyk[size_t(4 * p + 3)] = p < w * h / 2 ? 255 : 128;
  }
  const Bytes cmyk_jpeg = encode_jpeg(cmyk.data(), w, h, JpegPixelFormat::Cmyk, 100, JpegSubsampling::S444);
  EXPECT_TRUE(read_jpeg_header(cmyk_jpeg.data(), cmyk_jpeg.size(), "cmyk").cmyk);
  decode_jpeg_rgb(cmyk_jpeg.data(), cmyk_jpeg.size(), "cmyk", 8, image);
  int cmyk_error = 0;
  for (int64_t p = 0; p < w * h; ++p) {
    const double k = p < w * h / 2 ? 255.0 : 128.0;
    for (int c = 0; c < 3; ++c) {
      const double expected = double(rgb[size_t(3 * p + c)]) * k / 255.0;
      // The K plane's own error scales C by up to 4/255 more: one extra level at most.
      cmyk_error = std::max(cmyk_error, int(std::ceil(std::fabs(image.pixels[size_t(3 * p + c)] - expected) - 0.5)));
    }
  }
  EXPECT_LE(cmyk_error, kColorJpegError + 1);
}

TEST(JpegDatasets, DctScalingDecodesAtTheSmallestSufficientScale) {
  EXPECT_EQ(smallest_dct_scale(0.01), 1);
  EXPECT_EQ(smallest_dct_scale(0.125), 1);
  EXPECT_EQ(smallest_dct_scale(0.126), 2);
  EXPECT_EQ(smallest_dct_scale(0.3), 4);  // 3/8 would do, but only power-of-two scales pay off
  EXPECT_EQ(smallest_dct_scale(0.5), 4);
  EXPECT_EQ(smallest_dct_scale(0.51), 8);
  EXPECT_EQ(smallest_dct_scale(3.0), 8);
  EXPECT_EQ(dct_scaled_size(375, 3), 141);  // ceil(140.625)
  // A solid image decodes to the same colour at every scale, at libjpeg's scaled size.
  const Bytes jpeg = jpeg_rgb(solid_rgb(50, 23, 10, 130, 250), 50, 23);
  RgbImage image;
  for (int k = 1; k <= 8; ++k) {
    decode_jpeg_rgb(jpeg.data(), jpeg.size(), "solid", k, image);
    EXPECT_EQ(image.width, (50 * k + 7) / 8);
    EXPECT_EQ(image.height, (23 * k + 7) / 8);
    const Bytes expected = solid_rgb(image.width, image.height, 10, 130, 250);
    EXPECT_LE(max_abs_diff(image.pixels.data(), expected.data(), expected.size()), 1) << "scale " << k << "/8";
  }
}

TEST(JpegDatasets, CorruptDataGivesAnErrorNamingTheFile) {
  const Bytes good = jpeg_rgb(smooth_pixels(64, 48, 3, 3), 64, 48, 90);
  RgbImage image;
  auto decode = [&](const Bytes& b) { decode_jpeg_rgb(b.data(), b.size(), "/data/x/bad.JPEG", 8, image); };
  expect_error([&] { decode(Bytes{}); }, {"'/data/x/bad.JPEG' is not a JPEG file", "empty"});
  expect_error(
      [&] {
        decode(Bytes{0x89, 'P', 'N', 'G', 13, 10, 26, 10});
      },
      {"/data/x/bad.JPEG", "89 50 4E 47", "a PNG file"});
  expect_error([&] { decode(Bytes(good.begin(), good.begin() + 2)); }, {"/data/x/bad.JPEG", "no frame header"});
  expect_error([&] { decode(Bytes(good.begin(), good.begin() + 40)); }, "/data/x/bad.JPEG");
  expect_error([&] { decode(Bytes(good.begin(), good.begin() + long(good.size() / 2))); },
               {"'/data/x/bad.JPEG' is truncated", "Premature end of JPEG file"});
  Bytes bad_frame = good;  // a frame header claiming 0 components: a libjpeg error
  for (size_t i = 0; i + 9 < bad_frame.size(); ++i)
    if (bad_frame[i] == 0xFF && bad_frame[i + 1] == 0xC0) {
      bad_frame[i + 9] = 0;
      break;
    }
  expect_error([&] { decode(bad_frame); }, {"'/data/x/bad.JPEG' is not a readable JPEG file"});
  // Bytes between the last scan and the end marker only warn, in libjpeg as in PIL: accepted.
  Bytes extraneous = good;
  extraneous.insert(extraneous.end() - 2, 30, 0x11);
  decode(extraneous);
  EXPECT_EQ(image.width, 64);
}

// ---- transform geometry -------------------------------------------------------------------------------------

TEST(JpegDatasets, ResizedCropBoxesAreInRangeAndDeterministicPerCounter) {
  const ResizedCropParams p;
  const int64_t h = 375, w = 500;
  int fallbacks = 0;
  for (uint64_t start = 0; start < 4100; start += 41) {
    Generator gen(5);
    gen.set_state(5, start);
    const CropBox box = random_resized_crop_box(h, w, p, gen);
    EXPECT_EQ(gen.offset(), start + kResizedCropDraws);
    ASSERT_GE(box.top, 0);
    ASSERT_GE(box.left, 0);
    ASSERT_LE(box.top + box.height, h);
    ASSERT_LE(box.left + box.width, w);
    // w and h are rounded from exact values with area in [0.08, 1] * A and w/h in [3/4, 4/3].
    const double bw = double(box.width), bh = double(box.height);
    EXPECT_GE((bw + 0.5) * (bh + 0.5), 0.08 * h * w);
    EXPECT_LE((bw - 0.5) * (bh - 0.5), double(h * w));
    EXPECT_GE((bw + 0.5) / (bh - 0.5), 3.0 / 4.0);
    EXPECT_LE((bw - 0.5) / (bh + 0.5), 4.0 / 3.0);
    Generator again(5);
    again.set_state(5, start);
    const CropBox repeat = random_resized_crop_box(h, w, p, again);
    EXPECT_EQ(std::make_tuple(repeat.top, repeat.left, repeat.height, repeat.width),
              std::make_tuple(box.top, box.left, box.height, box.width));
    fallbacks += box.height == h && box.width == w;
  }
  EXPECT_LT(fallbacks, 10);
  // A 10x1000 strip never fits a box of ratio <= 4/3 and area >= 8%: the fallback is the central 10x13
  // (h = 10, w = round(10 * 4/3)), at left (1000 - 13) // 2.
  Generator gen(1);
  const CropBox strip = random_resized_crop_box(10, 1000, p, gen);
  EXPECT_EQ(std::make_tuple(strip.top, strip.left, strip.height, strip.width), std::make_tuple(0, 493, 10, 13));
  const CropBox tall = random_resized_crop_box(1000, 10, p, gen);  // h = round(10 / (3/4)) = 13
  EXPECT_EQ(std::make_tuple(tall.top, tall.left, tall.height, tall.width), std::make_tuple(493, 0, 13, 10));
  expect_error([] { check_resized_crop_params({0.5, 0.2, 0.75, 1.33}, "ctx"); }, "ctx: RandomResizedCrop scale");
}

TEST(JpegDatasets, ResizeAndCenterCropFollowTorchvision) {
  int64_t oh = 0, ow = 0;
  shorter_side_resize(375, 500, 256, oh, ow);
  EXPECT_EQ(std::make_pair(oh, ow), std::make_pair(int64_t(256), int64_t(341)));  // int(256 * 500 / 375) = 341
  shorter_side_resize(500, 333, 256, oh, ow);
  EXPECT_EQ(std::make_pair(oh, ow), std::make_pair(int64_t(384), int64_t(256)));  // int(384.38)
  shorter_side_resize(64, 64, 32, oh, ow);
  EXPECT_EQ(std::make_pair(oh, ow), std::make_pair(int64_t(32), int64_t(32)));
  const CropBox a = center_crop_box(256, 341, 224, 224);  // left = round(58.5) = 58 (half to even)
  EXPECT_EQ(std::make_tuple(a.top, a.left), std::make_tuple(16, 58));
  const CropBox b = center_crop_box(256, 343, 224, 224);  // left = round(59.5) = 60
  EXPECT_EQ(std::make_tuple(b.top, b.left), std::make_tuple(16, 60));
  expect_error([] { center_crop_box(100, 300, 224, 224); }, "does not fit");
}

// Interleaved test pattern: value (y * width + x) * 3 + c + 1 at (y, x, c), distinct in images of < 85 pixels.
Bytes numbered_rgb(int64_t width, int64_t height) {
  Bytes p(size_t(width * height * 3));
  for (size_t i = 0; i < p.size(); ++i) p[i] = uint8_t(i + 1);
  return p;
}

uint8_t at(const Bytes& rgb, int64_t width, int64_t y, int64_t x, int c) {
  return rgb[size_t((y * width + x) * 3 + c)];
}

TEST(JpegDatasets, ResampleGeometryOnExactPatterns) {
  const int64_t w = 9, h = 7;
  const Bytes src = numbered_rgb(w, h);
  // Scale 1 is the identity; a window of it is a crop; flip mirrors the window.
  Bytes out(3 * 4 * 5);
  resample_to_planar(src.data(), h, w, {0, 0, double(h), double(w)}, h, w, CropBox{2, 3, 4, 5}, false, out.data());
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 5; ++x) ASSERT_EQ(out[size_t((c * 4 + y) * 5 + x)], at(src, w, 2 + y, 3 + x, c));
  resample_to_planar(src.data(), h, w, {0, 0, double(h), double(w)}, h, w, CropBox{2, 3, 4, 5}, true, out.data());
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 5; ++x) ASSERT_EQ(out[size_t((c * 4 + y) * 5 + x)], at(src, w, 2 + y, 3 + 4 - x, c));
  // A source region at scale 1 is a crop of the source (RandomResizedCrop's box at the output size).
  resample_to_planar(src.data(), h, w, {1, 4, 4, 5}, 4, 5, CropBox{0, 0, 4, 5}, false, out.data());
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 5; ++x) ASSERT_EQ(out[size_t((c * 4 + y) * 5 + x)], at(src, w, 1 + y, 4 + x, c));

  // Halving a ramp 8x + 2y + c: output (i, j) is centred on source (2i + 1, 2j + 1) and the triangle of radius 2
  // weighs source pixels 2j-1..2j+2 by 1/8, 3/8, 3/8, 1/8, whose mean position is 2j + 0.5 (pixel centres at
  // x + 0.5): the value 8 (2j + 0.5) + 2 (2i + 0.5) + c away from the borders. A half-pixel error shows as 4.
  const int64_t rw = 16, rh = 12;
  Bytes ramp(size_t(rw * rh * 3));
  for (int64_t y = 0; y < rh; ++y)
    for (int64_t x = 0; x < rw; ++x)
      for (int c = 0; c < 3; ++c) ramp[size_t((y * rw + x) * 3 + c)] = uint8_t(8 * x + 2 * y + c);
  Bytes half(3 * 6 * 8);
  resample_to_planar(ramp.data(), rh, rw, {0, 0, double(rh), double(rw)}, 6, 8, CropBox{0, 0, 6, 8}, false,
                     half.data());
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 1; i < 5; ++i)
      for (int64_t j = 1; j < 7; ++j)
        ASSERT_EQ(half[size_t((c * 6 + i) * 8 + j)], 8 * (2 * j) + 4 + 2 * (2 * i) + 1 + c) << i << " " << j;
  // Upscaling (no antialias): output j of a 2x upscale sits at source x = (j + 0.5) / 2 - 0.5, interpolated.
  Bytes up(3 * 12 * 16);
  const Bytes small = numbered_rgb(8, 6);
  resample_to_planar(small.data(), 6, 8, {0, 0, 6, 8}, 12, 16, CropBox{0, 0, 12, 16}, false, up.data());
  // Output (5, 7): source (y, x) = (2.25, 3.25): 0.75/0.25 weights between rows 2,3 and columns 3,4.
  const double expected = 0.75 * (0.75 * at(small, 8, 2, 3, 0) + 0.25 * at(small, 8, 2, 4, 0)) +
                          0.25 * (0.75 * at(small, 8, 3, 3, 0) + 0.25 * at(small, 8, 3, 4, 0));
  EXPECT_EQ(up[size_t(5 * 16 + 7)], uint8_t(std::lrint(expected)));
}

// ---- layouts ------------------------------------------------------------------------------------------------

TEST(JpegDatasets, TinyImageNetLayoutLabelsAndTransforms) {
  TempFolder tmp;
  write_tiny(tmp.path);
  const Dataset train = load_tiny_imagenet(tmp.path.string() + "/", Split::Train);
  EXPECT_EQ(train.name, "tiny-imagenet");
  EXPECT_TRUE(train.lazy());
  EXPECT_EQ(train.size(), 10);
  EXPECT_EQ(train.num_classes, 3);
  EXPECT_EQ(train.channels(), 3);
  EXPECT_EQ(train.height(), 64);
  EXPECT_FLOAT_EQ(train.mean[0], 0.4802f);
  EXPECT_EQ(train.source->draws_per_sample(), kAugmentDrawsPerSample);
  // Classes in wnids.txt order, files sorted; n01 (label 2) has its grayscale n01_9 last.
  EXPECT_EQ(train.labels.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(train.source->describe(4), (tmp.path / "train/n00/images/n00_1.JPEG").string());
  for (int64_t row : {0, 4, 8}) {  // evaluation: the image as is, the colour of (class, file)
    const std::vector<float> s = load_sample(train, row, SampleMode::Evaluate);
    const int label = train.labels.data<int32_t>()[row], file = int(row % 3);
    EXPECT_NEAR(channel_mean(s, 0), 20 + 60 * label, kSolidColorError) << row;
    EXPECT_NEAR(channel_mean(s, 1), 20 + 20 * file, kSolidColorError) << row;
    EXPECT_NEAR(channel_mean(s, 2), 200, kSolidColorError) << row;
  }
  // Training = pad-4 crop + flip of the evaluation image, with the draws at the sample's counter.
  const std::vector<float> plain = load_sample(train, 9, SampleMode::Evaluate);
  std::vector<uint8_t> pixels(plain.size()), augmented(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) pixels[i] = uint8_t(std::lrint(plain[i] * 255.f));
  Generator gen(17);
  gen.set_state(17, 300);
  const Augmentation aug{4, true};
  apply_augmentation(pixels.data(), augmented.data(), 3, 64, 64, aug, draw_augmentation(aug, gen));
  std::vector<float> expected(plain.size());
  to_unit_range(augmented.data(), expected.data(), expected.size());
  EXPECT_EQ(load_sample(train, 9, SampleMode::Train, 300), expected);
  EXPECT_NE(load_sample(train, 9, SampleMode::Train, 303), expected);

  // The test split is val/, sorted by file name, labelled by val_annotations.txt; the 40x30 file is resized.
  const Dataset test = load_tiny_imagenet(tmp.path.string(), Split::Test);
  ASSERT_EQ(test.size(), 7);
  EXPECT_EQ(test.source->describe(1), (tmp.path / "val/images/val_12.JPEG").string());
  const std::vector<int> v_of_row = {0, 4, 5, 6, 1, 2, 3};  // val_0, val_12, val_15, val_18, val_3, val_6, val_9
  for (int64_t row = 0; row < 7; ++row) {
    const int v = v_of_row[size_t(row)];
    EXPECT_EQ(test.labels.data<int32_t>()[row], v % 3);
    const std::vector<float> s = load_sample(test, row, SampleMode::Evaluate);
    ASSERT_EQ(s.size(), 3u * 64 * 64);
    EXPECT_NEAR(channel_mean(s, 1), 20 + 20 * v, kSolidColorError) << row;
  }
}

TEST(JpegDatasets, ImageNetLayoutsWithClassFoldersAndLabelFile) {
  TempFolder tmp;
  const fs::path folders = tmp.path / "folders", flat = tmp.path / "flat";
  write_imagenet(folders, true);
  write_imagenet(flat, false);
  JpegDatasetOptions options;
  options.image_size = 16;  // small outputs keep the test fast; resize_size defaults to round(16 * 256 / 224) = 18
  EXPECT_EQ(resolve_jpeg_transform("imagenet", options).resize_size, 18);
  const Dataset train = load_imagenet(folders.string(), Split::Train, options);
  EXPECT_EQ(train.size(), 11);
  EXPECT_EQ(train.num_classes, 3);
  EXPECT_EQ(train.labels.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(train.source->describe(0), (folders / "train/n01/n01_0.JPEG").string());
  EXPECT_EQ(train.source->describe(3), (folders / "train/n01/n01_cmyk.jpeg").string());
  EXPECT_EQ(train.source->describe(10), (folders / "train/n03/n03_gray.jpg").string());
  EXPECT_EQ(train.sample_layout().numel(), 3 * 16 * 16);
  EXPECT_EQ(train.source->draws_per_sample(), kResizedCropDraws + 1);
  for (int64_t row = 0; row < 11; ++row)
    for (SampleMode mode : {SampleMode::Evaluate, SampleMode::Train}) {
      const std::vector<float> s = load_sample(train, row, mode, uint64_t(row) * 41);
      if (row == 3 || row == 10) continue;  // the patterned images
      const int label = train.labels.data<int32_t>()[row];
      EXPECT_NEAR(channel_mean(s, 0), 20 + 60 * label, kSolidColorError) << row;
      EXPECT_NEAR(channel_mean(s, 2), 200, kSolidColorError) << row;
    }

  for (const fs::path& root : {folders, flat}) {
    const Dataset test = load_imagenet(root.string(), Split::Test, options);
    ASSERT_EQ(test.size(), 5) << root;
    for (int64_t row = 0; row < 5; ++row) {
      const std::string path = test.source->describe(row);
      const int v = std::stoi(path.substr(path.rfind('_') + 1)) - 1;  // ILSVRC2012_val_<v + 1>.JPEG
      EXPECT_EQ(test.labels.data<int32_t>()[row], imagenet_label(kImageNetWnids[size_t(v % 3)])) << path;
      EXPECT_NEAR(channel_mean(load_sample(test, row, SampleMode::Evaluate), 1), 20 + 20 * v, kSolidColorError) << path;
    }
  }
  // The label file can be named explicitly (and then val/ is read flat).
  fs::rename(flat / "val_labels.txt", tmp.path / "labels.txt");
  options.val_label_file = (tmp.path / "labels.txt").string();
  EXPECT_EQ(load_imagenet(flat.string(), Split::Test, options).size(), 5);
  // Through the registry, with options.
  DatasetOptions registry_options;
  registry_options.jpeg.image_size = 24;
  EXPECT_EQ(load_dataset("imagenet", folders.string(), Split::Train, registry_options).height(), 24);
  EXPECT_EQ(default_dataset_dir("tiny-imagenet"), "data/tiny-imagenet-200");
  EXPECT_EQ(default_dataset_dir("imagenet"), "data/imagenet");
}

// The DCT-scaled decode reads the same region as a full decode: on a smooth image both outputs agree to about a
// grey level (the two downscaling filters differ slightly); a box misplaced by one source pixel would move these
// sinusoids (slope up to ~10 levels per pixel) by several levels on average.
TEST(JpegDatasets, DctScaledAndFullDecodesGiveTheSameTransforms) {
  TempFolder tmp;
  for (int f = 0; f < 2; ++f)
    write_bytes(tmp.path / "train" / "n01" / ("a" + std::to_string(f) + ".JPEG"),
                jpeg_rgb(smooth_pixels(300 + 37 * f, 200, 3, f), 300 + 37 * f, 200, 95));
  JpegDatasetOptions options;
  options.image_size = 64;
  const Dataset scaled = load_imagenet(tmp.path.string(), Split::Train, options);
  options.dct_scaling = false;
  const Dataset full = load_imagenet(tmp.path.string(), Split::Train, options);
  for (int64_t row = 0; row < 2; ++row)
    for (uint64_t counter = 0; counter < 8 * 41; counter += 41)
      for (SampleMode mode : {SampleMode::Evaluate, SampleMode::Train}) {
        const std::vector<float> a = load_sample(scaled, row, mode, counter), b = load_sample(full, row, mode, counter);
        double sum = 0, worst = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          sum += std::fabs(a[i] - b[i]);
          worst = std::max(worst, double(std::fabs(a[i] - b[i])));
        }
        EXPECT_LT(255.0 * sum / double(a.size()), 1.0) << row << " " << counter;
        EXPECT_LE(255.0 * worst, 6.0) << row << " " << counter;
      }
}

}  // namespace
}  // namespace spikegrad::testing
