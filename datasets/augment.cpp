#include "datasets/augment.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "datasets/dataset.h"

namespace spikegrad {

Augmentation default_augmentation(const std::string& dataset_name) {
  if (dataset_name == "cifar10" || dataset_name == "cifar100") return {4, true};
  return {};
}

AugmentDraw draw_augmentation(const Augmentation& aug, Generator& gen) {
  SG_CHECK(aug.crop_padding >= 0, "augmentation: crop_padding must be >= 0, got " << aug.crop_padding);
  // Always three draws (see kAugmentDrawsPerSample), used or not.
  AugmentDraw draw;
  draw.offset_y = uniform_below(gen, 2 * aug.crop_padding + 1);
  draw.offset_x = uniform_below(gen, 2 * aug.crop_padding + 1);
  const bool heads = (gen.next_u32() >> 31) != 0;
  draw.flip = aug.horizontal_flip && heads;
  return draw;
}

void apply_augmentation(const uint8_t* src, uint8_t* dst, int64_t channels, int64_t height, int64_t width,
                        const Augmentation& aug, const AugmentDraw& draw) {
  const int64_t pad = aug.crop_padding;
  SG_CHECK(draw.offset_y >= 0 && draw.offset_y <= 2 * pad && draw.offset_x >= 0 && draw.offset_x <= 2 * pad,
           "augmentation: crop offset (" << draw.offset_y << "," << draw.offset_x << ") outside [0, " << 2 * pad
                                         << "] for padding " << pad);
  // Output pixel (y, x) reads source (y + shift_y, x + shift_x); outside the source it is the zero padding.
  const int64_t shift_y = draw.offset_y - pad, shift_x = draw.offset_x - pad;
  // Columns of an output row that land inside the source: [x_begin, x_end).
  const int64_t x_begin = std::clamp<int64_t>(-shift_x, 0, width);
  const int64_t x_end = std::clamp<int64_t>(width - shift_x, x_begin, width);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t y = 0; y < height; ++y) {
      uint8_t* out_row = dst + (c * height + y) * width;
      const int64_t sy = y + shift_y;
      if (sy < 0 || sy >= height) {
        std::memset(out_row, 0, size_t(width));
        continue;
      }
      const uint8_t* in_row = src + (c * height + sy) * width;
      std::memset(out_row, 0, size_t(x_begin));
      std::memcpy(out_row + x_begin, in_row + x_begin + shift_x, size_t(x_end - x_begin));
      std::memset(out_row + x_end, 0, size_t(width - x_end));
      if (draw.flip) std::reverse(out_row, out_row + width);
    }
  }
}

void to_unit_range(const uint8_t* src, float* dst, size_t count) {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[size_t(i)] = float(i) / 255.0f;
    return t;
  }();
  for (size_t j = 0; j < count; ++j) dst[j] = table[src[j]];
}

}  // namespace spikegrad
