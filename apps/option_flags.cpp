#include "apps/option_flags.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace spikegrad::app {

std::string flag_name(const std::string& names) { return names.substr(0, names.find(',')); }

namespace {
bool looks_like_integer(const std::string& text) {
  size_t i = text.size() > 0 && (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  return true;
}

}  // namespace

std::optional<__int128> parse_integer_text(const std::string& text) {
  if (!looks_like_integer(text)) return std::nullopt;
  const bool negative = text[0] == '-';
  const __int128 cap = __int128(1) << 100;
  __int128 v = 0;
  for (size_t i = (text[0] == '-' || text[0] == '+') ? 1 : 0; i < text.size(); ++i) {
    v = v * 10 + (text[i] - '0');
    if (v > cap) { v = cap; break; }
  }
  return negative ? -v : v;
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

CLI::Option* add_real_option(CLI::App* app, const std::string& names, double& var, const std::string& desc,
                             Bound lo_kind, double lo, double hi) {
  const std::string flag = flag_name(names);
  CLI::Option* opt = app->add_option(
      names,
      [&var, flag, lo_kind, lo, hi](const CLI::results_t& res) {
        const std::string& text = res.back();
        char* end = nullptr;
        errno = 0;
        const double v = text.empty() || std::isspace(static_cast<unsigned char>(text[0])) ? std::nan("") : std::strtod(text.c_str(), &end);
        if (end == nullptr || *end != '\0' || !std::isfinite(v) || errno == ERANGE)
          throw CLI::ValidationError(flag + " must be a finite number, got '" + text + "'");
        const bool lo_ok = lo_kind == Bound::none || (lo_kind == Bound::open ? v > lo : v >= lo);
        if (!lo_ok || v > hi) {
          const std::string l = format_number(lo), h = format_number(hi);
          if (std::isinf(hi))
            throw CLI::ValidationError(flag + " must be " + (lo_kind == Bound::open ? "> " : ">= ") + l + ", got " + text);
          throw CLI::ValidationError(flag + " must be in " + (lo_kind == Bound::open ? "(" : "[") + l + ", " + h + "], got " + text);
        }
        var = v;
        return true;
      },
      desc);
  opt->type_name("FLOAT")->type_size(1)->expected(1)->default_str(format_number(var));
  return opt;
}

}  // namespace spikegrad::app
