// Events -> T frames -> resized frames, and the training augmentation of event frames
// (spec/pitfalls.md item 15). Frames are float32 (T, 2, H, W): channel = polarity p, row = y, column = x
// (datasets/aedat.h), values = event counts, optionally divided by each frame's maximum (normalize_frames_by_max).
//
// Integration into exactly T frames (SpikingJelly's integrate_events_by_fixed_frames_number). With N events in
// file order and t their timestamps:
//   split_by number: frame j takes the events with index in [floor(N/T) j, floor(N/T) (j+1)) for j < T-1, the
//     last frame takes [floor(N/T) (T-1), N) (the remainder). N < T leaves frames 0..T-2 empty.
//   split_by time:   dt = floor((t[N-1] - t[0]) / T); frame j takes the events with t in [t0 + j dt,
//     t0 + (j+1) dt) for j < T-1, the last frame every event with t >= t0 + (T-1) dt (up to and including
//     t[N-1]). For time-sorted events this is SpikingJelly's rule exactly; SpikingJelly fails on an empty
//     window, here it is a zero frame. Two cases SpikingJelly does not define: dt = 0 (the events span fewer
//     than T microseconds) puts every event in the last frame, and an out-of-order event earlier than t[0]
//     counts as at t[0] (a negative span counts as 0).
// N = 0 gives T zero frames under either rule.
//
// Resizing ("area" interpolation) is torch.nn.functional.interpolate(mode='area'), i.e. adaptive_avg_pool2d:
// output (i, j) is the mean of input rows [floor(i*Hin/Hout), ceil((i+1)*Hin/Hout)) and columns
// [floor(j*Win/Wout), ceil((j+1)*Win/Wout)), computed as torch's CPU kernel does: the float sum divided by
// the window height, then by the window width. For 128 -> 48 the windows are 3 or 4 wide, and neighbours share
// a pixel where i*8/3 is not whole. This is not cv2.INTER_AREA, which weights fractional pixels. (TET itself
// resizes PIL images bilinearly; "area" is the choice stated here, applied to the count frames.)
//
// Augmentation (TET's DVSCifar10.__getitem__ in its released data_loaders.py): with probability 0.5 flip
// every frame left-right, then roll (circularly, as torch.roll: what leaves one edge enters at the other) by
// integers dy, dx uniform in [-5, 5]: out[y][x] = flipped[(y - dy) mod H][(x - dx) mod W]. The same flip and
// roll apply to every frame and channel of the sample. Draws, one counter each, in this order: flip
// (top bit of a u32), dy, dx (uniform_below(11) - 5).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/aedat.h"
#include "engine/rng.h"

namespace spikegrad {

enum class SplitBy { Number, Time };
SplitBy parse_split_by(const std::string& name);  // "number" | "time"; anything else throws, listing both
const char* split_by_name(SplitBy split_by);

// The frame of each event under the rule above (size N, values in [0, T)).
std::vector<int32_t> frame_of_events(const DvsEvents& events, int64_t time_steps, SplitBy split_by);

// dst (T, 2, 128, 128) = event counts; dst must hold T*2*128*128 floats (overwritten).
void integrate_events(const DvsEvents& events, int64_t time_steps, SplitBy split_by, float* dst);

// Per-frame normalisation of TET's preprocessing, which the TMI code reads (reference.md §4.3): each frame
// (2, H, W) of `frames` (T, 2, H, W) is divided by its largest value over both polarities, so every value is in
// [0, 1] (the pixel space attacks work in); an all-zero frame stays zero. Applied to the 128x128 counts, before
// the resize, as TET does.
void normalize_frames_by_max(float* frames, int64_t time_steps, int64_t frame_numel);

// Area resize of `planes` planes (in_h, in_w) -> (out_h, out_w); src and dst must not overlap.
void area_resize(const float* src, int64_t planes, int64_t in_h, int64_t in_w, float* dst, int64_t out_h,
                 int64_t out_w);

struct DvsAugmentDraw {
  bool flip = false;
  int64_t roll_y = 0, roll_x = 0;  // each in [-kDvsMaxRoll, kDvsMaxRoll]
};
constexpr int64_t kDvsMaxRoll = 5;
constexpr uint64_t kDvsAugmentDraws = 3;
DvsAugmentDraw draw_dvs_augmentation(Generator& gen);  // exactly kDvsAugmentDraws counters

// dst = roll(flip?(src)) for `planes` planes of (height, width); src and dst must not overlap.
void apply_dvs_augmentation(const float* src, float* dst, int64_t planes, int64_t height, int64_t width,
                            const DvsAugmentDraw& draw);

}  // namespace spikegrad
