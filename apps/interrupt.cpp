#include "apps/interrupt.h"

#include <cerrno>
#include <cstring>

#include "engine/check.h"

namespace spikegrad::app {

namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_interrupt(int sig) { g_signal = sig; }

}  // namespace

InterruptGuard::InterruptGuard() {
  prev_flag_ = g_signal;
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  // One delivery only: the disposition returns to SIG_DFL, so a second Ctrl-C ends the process at once.
  // SA_RESTART: a blocking read/write elsewhere in the step is resumed, not failed with EINTR.
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  SG_CHECK(sigaction(SIGINT, &sa, &old_int_) == 0, "installing the SIGINT handler: " << std::strerror(errno));
  if (sigaction(SIGTERM, &sa, &old_term_) != 0) {
    const int err = errno;
    sigaction(SIGINT, &old_int_, nullptr);
    SG_FAIL("installing the SIGTERM handler: " << std::strerror(err));
  }
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  if (prev_flag_) g_signal = prev_flag_;  // an outer guard still sees its own signal
}

int InterruptGuard::received() const { return g_signal; }

}  // namespace spikegrad::app
