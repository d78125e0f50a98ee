// SIGINT/SIGTERM during `spikegrad train`: the first signal only raises a flag (async-signal-safe); the
// trainer polls it after each step, writes a mid-epoch last.safetensors and throws Interrupted, which
// cli_main turns into exit code 130. The handler resets itself on delivery (SA_RESETHAND), so a second
// signal terminates the process as usual.
#pragma once
#include <csignal>

#include "engine/check.h"

namespace spikegrad::app {

// Thrown when SIGINT or SIGTERM arrived while an InterruptGuard was installed and the work in flight
// reached a point where it can stop (run_train: after a step; an evaluation pass given the guard: after a
// batch). cli_main turns it into exit code 130.
struct Interrupted : Error {
  using Error::Error;
};

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
