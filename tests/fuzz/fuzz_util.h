// Shared helpers of the libFuzzer targets in tests/fuzz (see CMakeLists.txt there and scripts/fuzz.sh).
//
// The readers under test take a path, so each input is written to a file in a private temporary folder
// (on /dev/shm when it exists, so the per-input write costs no disk I/O) that is removed at exit.
// SPIKEGRAD_FUZZ_TMP names the parent folder instead.
//
// Contract of every target: a thrown spikegrad::Error is the documented answer to bad input and is ignored.
// Anything else is a finding: a crash, a sanitizer report, a hang or out-of-memory (libFuzzer's -timeout and
// -rss_limit_mb / -malloc_limit_mb), and any other exception, which fuzz::unexpected() reports and aborts on.
#pragma once
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <typeinfo>

namespace fuzz {

// The private folder, created on first use and removed at exit. The name is kept in a static char array,
// which outlives every exit handler (a static std::string would be destroyed before the handler runs).
inline const std::string& temp_dir() {
  static char name[4096];
  static const std::string dir = [] {
    // SPIKEGRAD_FUZZ_TMP (scripts/fuzz.sh sets it, and removes what a crashed run leaves), else /dev/shm, else
    // TMPDIR or /tmp.
    std::string base = "/tmp";
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') base = t;
    if (std::filesystem::is_directory("/dev/shm") && access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    if (const char* t = std::getenv("SPIKEGRAD_FUZZ_TMP"); t != nullptr && *t != '\0') {
      base = t;
      std::filesystem::create_directories(base);
    }
    const std::string pattern = base + "/spikegrad-fuzz-XXXXXX";
    if (pattern.size() >= sizeof(name)) std::abort();
    std::memcpy(name, pattern.c_str(), pattern.size() + 1);
    if (mkdtemp(name) == nullptr) {
      std::perror("fuzz: mkdtemp");
      std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(name, ec);
    });
    return std::string(name);
  }();
  return dir;
}

// Writes the input to temp_dir()/name and returns the path.
inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// An exception other than the documented one escaped the code under test: report it as a finding.
// The line goes to stderr and, as a sanitizer summary, to where the sanitizers report (libFuzzer's copy of stderr
// under -close_fd_mask=2).
[[noreturn]] inline void unexpected(const char* target, const std::exception* e) {
  const std::string line = std::string("==FUZZ== ") + target + ": unexpected exception " +
                           (e ? typeid(*e).name() : "(not a std::exception)") + ": " + (e ? e->what() : "");
  std::fprintf(stderr, "\n%s\n", line.c_str());
  __sanitizer_report_error_summary(line.c_str());
  std::abort();
}

}  // namespace fuzz

// Runs `body`; spikegrad::Error is the expected outcome for bad input, any other exception aborts.
#define FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR(target, body) \
  try {                                                \
    body;                                              \
  } catch (const spikegrad::Error&) {                  \
  } catch (const std::exception& e) {                  \
    fuzz::unexpected(target, &e);                      \
  } catch (...) {                                      \
    fuzz::unexpected(target, nullptr);                 \
  }
