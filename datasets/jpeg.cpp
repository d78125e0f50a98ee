#include "datasets/jpeg.h"

#include <turbojpeg.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/check.h"

namespace spikegrad {
namespace {

// One decompressor and one compressor per thread: a tjhandle holds libjpeg state and must not be shared
// between threads, and creating one per call would cost an allocation of ~20 KB per image.
struct ThreadHandles {
  tjhandle decompressor = nullptr;
  tjhandle compressor = nullptr;
  ~ThreadHandles() {
    if (decompressor != nullptr) tjDestroy(decompressor);
    if (compressor != nullptr) tjDestroy(compressor);
  }
};

ThreadHandles& thread_handles() {
  thread_local ThreadHandles handles;
  return handles;
}

tjhandle decompressor() {
  ThreadHandles& h = thread_handles();
  if (h.decompressor == nullptr) h.decompressor = tjInitDecompress();
  SG_CHECK(h.decompressor != nullptr, "jpeg: cannot create a TurboJPEG decompressor: " << tjGetErrorStr2(nullptr));
  return h.decompressor;
}

// Returns the error text of a failed call and discards the thread's decompressor: after an error inside the
// headers, TurboJPEG 2.1 leaves libjpeg mid-stream, and the next file's markers would be parsed as the rest of this
// one ("Bogus marker length"). A fresh handle costs an allocation, and only after a failure.
std::string take_decompressor_error(tjhandle tj) {
  std::string message = tjGetErrorStr2(tj);
  ThreadHandles& h = thread_handles();
  tjDestroy(h.decompressor);
  h.decompressor = nullptr;
  return message;
}

tjhandle compressor() {
  ThreadHandles& h = thread_handles();
  if (h.compressor == nullptr) h.compressor = tjInitCompress();
  SG_CHECK(h.compressor != nullptr, "jpeg: cannot create a TurboJPEG compressor: " << tjGetErrorStr2(nullptr));
  return h.compressor;
}

// libjpeg's text for JWRN_JPEG_EOF, stable since libjpeg 6b: its memory source manager inserts a fake EOI when
// the data runs out and warns with this message.
constexpr const char* kTruncatedWarning = "Premature end of JPEG file";

// Per-thread buffer for the CMYK intermediate, reused across calls (no zero-filling of a fresh vector per image).
std::vector<uint8_t>& cmyk_scratch() {
  thread_local std::vector<uint8_t> buffer;
  return buffer;
}

int tj_subsampling(JpegSubsampling s) {
  switch (s) {
    case JpegSubsampling::S444:
      return TJSAMP_444;
    case JpegSubsampling::S422:
      return TJSAMP_422;
    case JpegSubsampling::S420:
      return TJSAMP_420;
    case JpegSubsampling::Gray:
      return TJSAMP_GRAY;
  }
  SG_FAIL("jpeg: unknown subsampling");
}

}  // namespace

void read_file_bytes(const std::string& path, std::vector<uint8_t>& out) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  SG_CHECK(file != nullptr, "cannot open '" << path << "' for reading: " << std::strerror(errno));
  // Read in chunks rather than trusting a size from stat: the file may be a pipe or change underneath.
  constexpr size_t kChunk = size_t(1) << 17;
  size_t used = 0;
  for (;;) {
    if (out.size() < used + kChunk) out.resize(used + kChunk);
    const size_t got = std::fread(out.data() + used, 1, kChunk, file.get());
    used += got;
    if (got < kChunk) break;
  }
  SG_CHECK(!std::ferror(file.get()), "cannot read '" << path << "': " << std::strerror(errno));
  out.resize(used);
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::vector<uint8_t> bytes;
  read_file_bytes(path, bytes);
  return bytes;
}

JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 2 || data[0] != 0xFF || data[1] != 0xD8) {
    std::string start = size == 0 ? "it is empty" : "it starts with";
    char hex[4];
    for (size_t i = 0; i < size && i < 4; ++i) {
      std::snprintf(hex, sizeof(hex), " %02X", unsigned(data[i]));
      start += hex;
    }
    // ImageNet's train set holds one PNG named .JPEG (n02105855_2933): say what it is.
    const bool png = size >= 4 && data[0] == 0x89 && data[1] == 'P' && data[2] == 'N' && data[3] == 'G';
    SG_FAIL("'" << name << "' is not a JPEG file: " << start << " instead of the SOI marker FF D8"
                << (png ? " (a PNG file)" : ""));
  }
  int width = 0, height = 0, subsampling = -1, colorspace = -1;
  tjhandle tj = decompressor();
  // A tables-only stream, or one cut before the frame header, returns success without touching width/height:
  // hence the zero initialisation and the check below.
  const int rc =
      tjDecompressHeader3(tj, data, static_cast<unsigned long>(size), &width, &height, &subsampling, &colorspace);
  if (rc != 0) SG_FAIL("'" << name << "' is not a readable JPEG file: " << take_decompressor_error(tj));
  if (width <= 0 || height <= 0) {
    take_decompressor_error(tj);  // a tables-only stream: start the next file from a clean state as well
    SG_FAIL("'" << name << "' is not a readable JPEG file: no frame header (truncated?)");
  }
  SG_CHECK(int64_t(width) * int64_t(height) <= kMaxJpegPixels, "'" << name << "' is " << width << "x" << height
                                                                   << " pixels, more than the " << kMaxJpegPixels
                                                                   << " this reader accepts");
  JpegHeader h;
  h.width = width;
  h.height = height;
  h.gray = colorspace == TJCS_GRAY;
  h.cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  return h;
}

int64_t dct_scaled_size(int64_t size, int eighths) { return (size * eighths + 7) / 8; }

int smallest_dct_scale(double min_scale) {
  for (int k = 1; k < 8; k *= 2)
    if (double(k) / 8.0 >= min_scale) return k;
  return 8;
}

void decode_jpeg_rgb(const uint8_t* data, size_t size, const std::string& name, int eighths, RgbImage& out) {
  SG_CHECK(eighths >= 1 && eighths <= 8, "jpeg: scale must be k/8 with k in 1..8, got " << eighths << "/8");
  const JpegHeader header = read_jpeg_header(data, size, name);
  const int64_t w = dct_scaled_size(header.width, eighths), h = dct_scaled_size(header.height, eighths);
  out.width = w;
  out.height = h;
  const size_t rgb_bytes = size_t(w * h * 3);
  if (out.pixels.size() < rgb_bytes) out.pixels.resize(rgb_bytes);

  tjhandle tj = decompressor();
  uint8_t* target = out.pixels.data();
  int format = TJPF_RGB;
  if (header.cmyk) {
    std::vector<uint8_t>& cmyk = cmyk_scratch();
    if (cmyk.size() < size_t(w * h * 4)) cmyk.resize(size_t(w * h * 4));
    target = cmyk.data();
    format = TJPF_CMYK;
  }
  // Passing the scaled size selects that scaling factor (TurboJPEG picks the largest factor that fits).
  const int rc = tjDecompress2(tj, data, static_cast<unsigned long>(size), target, int(w), 0, int(h), format, 0);
  if (rc != 0) {
    const bool warning = tjGetErrorCode(tj) == TJERR_WARNING;
    const std::string message = take_decompressor_error(tj);
    SG_CHECK(warning, "'" << name << "' is not a readable JPEG file (corrupt data): " << message);
    SG_CHECK(message.find(kTruncatedWarning) == std::string::npos,
             "'" << name << "' is truncated: " << message << " (the image data ends before the end-of-image marker)");
  }
  if (header.cmyk) {
    const uint8_t* src = target;
    uint8_t* dst = out.pixels.data();
    for (int64_t p = 0; p < w * h; ++p, src += 4, dst += 3) {
      const unsigned k = src[3];
      // Rounded c*k/255 in integers: (x + 128 + ((x + 128) >> 8)) >> 8 equals round(x / 255) for x in [0, 255^2].
      for (int c = 0; c < 3; ++c) {
        const unsigned x = unsigned(src[c]) * k + 128u;
        dst[c] = uint8_t((x + (x >> 8)) >> 8);
      }
    }
  }
}

std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t width, int64_t height, JpegPixelFormat format,
                                 int quality, JpegSubsampling subsampling) {
  SG_CHECK(width >= 1 && height >= 1 && width <= 65535 && height <= 65535,
           "encode_jpeg: size must be in [1, 65535] on each side, got " << width << "x" << height);
  SG_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in [1, 100], got " << quality);
  const int tj_format = format == JpegPixelFormat::Rgb    ? TJPF_RGB
                        : format == JpegPixelFormat::Gray ? TJPF_GRAY
                                                          : TJPF_CMYK;
  SG_CHECK((format == JpegPixelFormat::Gray) == (subsampling == JpegSubsampling::Gray),
           "encode_jpeg: gray pixels go with gray subsampling and only with it");
  tjhandle tj = compressor();
  unsigned char* buffer = nullptr;
  unsigned long bytes = 0;
  const int rc = tjCompress2(tj, pixels, int(width), 0, int(height), tj_format, &buffer, &bytes,
                             tj_subsampling(subsampling), quality, TJFLAG_ACCURATEDCT);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buffer, &tjFree);
  SG_CHECK(rc == 0, "encode_jpeg: " << tjGetErrorStr2(tj));
  return std::vector<uint8_t>(buffer, buffer + bytes);
}

}  // namespace spikegrad
