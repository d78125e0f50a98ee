#include "datasets/aedat.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/check.h"

namespace spikegrad {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "#!AER-DAT2.0";
constexpr size_t kMagicLength = sizeof(kMagic) - 1;
constexpr size_t kEventBytes = 8;
constexpr uint32_t kKnownAddressBits = 0x7FFFu;  // polarity, x and y; anything above is ignored
constexpr uint32_t kHalfRange = 0x80000000u;     // a decrease larger than this is a counter wrap

uint32_t big_endian_u32(const uint8_t* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

// The first line as printable text for an error message (at most 40 bytes, non-printable bytes as '?').
std::string first_line_preview(const uint8_t* data, size_t size) {
  std::string out;
  for (size_t i = 0; i < size && i < 40 && data[i] != '\n' && data[i] != '\r'; ++i)
    out += (data[i] >= 0x20 && data[i] < 0x7F) ? char(data[i]) : '?';
  return out;
}

// Checks the magic line and returns the offset of the first data byte.
size_t skip_header(const uint8_t* data, size_t size, const std::string& name) {
  SG_CHECK(size > 0, "aedat: '" << name << "' is empty; expected an AEDAT 2.0 file starting with '" << kMagic << "'");
  const bool has_magic = size >= kMagicLength && std::memcmp(data, kMagic, kMagicLength) == 0 &&
                         (size == kMagicLength || data[kMagicLength] == '\r' || data[kMagicLength] == '\n' ||
                          data[kMagicLength] == ' ');
  if (!has_magic) {
    const bool other_version = size >= 9 && std::memcmp(data, "#!AER-DAT", 9) == 0;
    SG_FAIL("aedat: '" << name << "' starts with '" << first_line_preview(data, size) << "'; expected the line '"
                       << kMagic << "'"
                       << (other_version ? " (this reader handles AEDAT 2.0 only, the format of CIFAR10-DVS)"
                                         : " (not an AEDAT 2.0 event file)"));
  }
  size_t pos = 0;
  while (pos < size && data[pos] == '#') {
    const void* newline = std::memchr(data + pos, '\n', size - pos);
    SG_CHECK(newline != nullptr, "aedat: '" << name << "': the header line at byte " << pos
                                            << " has no end of line (truncated header)");
    pos = size_t(static_cast<const uint8_t*>(newline) - data) + 1;
  }
  return pos;
}

}  // namespace

DvsAddress decode_dvs128_address(uint32_t address) {
  const uint32_t sensor_x = (address >> 1) & 0x7Fu;
  const uint32_t sensor_y = (address >> 8) & 0x7Fu;
  const uint32_t sensor_p = address & 1u;
  return {uint8_t(127 - sensor_y), uint8_t(127 - sensor_x), uint8_t(1 - sensor_p)};
}

DvsEvents parse_aedat2(const uint8_t* data, size_t size, const std::string& name) {
  const size_t header = skip_header(data, size, name);
  const size_t payload = size - header;
  SG_CHECK(payload % kEventBytes == 0,
           "aedat: '" << name << "': the data after the " << header << "-byte header has " << payload
                      << " bytes, not a whole number of 8-byte events (" << payload / kEventBytes
                      << " events and " << payload % kEventBytes << " bytes left over: truncated or corrupt)");
  const size_t n = payload / kEventBytes;
  DvsEvents events;
  events.header_bytes = int64_t(header);
  events.t.resize(n);
  events.x.resize(n);
  events.y.resize(n);
  events.p.resize(n);
  const uint8_t* record = data + header;
  int64_t offset = 0;  // multiple of 2^32 added by the wraps so far
  uint32_t previous = 0;
  for (size_t i = 0; i < n; ++i, record += kEventBytes) {
    const uint32_t address = big_endian_u32(record);
    const uint32_t stamp = big_endian_u32(record + 4);
    if (i > 0 && stamp < previous) {
      if (previous - stamp > kHalfRange) {
        offset += int64_t(1) << 32;
        ++events.timestamp_wraps;
      } else {
        ++events.out_of_order_events;
      }
    }
    previous = stamp;
    if ((address & ~kKnownAddressBits) != 0) ++events.high_bit_events;
    const DvsAddress a = decode_dvs128_address(address);
    events.t[i] = offset + int64_t(stamp);
    events.x[i] = a.x;
    events.y[i] = a.y;
    events.p[i] = a.p;
  }
  return events;
}

DvsEvents read_aedat2(const std::string& path) {
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  SG_CHECK(!ec, "aedat: cannot open '" << path << "': " << ec.message());
  std::ifstream in(path, std::ios::binary);
  SG_CHECK(in.good(), "aedat: cannot open '" << path << "' for reading");
  std::vector<uint8_t> buffer(static_cast<size_t>(bytes));
  in.read(reinterpret_cast<char*>(buffer.data()), std::streamsize(bytes));
  SG_CHECK(in.gcount() == std::streamsize(bytes),
           "aedat: '" << path << "': read " << in.gcount() << " of " << bytes << " bytes (file changed while reading?)");
  return parse_aedat2(buffer.data(), buffer.size(), path);
}

}  // namespace spikegrad
