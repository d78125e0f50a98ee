// SIGINT/SIGTERM during `spikegrad train`: the first signal only raises a flag (async-signal-safe); the
// trainer polls it after each step, writes a mid-epoch last.safetensors and throws Interrupted, which
// cli_main turns into exit code 130. The handler resets itself on delivery (SA_RESETHAND), so a second
// signal terminates the process as usual.
#pragma once
#include <csignal>

namespace spikegrad::app {

// Installs the flag-raising handler for SIGINT and SIGTERM for its lifetime and restores the previous
// dispositions on destruction (RAII). Constructing one clears the flag. Not for concurrent use from
// several threads: one training run per process installs it.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // The signal number received since construction (SIGINT or SIGTERM), or 0.
  int received() const;

 private:
  struct sigaction old_int_{}, old_term_{};
  int prev_flag_ = 0;
};

}  // namespace spikegrad::app
