// JPEG decoding with libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev, 2.1.x: the tj* functions, not tj3),
// and encoding for the tests, the benchmark and the fuzz seeds.
//
// Decoding contract:
//   - Output: 8-bit RGB, interleaved (H,W,3), the input of the resampler (datasets/image_transforms.h).
//   - Grayscale files: luminance replicated into R, G, B (libjpeg's gray -> RGB conversion).
//   - CMYK / YCCK files: libjpeg cannot convert them to RGB ("Unsupported color conversion request"), so they
//     are decoded to CMYK and converted here with R = C*K/255, G = M*K/255, B = Y*K/255 (rounded) on the stored
//     values. Stored values follow Adobe's inverted polarity (255 = no ink), which is what Photoshop writes and
//     what PIL assumes for every CMYK JPEG; this is the conversion PIL and libjpeg-turbo's tools apply.
//   - DCT-domain scaling: libjpeg-turbo can run the inverse DCT at k/8 of the size (k = 1..8), which skips part of
//     the IDCT, upsampling and colour-conversion work (not the entropy decoding, the largest part at ImageNet
//     sizes). decode_jpeg_rgb(.., eighths) decodes at eighths/8;
//     pixel x of the scaled image covers source [x*8/k, (x+1)*8/k), so source coordinates map by k/8 exactly.
//   - Errors throw spikegrad::Error naming the file (`name`): not a JPEG, corrupt data (a libjpeg error), an
//     image over kMaxJpegPixels, and a truncated file. libjpeg only warns about a truncated file ("Premature end
//     of JPEG file") and fills the rest with grey; that warning is an error here, as PIL raises "image file is
//     truncated". Other warnings ("N extraneous bytes before marker", present in real ImageNet files) are
//     recoverable: the image is accepted, as PIL accepts it.
//   - Thread safety: every function may be called from many threads; each thread has its own TurboJPEG
//     handles (thread_local, created on first use, destroyed at thread exit).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spikegrad {

// Refused above this many pixels (16384 x 16384): the decoded image alone would take 0.8 GB.
constexpr int64_t kMaxJpegPixels = int64_t(1) << 28;

struct JpegHeader {
  int64_t width = 0, height = 0;
  bool gray = false;  // one component
  bool cmyk = false;  // four components (CMYK or YCCK)
};

struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3); only the first height*width*3 bytes are the image
};

// The whole file; throws naming the path when it cannot be opened or read. The second form reuses `out`'s storage.
std::vector<uint8_t> read_file_bytes(const std::string& path);
void read_file_bytes(const std::string& path, std::vector<uint8_t>& out);

// Dimensions and colour model from the markers before the first scan; throws naming `name` when `data` is
// not a JPEG, has no frame header (e.g. a tables-only stream or a cut before the SOF marker) or is too large.
JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name);

// ceil(size * eighths / 8): the dimension libjpeg produces at scale eighths/8.
int64_t dct_scaled_size(int64_t size, int eighths);
// The smallest k in {1, 2, 4, 8} with k/8 >= min_scale: the cheapest DCT scale that still gives at least as many
// pixels as the transform needs (min_scale >= 1 -> 8, full size). Only these four: libjpeg-turbo has SIMD inverse
// DCTs for 8x8, 4x4, 2x2 and 1x1 outputs only; its other scales run plain C and cost more than a full decode
// (measured on 500x375 4:2:0 files, CPU ms per image: 1/8 0.39, 1/4 0.48, 3/8 0.56, 1/2 0.55, 5/8 0.77,
// 3/4 0.86, 7/8 1.07, 8/8 0.69).
int smallest_dct_scale(double min_scale);

// Decodes the whole image at scale eighths/8 (1..8) into `out` (reusing its buffer), RGB as above.
void decode_jpeg_rgb(const uint8_t* data, size_t size, const std::string& name, int eighths, RgbImage& out);

enum class JpegPixelFormat { Rgb, Gray, Cmyk };  // interleaved input: 3, 1 or 4 bytes per pixel
enum class JpegSubsampling { S444, S422, S420, Gray };
// Baseline JPEG of `pixels` (height, width, bytes per pixel of `format`); Cmyk writes an Adobe YCCK file of the
// given (stored) values. For tests, benchmarks and fuzz seeds.
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t width, int64_t height, JpegPixelFormat format,
                                 int quality, JpegSubsampling subsampling);

}  // namespace spikegrad
