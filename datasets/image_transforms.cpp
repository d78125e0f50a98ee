#include "datasets/image_transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "datasets/dataset.h"

namespace spikegrad {

void check_resized_crop_params(const ResizedCropParams& p, const char* context) {
  SG_CHECK(p.scale_min > 0 && p.scale_min <= p.scale_max && p.scale_max <= 1,
           context << ": RandomResizedCrop scale must satisfy 0 < min <= max <= 1, got (" << p.scale_min << ", "
                   << p.scale_max << ")");
  SG_CHECK(p.ratio_min > 0 && p.ratio_min <= p.ratio_max,
           context << ": RandomResizedCrop ratio must satisfy 0 < min <= max, got (" << p.ratio_min << ", "
                   << p.ratio_max << ")");
}

CropBox random_resized_crop_box(int64_t height, int64_t width, const ResizedCropParams& p, Generator& gen) {
  SG_CHECK(height >= 1 && width >= 1, "random_resized_crop_box: empty image " << height << "x" << width);
  const uint64_t key = gen.seed(), start = gen.offset();
  const double area = double(height) * double(width);
  const double log_min = std::log(p.ratio_min), log_max = std::log(p.ratio_max);
  for (int a = 0; a < kResizedCropAttempts; ++a) {
    gen.set_state(key, start + 4 * uint64_t(a));
    const double target_area = area * (p.scale_min + (p.scale_max - p.scale_min) * gen.next_uniform());
    const double aspect = std::exp(log_min + (log_max - log_min) * gen.next_uniform());
    // std::nearbyint rounds half to even under the default rounding mode, as Python's round().
    const int64_t w = int64_t(std::nearbyint(std::sqrt(target_area * aspect)));
    const int64_t h = int64_t(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      CropBox box;
      box.top = uniform_below(gen, height - h + 1);
      box.left = uniform_below(gen, width - w + 1);
      box.height = h;
      box.width = w;
      gen.set_state(key, start + kResizedCropDraws);
      return box;
    }
  }
  // No attempt fitted: the central crop, the whole image clamped to the ratio range.
  const double in_ratio = double(width) / double(height);
  CropBox box{0, 0, height, width};
  if (in_ratio < p.ratio_min) {
    box.height = std::min(height, int64_t(std::nearbyint(double(width) / p.ratio_min)));
  } else if (in_ratio > p.ratio_max) {
    box.width = std::min(width, int64_t(std::nearbyint(double(height) * p.ratio_max)));
  }
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  gen.set_state(key, start + kResizedCropDraws);
  return box;
}

void shorter_side_resize(int64_t height, int64_t width, int64_t size, int64_t& out_height, int64_t& out_width) {
  SG_CHECK(height >= 1 && width >= 1 && size >= 1,
           "resize: need a non-empty image and size >= 1, got " << height << "x" << width << " and " << size);
  const int64_t short_side = std::min(height, width), long_side = std::max(height, width);
  // Python's int(size * long / short): a correctly rounded double quotient, truncated.
  const int64_t new_long = int64_t(double(size * long_side) / double(short_side));
  if (width <= height) {
    out_width = size;
    out_height = new_long;
  } else {
    out_height = size;
    out_width = new_long;
  }
}

CropBox center_crop_box(int64_t height, int64_t width, int64_t crop_height, int64_t crop_width) {
  SG_CHECK(crop_height >= 1 && crop_width >= 1 && crop_height <= height && crop_width <= width,
           "center crop: a " << crop_height << "x" << crop_width << " crop does not fit a " << height << "x" << width
                             << " image");
  CropBox box;
  box.top = int64_t(std::nearbyint(double(height - crop_height) / 2.0));
  box.left = int64_t(std::nearbyint(double(width - crop_width) / 2.0));
  box.height = crop_height;
  box.width = crop_width;
  return box;
}

namespace {

// One axis of the separable filter, for the outputs of a window: output i reads `count[i]` source pixels from
// `first[i]` with weights[i * taps ...] (normalised to sum 1).
struct AxisFilter {
  int64_t taps = 0;
  std::vector<int64_t> first, count;
  std::vector<float> weights;
};

void build_axis(int64_t in_size, double start, double length, int64_t out_size, int64_t window_start,
                int64_t window_length, AxisFilter& f) {
  const double scale = length / double(out_size);
  const double filter_scale = std::max(scale, 1.0);  // stretch the triangle when downscaling: the antialiasing
  const double support = filter_scale;
  f.taps = int64_t(std::ceil(support)) * 2 + 1;
  f.first.resize(size_t(window_length));
  f.count.resize(size_t(window_length));
  f.weights.assign(size_t(window_length * f.taps), 0.f);
  std::vector<double> w(size_t(f.taps));
  for (int64_t i = 0; i < window_length; ++i) {
    const double center = start + (double(window_start + i) + 0.5) * scale;
    int64_t lo = std::max<int64_t>(int64_t(std::floor(center - support + 0.5)), 0);
    int64_t hi = std::min<int64_t>(int64_t(std::floor(center + support + 0.5)), in_size);
    hi = std::min(hi, lo + f.taps);
    double total = 0;
    for (int64_t x = lo; x < hi; ++x) {
      w[size_t(x - lo)] = std::max(0.0, 1.0 - std::fabs(double(x) + 0.5 - center) / filter_scale);
      total += w[size_t(x - lo)];
    }
    if (!(total > 0)) {  // a region (partly) outside the image: the nearest pixel
      lo = std::clamp<int64_t>(int64_t(std::floor(center)), 0, in_size - 1);
      hi = lo + 1;
      w[0] = total = 1;
    }
    f.first[size_t(i)] = lo;
    f.count[size_t(i)] = hi - lo;
    for (int64_t k = 0; k < hi - lo; ++k) f.weights[size_t(i * f.taps + k)] = float(w[size_t(k)] / total);
  }
}

struct ResampleScratch {
  AxisFilter x, y;
  std::vector<float> source_row;  // the columns of one source row that the horizontal pass reads, as float
  std::vector<float> rows;        // horizontally filtered source rows, (rows, window width, 3)
  std::vector<float> acc;         // one output row, (window width, 3)
};

uint8_t to_u8(float v) { return v <= 0.f ? 0 : v >= 255.f ? 255 : uint8_t(v + 0.5f); }

}  // namespace

void resample_to_planar(const uint8_t* rgb, int64_t height, int64_t width, const SourceRegion& region,
                        int64_t out_height, int64_t out_width, const CropBox& window, bool flip, uint8_t* dst) {
  SG_CHECK(height >= 1 && width >= 1 && out_height >= 1 && out_width >= 1 && region.height > 0 && region.width > 0,
           "resample: need a non-empty source (" << height << "x" << width << "), region (" << region.height << "x"
                                                 << region.width << ") and output (" << out_height << "x" << out_width
                                                 << ")");
  SG_CHECK(window.top >= 0 && window.left >= 0 && window.height >= 1 && window.width >= 1 &&
               window.top + window.height <= out_height && window.left + window.width <= out_width,
           "resample: window " << window.height << "x" << window.width << " at (" << window.top << "," << window.left
                               << ") is outside the " << out_height << "x" << out_width << " output");
  thread_local ResampleScratch s;
  build_axis(width, region.left, region.width, out_width, window.left, window.width, s.x);
  build_axis(height, region.top, region.height, out_height, window.top, window.height, s.y);
  const int64_t ww = window.width, wh = window.height, row_len = ww * 3;
  int64_t row_lo = height, row_hi = 0;
  for (int64_t i = 0; i < wh; ++i) {
    row_lo = std::min(row_lo, s.y.first[size_t(i)]);
    row_hi = std::max(row_hi, s.y.first[size_t(i)] + s.y.count[size_t(i)]);
  }
  if (s.rows.size() < size_t((row_hi - row_lo) * row_len)) s.rows.resize(size_t((row_hi - row_lo) * row_len));
  if (s.acc.size() < size_t(row_len)) s.acc.resize(size_t(row_len));

  // Horizontal pass over the source rows the vertical pass reads (only those: a crop skips the others). Each row's
  // columns [col_lo, col_hi) are converted to float first, in one vectorisable loop, so the filter loop below
  // multiplies floats instead of converting every tap's byte again (each source byte feeds several outputs).
  int64_t col_lo = width, col_hi = 0;
  for (int64_t j = 0; j < ww; ++j) {
    col_lo = std::min(col_lo, s.x.first[size_t(j)]);
    col_hi = std::max(col_hi, s.x.first[size_t(j)] + s.x.count[size_t(j)]);
  }
  if (s.source_row.size() < size_t((col_hi - col_lo) * 3)) s.source_row.resize(size_t((col_hi - col_lo) * 3));
  float* source_row = s.source_row.data();
  for (int64_t r = row_lo; r < row_hi; ++r) {
    const uint8_t* src_bytes = rgb + (r * width + col_lo) * 3;
    for (int64_t q = 0; q < (col_hi - col_lo) * 3; ++q) source_row[q] = float(src_bytes[q]);
    float* out = s.rows.data() + (r - row_lo) * row_len;
    for (int64_t j = 0; j < ww; ++j) {
      const float* wx = s.x.weights.data() + j * s.x.taps;
      const float* p = source_row + (s.x.first[size_t(j)] - col_lo) * 3;
      float a0 = 0, a1 = 0, a2 = 0;
      for (int64_t k = 0; k < s.x.count[size_t(j)]; ++k, p += 3) {
        a0 += wx[k] * p[0];
        a1 += wx[k] * p[1];
        a2 += wx[k] * p[2];
      }
      out[3 * j] = a0;
      out[3 * j + 1] = a1;
      out[3 * j + 2] = a2;
    }
  }
  // Vertical pass, then rounding to 8 bits and de-interleaving into the three planes.
  const int64_t plane = wh * ww;
  float* acc = s.acc.data();
  for (int64_t i = 0; i < wh; ++i) {
    std::fill(acc, acc + row_len, 0.f);
    const float* wy = s.y.weights.data() + i * s.y.taps;
    for (int64_t k = 0; k < s.y.count[size_t(i)]; ++k) {
      const float* row = s.rows.data() + (s.y.first[size_t(i)] + k - row_lo) * row_len;
      const float wk = wy[k];
      for (int64_t q = 0; q < row_len; ++q) acc[q] += wk * row[q];
    }
    uint8_t* r_out = dst + i * ww;
    for (int64_t j = 0; j < ww; ++j) {
      const int64_t col = flip ? ww - 1 - j : j;
      r_out[col] = to_u8(acc[3 * j]);
      r_out[plane + col] = to_u8(acc[3 * j + 1]);
      r_out[2 * plane + col] = to_u8(acc[3 * j + 2]);
    }
  }
}

void interleaved_to_planar(const uint8_t* rgb, int64_t height, int64_t width, bool flip, uint8_t* dst) {
  const int64_t plane = height * width;
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* src = rgb + y * width * 3;
    uint8_t* out = dst + y * width;
    for (int64_t x = 0; x < width; ++x) {
      const int64_t col = flip ? width - 1 - x : x;
      out[col] = src[3 * x];
      out[plane + col] = src[3 * x + 1];
      out[2 * plane + col] = src[3 * x + 2];
    }
  }
}

}  // namespace spikegrad
