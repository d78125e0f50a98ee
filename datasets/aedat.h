// AEDAT 2.0 event files of a DVS128 sensor (the format of the original CIFAR10-DVS download; DVS128 Gesture
// is AEDAT 3.1 and is not read here). spec/pitfalls.md items 14-15.
//
// File layout:
//   header  lines that start with '#' and end with '\n' (jAER writes "\r\n"); the first line must start with
//           "#!AER-DAT2.0". The header ends at the first line that does not start with '#'.
//   data    8-byte events: big-endian uint32 address, then big-endian uint32 timestamp (microseconds).
// Address bits (DVS128): bit 0 polarity, bits 1-7 sensor x, bits 8-14 sensor y (128 x 128).
//
// Convention (SpikingJelly's CIFAR10DVS reader, so frames match checkpoints trained on SpikingJelly frames):
// with a = address, xs = (a >> 1) & 127, ys = (a >> 8) & 127, ps = a & 1,
//     p = 1 - ps          the polarity channel
//     x = 127 - ys        the column (width index) of the frame
//     y = 127 - xs        the row (height index) of the frame
// i.e. the sensor image is transposed and rotated by 180 degrees, and the polarity bit inverted. Bits above 14
// are ignored (SpikingJelly masks them off too; the count of such events is reported, never an error).
//
// Timestamps: the 32-bit microsecond counter wraps every ~71.6 minutes. A decrease of more than 2^31 us from
// one event to the next is a wrap and adds 2^32 to this and every later timestamp; a smaller decrease is an
// event recorded slightly out of order (USB transfer jitter) and is kept as it is, and counted. Treating every
// decrease as a wrap would move all later events ~71 minutes into the future after one jittered event, which
// breaks frame integration by time.
//
// Errors (spikegrad::Error, naming the file): a missing or wrong magic line, a header line without an end of
// line (truncated header), a data section that is not a whole number of 8-byte events. A file with a header and
// no events is valid (the sample becomes T zero frames; the caller counts it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spikegrad {

constexpr int64_t kDvs128Side = 128;

// Events of one file, in file order (struct of arrays: ~11 bytes per event).
struct DvsEvents {
  std::vector<int64_t> t;  // microseconds, unwrapped, not shifted (the first event keeps its raw value)
  std::vector<uint8_t> x;  // column, 0..127 (convention above)
  std::vector<uint8_t> y;  // row, 0..127
  std::vector<uint8_t> p;  // polarity channel, 0 or 1
  int64_t timestamp_wraps = 0;      // decreases taken as a wrap of the 32-bit counter
  int64_t out_of_order_events = 0;  // events whose timestamp is below the previous one (kept, not a wrap)
  int64_t high_bit_events = 0;      // addresses with bits above 14 set (ignored bits)
  int64_t header_bytes = 0;
  size_t size() const { return t.size(); }
};

// One address decoded under the convention above.
struct DvsAddress {
  uint8_t x, y, p;
};
DvsAddress decode_dvs128_address(uint32_t address);

// Parses a whole AEDAT 2.0 file held in memory; `name` is what error messages call it (the path).
DvsEvents parse_aedat2(const uint8_t* data, size_t size, const std::string& name);
// Reads and parses the file at `path`.
DvsEvents read_aedat2(const std::string& path);

}  // namespace spikegrad
