#include "datasets/event_frames.h"

#include <algorithm>
#include <cstring>

#include "datasets/dataset.h"
#include "engine/check.h"

namespace spikegrad {
namespace {

void check_time_steps(int64_t time_steps) {
  SG_CHECK(time_steps >= 1, "event frames: time_steps must be >= 1, got " << time_steps);
}

// torch's adaptive pooling bounds: [floor(i*in/out), ceil((i+1)*in/out)), in integer arithmetic.
int64_t window_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t window_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// a mod n in [0, n) for any sign of a.
int64_t wrap_index(int64_t a, int64_t n) {
  const int64_t r = a % n;
  return r < 0 ? r + n : r;
}

}  // namespace

SplitBy parse_split_by(const std::string& name) {
  if (name == "number") return SplitBy::Number;
  if (name == "time") return SplitBy::Time;
  SG_FAIL("event frames: split_by must be one of number|time, got '" << name << "'");
}

const char* split_by_name(SplitBy split_by) { return split_by == SplitBy::Number ? "number" : "time"; }

std::vector<int32_t> frame_of_events(const DvsEvents& events, int64_t time_steps, SplitBy split_by) {
  check_time_steps(time_steps);
  const int64_t n = int64_t(events.size());
  std::vector<int32_t> frame(size_t(n), int32_t(time_steps - 1));
  if (n == 0) return frame;
  if (split_by == SplitBy::Number) {
    const int64_t per_frame = n / time_steps;
    if (per_frame == 0) return frame;  // N < T: everything is the remainder, in the last frame
    for (int64_t i = 0; i < n; ++i) frame[size_t(i)] = int32_t(std::min(i / per_frame, time_steps - 1));
    return frame;
  }
  const int64_t t0 = events.t.front();
  const int64_t span = std::max<int64_t>(events.t.back() - t0, 0);
  const int64_t dt = span / time_steps;
  if (dt == 0) return frame;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t since_start = std::max<int64_t>(events.t[size_t(i)] - t0, 0);
    frame[size_t(i)] = int32_t(std::min(since_start / dt, time_steps - 1));
  }
  return frame;
}

void integrate_events(const DvsEvents& events, int64_t time_steps, SplitBy split_by, float* dst) {
  const std::vector<int32_t> frame = frame_of_events(events, time_steps, split_by);
  constexpr int64_t plane = kDvs128Side * kDvs128Side;
  std::memset(dst, 0, size_t(time_steps * 2 * plane) * sizeof(float));
  // Counts stay exact in float up to 2^24 events per pixel, far beyond any recording.
  for (size_t i = 0; i < frame.size(); ++i) {
    const int64_t offset = (int64_t(frame[i]) * 2 + events.p[i]) * plane + int64_t(events.y[i]) * kDvs128Side +
                           events.x[i];
    dst[offset] += 1.f;
  }
}

void area_resize(const float* src, int64_t planes, int64_t in_h, int64_t in_w, float* dst, int64_t out_h,
                 int64_t out_w) {
  SG_CHECK(planes >= 0 && in_h >= 1 && in_w >= 1 && out_h >= 1 && out_w >= 1,
           "area_resize: sizes must be positive, got " << planes << " planes of " << in_h << "x" << in_w << " -> "
                                                       << out_h << "x" << out_w);
  for (int64_t c = 0; c < planes; ++c) {
    const float* in = src + c * in_h * in_w;
    float* out = dst + c * out_h * out_w;
    for (int64_t i = 0; i < out_h; ++i) {
      const int64_t y0 = window_start(i, in_h, out_h), y1 = window_end(i, in_h, out_h);
      for (int64_t j = 0; j < out_w; ++j) {
        const int64_t x0 = window_start(j, in_w, out_w), x1 = window_end(j, in_w, out_w);
        float sum = 0.f;  // row-major accumulation order, as torch's contiguous CPU kernel
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) sum += in[y * in_w + x];
        out[i * out_w + j] = sum / float(y1 - y0) / float(x1 - x0);
      }
    }
  }
}

DvsAugmentDraw draw_dvs_augmentation(Generator& gen) {
  DvsAugmentDraw draw;
  draw.flip = (gen.next_u32() >> 31) != 0;
  draw.roll_y = uniform_below(gen, 2 * kDvsMaxRoll + 1) - kDvsMaxRoll;
  draw.roll_x = uniform_below(gen, 2 * kDvsMaxRoll + 1) - kDvsMaxRoll;
  return draw;
}

void apply_dvs_augmentation(const float* src, float* dst, int64_t planes, int64_t height, int64_t width,
                            const DvsAugmentDraw& draw) {
  SG_CHECK(planes >= 0 && height >= 1 && width >= 1,
           "dvs augmentation: sizes must be positive, got " << planes << " planes of " << height << "x" << width);
  // Source column of each output column: roll first maps x to (x - dx) mod W of the flipped image, whose
  // column c is the source's W-1-c when flipped.
  std::vector<int64_t> source_x(static_cast<size_t>(width));
  for (int64_t x = 0; x < width; ++x) {
    const int64_t c = wrap_index(x - draw.roll_x, width);
    source_x[size_t(x)] = draw.flip ? width - 1 - c : c;
  }
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* in = src + pl * height * width;
    float* out = dst + pl * height * width;
    for (int64_t y = 0; y < height; ++y) {
      const float* in_row = in + wrap_index(y - draw.roll_y, height) * width;
      float* out_row = out + y * width;
      for (int64_t x = 0; x < width; ++x) out_row[x] = in_row[source_x[size_t(x)]];
    }
  }
}

void normalize_frames_by_max(float* frames, int64_t time_steps, int64_t frame_numel) {
  for (int64_t t = 0; t < time_steps; ++t) {
    float* f = frames + t * frame_numel;
    float peak = 0.f;
    for (int64_t i = 0; i < frame_numel; ++i) peak = std::max(peak, f[i]);
    if (peak > 0.f)
      for (int64_t i = 0; i < frame_numel; ++i) f[i] /= peak;  // a division, as torch's frame / frame.max()
  }
}

}  // namespace spikegrad
