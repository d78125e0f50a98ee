// Typed CLI11 flags with the project's error messages: integers parsed into the flag's real range, reals checked
// against their bounds ("--lr must be > 0, got 0"), the messages naming the flag as the user typed it. Shared by
// apps/options.cpp and apps/data_options.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace spikegrad::app {

// "--T,--time-steps" -> "--T": the name a message uses.
std::string flag_name(const std::string& names);
// Decimal integer text -> value; values beyond +-2^100 are clamped there (out of every flag's range anyway).
std::optional<__int128> parse_integer_text(const std::string& text);
std::string format_number(double v);

// Integer flags are parsed from the text into the flag's real range: no wrapping of "-1" into an unsigned
// seed or of 2^32 + 1 into an int, and a range error that reads "--steps must be in [1, 2147483647], got X".
template <typename T>
void add_integer_option(CLI::App* app, const std::string& names, T& var, const std::string& desc, T lo,
                        T hi = std::numeric_limits<T>::max(), bool show_default = true) {
  const std::string flag = flag_name(names);
  CLI::Option* opt = app->add_option(
      names,
      [&var, flag, lo, hi](const CLI::results_t& res) {
        const std::string& text = res.back();
        const std::optional<__int128> v = parse_integer_text(text);
        if (!v) throw CLI::ValidationError(flag + " must be an integer, got '" + text + "'");
        if (*v < __int128(lo) && hi == std::numeric_limits<T>::max())
          throw CLI::ValidationError(flag + " must be >= " + std::to_string(lo) + ", got " + text);
        if (*v < __int128(lo) || *v > __int128(hi))
          throw CLI::ValidationError(flag + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + text);
        var = T(*v);
        return true;
      },
      desc);
  opt->type_name("INT")->type_size(1)->expected(1);
  if (show_default) opt->default_str(std::to_string(var));
}

enum class Bound { none, open, closed };

// Real flags: finite, inside [lo, hi] / (lo, hi]; "--lr must be > 0, got 0" rather than CLI11's 309-digit bound.
CLI::Option* add_real_option(CLI::App* app, const std::string& names, double& var, const std::string& desc,
                             Bound lo_kind = Bound::none, double lo = 0,
                             double hi = std::numeric_limits<double>::infinity());

}  // namespace spikegrad::app
