// A one-line progress bar with ETA and images/s when stderr is a terminal; plain periodic lines
// otherwise (logs and CI stay readable).
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace spikegrad::app {

class Progress {
 public:
  Progress(std::string label, int64_t total_steps, bool enabled)
      : label_(std::move(label)), total_(total_steps), tty_(enabled && isatty(fileno(stderr))),
        enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

  // Called after each step with the images processed so far and a short status text.
  void update(int64_t step, int64_t images, const std::string& status) {
    if (!enabled_) return;
    const double secs = seconds();
    const double rate = secs > 0 ? double(images) / secs : 0.0;
    const double eta = step > 0 ? secs / double(step) * double(total_ - step) : 0.0;
    if (tty_) {
      const int width = 28, filled = total_ > 0 ? int(width * step / total_) : width;
      std::fprintf(stderr, "\r%s [%s%s] %lld/%lld  %.0f img/s  ETA %s  %s\033[K", label_.c_str(),
                   std::string(size_t(filled), '#').c_str(), std::string(size_t(width - filled), '.').c_str(),
                   (long long)step, (long long)total_, rate, clock(eta).c_str(), status.c_str());
      if (step == total_) std::fprintf(stderr, "\n");
    } else if (step == total_ || secs - last_print_ >= 30.0) {
      last_print_ = secs;
      std::fprintf(stderr, "%s %lld/%lld  %.0f img/s  ETA %s  %s\n", label_.c_str(), (long long)step, (long long)total_,
                   rate, clock(eta).c_str(), status.c_str());
    }
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  static std::string clock(double s) {
    char buf[32];
    const long t = long(s + 0.5);
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
  }
  std::string label_;
  int64_t total_;
  bool tty_, enabled_;
  std::chrono::steady_clock::time_point start_;
  double last_print_ = 0;
};

}  // namespace spikegrad::app
