// Geometry and resampling of the JPEG datasets' transforms, with torchvision's semantics (transforms v1 on PIL
// images, torchvision 0.2x), on decoded 8-bit RGB pixels (datasets/jpeg.h).
//
//   RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3)): random_resized_crop_box is torchvision's
//     get_params step for step: up to 10 attempts of target area = area * U(scale), aspect = exp(U(log ratio)),
//     w = round(sqrt(area * aspect)), h = round(sqrt(area / aspect)) (Python's round: half to even); the first
//     attempt with 0 < w <= W and 0 < h <= H places the box at top = U{0..H-h}, left = U{0..W-w}; if none fits,
//     the central crop of the image clamped to the ratio range. The random numbers are ours (Philox counters),
//     not torch's: the algorithm is the same, the boxes of a given seed are not.
//   Resize(size) with an int size: the shorter side becomes `size`, the longer int(size * long / short).
//   CenterCrop(size): top = round((H - size) / 2), left = round((W - size) / 2) (half to even); the crop must
//     fit (torchvision would zero-pad a larger crop; the loaders never ask for one).
//   RandomHorizontalFlip(0.5): the caller draws it; resample_to_planar mirrors its output.
//
// Resampling: bilinear with antialiasing when downscaling -- PIL's Image.resize(BILINEAR, box), which is what
// torchvision uses on PIL images (antialias=True). Per axis, with scale s = box length / output length, output
// pixel o is the normalised triangle-weighted mean of the source pixels x whose centres lie within
// max(s, 1) of the output pixel's centre c = box start + (o + 0.5) * s, weight max(0, 1 - |x + 0.5 - c| / max(s, 1)).
// Both passes run in float32 (PIL uses fixed point between the passes) and the result is rounded to 8 bits as
// PIL's is; the difference from PIL is at most about one grey level (the comparison script measures it).
#pragma once
#include <cstdint>

#include "engine/rng.h"

namespace spikegrad {

struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

struct ResizedCropParams {
  double scale_min = 0.08, scale_max = 1.0;             // fraction of the image area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height
};

constexpr int kResizedCropAttempts = 10;
// Counters a box draws, whatever happens: attempt a uses [4a, 4a+4) (area, aspect, top, left) from the
// generator's position, so draws after the box (the flip) sit at a fixed offset.
constexpr uint64_t kResizedCropDraws = 4 * kResizedCropAttempts;

// Throws unless 0 < scale_min <= scale_max <= 1 and 0 < ratio_min <= ratio_max.
void check_resized_crop_params(const ResizedCropParams& params, const char* context);
CropBox random_resized_crop_box(int64_t height, int64_t width, const ResizedCropParams& params, Generator& gen);

// torchvision's Resize(size) output (out_height, out_width) for an image of (height, width).
void shorter_side_resize(int64_t height, int64_t width, int64_t size, int64_t& out_height, int64_t& out_width);
CropBox center_crop_box(int64_t height, int64_t width, int64_t crop_height, int64_t crop_width);

// A region of the source in (possibly fractional) pixel coordinates: [left, left + width) x [top, top + height).
struct SourceRegion {
  double top = 0, left = 0, height = 0, width = 0;
};

// Resamples `region` of the interleaved RGB image `rgb` (height x width x 3) to an out_height x out_width grid
// and writes the part of that grid inside `window`, mirrored left-right when `flip`, as planar uint8
// (3, window.height, window.width) into dst. Computing only the window is exact: output pixels do not depend
// on each other, so Resize + CenterCrop costs only the cropped pixels. Uses per-thread scratch buffers.
void resample_to_planar(const uint8_t* rgb, int64_t height, int64_t width, const SourceRegion& region,
                        int64_t out_height, int64_t out_width, const CropBox& window, bool flip, uint8_t* dst);

// Interleaved (H,W,3) to planar (3,H,W), mirrored left-right when `flip`.
void interleaved_to_planar(const uint8_t* rgb, int64_t height, int64_t width, bool flip, uint8_t* dst);

}  // namespace spikegrad
