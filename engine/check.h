// Errors: every failure in the library is a thrown spikegrad::Error with a message that names the op and
// what was expected versus what arrived, and, apart from it, the file:line that threw (where()). what() is
// the message alone: users read it; the location is for developers (`spikegrad --verbose` or
// SPIKEGRAD_VERBOSE=1 appends it). Library code never exits; only main() turns an Error into a message and
// an exit code.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace spikegrad {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string where = "") : std::runtime_error(what), where_(std::move(where)) {}
  // "engine/tensor.cpp:42" for errors raised by SG_CHECK/SG_FAIL; empty otherwise.
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

namespace detail {
[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace spikegrad

// SG_CHECK(cond, "conv2d: x must be 4-D, got " << shape_str(s));  — message is a stream expression.
#define SG_CHECK(cond, msg)                                                   \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::ostringstream sg_check_os_;                                        \
      sg_check_os_ << msg;                                                    \
      ::spikegrad::detail::throw_error(__FILE__, __LINE__, sg_check_os_.str()); \
    }                                                                         \
  } while (0)

// Unconditional, so even an unoptimised build sees that control does not return (-Wreturn-type).
#define SG_FAIL(msg)                                                        \
  do {                                                                      \
    std::ostringstream sg_fail_os_;                                         \
    sg_fail_os_ << msg;                                                     \
    ::spikegrad::detail::throw_error(__FILE__, __LINE__, sg_fail_os_.str()); \
  } while (0)
