// Training-time augmentation on uint8 (C,H,W) images, one sample at a time.
//
// The CIFAR recipe of the papers (spec/reference.md §4.3): RandomCrop(size of the image, padding 4,
// zero fill) + RandomHorizontalFlip(p = 0.5). Defaults per dataset (default_augmentation):
//   cifar10, cifar100        -> crop padding 4 + horizontal flip (the reference training recipe)
//   mnist, fashion-mnist     -> none: the references train these without augmentation, a mirrored
//                               digit is a different glyph, and the small models fit without it
//   anything else            -> none (opt in explicitly)
// Evaluation never augments.
//
// Randomness: each sample draws exactly kAugmentDrawsPerSample counters from a Generator whatever the
// configuration, so the loader can give sample i of an epoch the counters [i*3, i*3+3) of that
// epoch's stream and any epoch, and any batch within it, can be regenerated exactly.
#pragma once
#include <cstdint>
#include <string>

#include "engine/rng.h"

namespace spikegrad {

struct Augmentation {
  int64_t crop_padding = 0;      // 0: no crop; p > 0: shift by U{-p..p} in y and x, zero-filling what enters
  bool horizontal_flip = false;  // mirror left-right with probability 0.5
  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
};

Augmentation default_augmentation(const std::string& dataset_name);

// One sample's random choices. The crop window's top-left corner in the padded image is
// (offset_y, offset_x), each in [0, 2*padding]; `padding` is the window's position when unshifted.
struct AugmentDraw {
  int64_t offset_y = 0, offset_x = 0;
  bool flip = false;
};

constexpr uint64_t kAugmentDrawsPerSample = 3;
AugmentDraw draw_augmentation(const Augmentation& aug, Generator& gen);

// dst = flip?(crop(pad(src))) for one (C,H,W) uint8 image; src and dst must not overlap.
void apply_augmentation(const uint8_t* src, uint8_t* dst, int64_t channels, int64_t height, int64_t width,
                        const Augmentation& aug, const AugmentDraw& draw);

// dst[j] = src[j] / 255 in float32, exactly torchvision's ToTensor (a table lookup: every loader path shares it).
void to_unit_range(const uint8_t* src, float* dst, size_t count);

}  // namespace spikegrad
