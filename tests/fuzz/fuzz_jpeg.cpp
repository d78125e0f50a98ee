// libFuzzer target: the JPEG entry points of the Tiny-ImageNet / ImageNet readers (datasets/jpeg.h,
// datasets/jpeg_source.h, datasets/image_folder.h). The input is
//   1. parsed by read_jpeg_header and decoded in memory by decode_jpeg_rgb at 1/8 scale, and at full scale when the
//      header claims at most 4 Mpx (a hostile header may claim 268 Mpx: valid, but seconds per input under ASan);
//   2. transformed in memory by the three recipes at S = 32 (RandomResizedCrop + flip and Resize + CenterCrop;
//      pad-crop + flip; the evaluation transforms), which pick their own DCT scales;
//   3. written as the only image of a one-class ImageNet folder, listed by load_imagenet with skip_corrupt (the
//      scan-time decode) and without, and read through JpegFileSource::load.
// Checks: a decoded image has the header's size at that scale; every transformed value is in [0, 1]; skip_corrupt
// keeps the file exactly when a 1/8 decode succeeds.
#include <filesystem>
#include <vector>

#include "datasets/image_folder.h"
#include "datasets/jpeg.h"
#include "datasets/jpeg_source.h"
#include "engine/check.h"
#include "fuzz_util.h"

namespace {

using namespace spikegrad;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "\n==FUZZ== jpeg: %s\n", what);
  std::abort();
}

void check_unit_range(const std::vector<float>& v) {
  for (const float x : v)
    if (!(x >= 0.f && x <= 1.f)) finding("a transformed value outside [0, 1]");
}

// Decodes at 1/8 (and at full size when small enough); true when the 1/8 decode succeeded.
bool decode_in_memory(const uint8_t* data, size_t size) {
  bool decoded = false;
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("jpeg", {
    const JpegHeader h = read_jpeg_header(data, size, "input");
    RgbImage image;
    decode_jpeg_rgb(data, size, "input", 1, image);
    if (image.width != dct_scaled_size(h.width, 1) || image.height != dct_scaled_size(h.height, 1))
      finding("a 1/8-scale decode does not have the header's scaled size");
    decoded = true;
    if (h.width * h.height <= (int64_t(1) << 22)) {
      decode_jpeg_rgb(data, size, "input", 8, image);
      if (image.width != h.width || image.height != h.height) finding("a full decode does not have the header's size");
    }
  });
  return decoded;
}

void transform_in_memory(const uint8_t* data, size_t size) {
  JpegTransform resized;
  resized.image_size = 32;
  resized.resize_size = 36;
  JpegTransform padded = resized;
  padded.recipe = JpegRecipe::PadCrop;
  std::vector<float> out(3 * 32 * 32);
  for (const JpegTransform& t : {resized, padded}) {
    const JpegFileSource source(PathList(), t);
    for (const SampleMode mode : {SampleMode::Train, SampleMode::Evaluate}) {
      Generator gen(static_cast<uint64_t>(size));
      FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("jpeg", {
        source.transform_bytes(data, size, "input", mode, gen, out.data());
        check_unit_range(out);
      });
    }
  }
}

const std::string& imagenet_root() {
  static const std::string root = [] {
    const std::string r = fuzz::temp_dir() + "/imagenet";
    std::filesystem::create_directories(r + "/train/n00000000");
    return r;
  }();
  return root;
}

void read_through_folder(const uint8_t* data, size_t size, bool decodes) {
  imagenet_root();
  fuzz::write_file("imagenet/train/n00000000/input.JPEG", data, size);
  JpegDatasetOptions options;
  options.image_size = 32;
  options.skip_corrupt = true;
  options.scan_threads = 1;
  bool kept = false;
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("jpeg", {
    kept = load_imagenet(imagenet_root(), Split::Train, options).size() == 1;
  });  // an unreadable only image empties the class: an Error
  if (kept != decodes) finding("skip_corrupt kept a file that does not decode, or dropped one that does");
  options.skip_corrupt = false;
  FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("jpeg", {
    const Dataset d = load_imagenet(imagenet_root(), Split::Train, options);
    std::vector<float> out(size_t(d.sample_layout().numel()));
    Generator gen(7);
    d.source->load(0, SampleMode::Evaluate, gen, out.data());
    check_unit_range(out);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool decodes = decode_in_memory(data, size);
  transform_in_memory(data, size);
  read_through_folder(data, size, decodes);
  return 0;
}
