#include "apps/cli.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <istream>
#include <map>
#include <memory>

#include "apps/analyze.h"
#include "apps/commands.h"
#include "apps/train.h"
#include "engine/check.h"
#include "engine/cuda_context.h"
#include "engine/distributed.h"

namespace spikegrad::app {
namespace {

bool is_bare_key_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

void append_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// A TOML integer or float (underscores between digits allowed, no hex/octal/binary, no dates) -> its text
// without underscores; empty when `t` is not one.
std::string toml_number(const std::string& t) {
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  const std::string rest = t.substr(i);
  if (rest == "inf" || rest == "nan") return t;
  std::string out = t.substr(0, i);
  auto digits = [&](bool required) {
    const size_t start = i;
    bool last_digit = false;
    while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '_')) {
      if (t[i] == '_') {
        if (!last_digit || i + 1 >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i + 1]))) return false;
        last_digit = false;
      } else {
        out += t[i];
        last_digit = true;
      }
      ++i;
    }
    return !required || i > start;
  };
  if (!digits(true)) return "";
  if (i < t.size() && t[i] == '.') {
    out += t[i++];
    if (!digits(true)) return "";
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    out += t[i++];
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) out += t[i++];
    if (!digits(true)) return "";
  }
  return i == t.size() ? out : "";
}

// The --config reader. CLI11's own TOML reader skips what it cannot parse and, by default, keys it does not
// know; this one accepts the TOML subset a flag file needs ([section] headers naming a command, `key = value`
// with a string, number or boolean value, # comments) and rejects everything else with file:line.
class StrictToml : public CLI::Config {
 public:
  StrictToml(const CLI::App* root, const CLI::Option* config_option) : root_(root), config_option_(config_option) {}

  std::string to_config(const CLI::App* app, bool default_also, bool write_description, std::string prefix) const override {
    return CLI::ConfigTOML().to_config(app, default_also, write_description, std::move(prefix));
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& in) const override {
    file_ = config_option_->empty() ? std::string("config") : config_option_->results().back();
    std::vector<CLI::ConfigItem> items;
    std::string section;
    const CLI::App* command = nullptr;
    std::map<std::string, int> section_lines;
    std::map<const CLI::Option*, std::pair<std::string, int>> key_lines;  // per section: the option a key set
    std::string line;
    line_ = 0;
    origins_.clear();
    while (std::getline(in, line)) {
      ++line_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t i = skip_space(line, 0);
      if (i == line.size() || line[i] == '#') continue;
      if (line[i] == '[') {
        if (i + 1 < line.size() && line[i + 1] == '[') fail("arrays of tables ([[...]]) are not supported");
        i = skip_space(line, i + 1);
        const size_t start = i;
        while (i < line.size() && line[i] != ']' && line[i] != '#') ++i;
        if (i == line.size() || line[i] != ']') fail("'" + trim(line) + "': a section header needs a closing ']'");
        std::string name = trim(line.substr(start, i - start));
        expect_end(line, i + 1, "after the section header [" + name + "]");
        if (name.empty()) fail("empty section name []");
        command = find_command(name);
        if (command == nullptr) fail("unknown section [" + name + "]; the sections are " + section_list("and"));
        auto [it, fresh] = section_lines.emplace(name, line_);
        if (!fresh) fail("section [" + name + "] appears twice (first on line " + std::to_string(it->second) + ")");
        section = name;
        key_lines.clear();
        continue;
      }
      // key = value
      const size_t key_start = i;
      while (i < line.size() && is_bare_key_char(line[i])) ++i;
      const std::string key = line.substr(key_start, i - key_start);
      if (key.empty()) fail("expected a key (letters, digits, '-' or '_') or a [section], got '" + trim(line) + "'");
      i = skip_space(line, i);
      if (i == line.size() || line[i] != '=') fail("expected '=' after the key '" + key + "'");
      i = skip_space(line, i + 1);
      std::string value = parse_value(line, i, key);
      if (command == nullptr)
        fail("the key '" + key + "' is outside a section; put it under " + section_list("or"));
      const CLI::Option* opt = find_option(command, key);
      if (opt == nullptr) fail("unknown key '" + key + "' in [" + section + "]" + suggestion(command, key));
      auto [it, fresh] = key_lines.emplace(opt, std::make_pair(key, line_));
      if (!fresh) {
        if (it->second.first == key)
          fail("duplicate key '" + key + "' in [" + section + "] (first on line " + std::to_string(it->second.second) + ")");
        fail("the key '" + key + "' sets the same flag as '" + it->second.first + "' on line " +
             std::to_string(it->second.second) + " in [" + section + "]");
      }
      origins_[opt] = file_ + ":" + std::to_string(line_);
      CLI::ConfigItem item;
      item.parents = {section};
      item.name = key;
      item.inputs = {value};
      items.push_back(std::move(item));
    }
    if (in.bad()) throw CLI::ConfigError(file_ + ": read error");
    return items;
  }

  // "file:line" of the key that set `opt`; empty when the file did not set it.
  std::string origin(const CLI::Option* opt) const {
    const auto it = origins_.find(opt);
    return it == origins_.end() ? std::string() : it->second;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw CLI::ConfigError(file_ + ":" + std::to_string(line_) + ": " + msg);
  }
  static size_t skip_space(const std::string& s, size_t i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return i;
  }
  static std::string trim(const std::string& s) {
    const size_t a = skip_space(s, 0);
    size_t b = s.size();
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
    return s.substr(a, b - a);
  }
  // Only spaces and a comment may follow.
  void expect_end(const std::string& s, size_t i, const std::string& where) const {
    i = skip_space(s, i);
    if (i < s.size() && s[i] != '#') fail("unexpected '" + trim(s.substr(i)) + "' " + where);
  }

  std::string parse_value(const std::string& s, size_t i, const std::string& key) const {
    const std::string where = "after the value of '" + key + "'";
    if (i == s.size() || s[i] == '#') fail("the key '" + key + "' has no value");
    std::string out;
    if (s[i] == '"' || s[i] == '\'') {
      const char quote = s[i];
      if (s.compare(i, 3, std::string(3, quote)) == 0) fail("multi-line strings are not supported (key '" + key + "')");
      for (++i;; ++i) {
        if (i >= s.size()) fail("unterminated string in the value of '" + key + "'");
        const char ch = s[i];
        if (ch == quote) break;
        if (ch != '\\' || quote == '\'') {
          out += ch;
          continue;
        }
        if (++i >= s.size()) fail("unterminated string in the value of '" + key + "'");
        switch (s[i]) {
          case 'b': out += '\b'; break;
          case 't': out += '\t'; break;
          case 'n': out += '\n'; break;
          case 'f': out += '\f'; break;
          case 'r': out += '\r'; break;
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case 'u':
          case 'U': {
            const size_t n = s[i] == 'u' ? 4 : 8;
            const std::string hex = s.substr(i + 1, n);
            if (hex.size() != n || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
              fail("bad \\" + std::string(1, s[i]) + " escape in the value of '" + key + "'");
            append_utf8(out, std::stoul(hex, nullptr, 16));
            i += n;
            break;
          }
          default: fail("unknown escape '\\" + std::string(1, s[i]) + "' in the value of '" + key + "'");
        }
      }
      expect_end(s, i + 1, where);
      return out;
    }
    if (s[i] == '[') fail("arrays are not supported: the flag '" + key + "' takes one value");
    if (s[i] == '{') fail("inline tables are not supported (key '" + key + "')");
    size_t end = i;
    while (end < s.size() && s[end] != ' ' && s[end] != '\t' && s[end] != '#') ++end;
    const std::string token = s.substr(i, end - i);
    expect_end(s, end, where);
    if (token == "true" || token == "false") return token;
    const std::string number = toml_number(token);
    if (number.empty())
      fail("invalid value '" + token + "' for '" + key + "': expected a number, true/false or a \"quoted string\"");
    return number;
  }

  const CLI::App* find_command(const std::string& name) const {
    for (const CLI::App* sub : root_->get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == name) return sub;
    return nullptr;
  }
  std::string section_list(const std::string& conjunction) const {
    std::string out;
    const auto subs = root_->get_subcommands([](const CLI::App*) { return true; });
    for (size_t k = 0; k < subs.size(); ++k)
      out += (k == 0 ? "" : k + 1 == subs.size() ? " " + conjunction + " " : ", ") + ("[" + subs[k]->get_name() + "]");
    return out;
  }
  // The lookup CLI11 applies to a config key, minus the options a config file cannot set.
  static const CLI::Option* find_option(const CLI::App* command, const std::string& key) {
    const CLI::Option* opt = command->get_option_no_throw("--" + key);
    if (opt == nullptr && key.size() == 1) opt = command->get_option_no_throw("-" + key);
    if (opt == nullptr || opt == command->get_help_ptr() || opt == command->get_help_all_ptr() || !opt->get_configurable())
      return nullptr;
    return opt;
  }
  static std::string suggestion(const CLI::App* command, const std::string& key) {
    std::string best;
    size_t best_d = 3;  // at most two edits away
    for (const CLI::Option* opt : command->get_options()) {
      if (opt == command->get_help_ptr() || !opt->get_configurable()) continue;
      for (const std::string& name : opt->get_lnames()) {
        const size_t d = edit_distance(key, name);
        if (d < best_d) best_d = d, best = name;
      }
    }
    return best.empty() ? "" : " (did you mean '" + best + "'?)";
  }

  const CLI::App* root_;
  const CLI::Option* config_option_;
  mutable std::string file_;
  mutable int line_ = 0;
  mutable std::map<const CLI::Option*, std::string> origins_;
};

// A value error ("--lr must be > 0, got -1") about a flag the --config file set (and the command line did
// not: it would have won) gets the file:line of that key in front, as the file's syntax errors have.
std::string with_config_origin(const std::string& message, const StrictToml& toml, const std::vector<CLI::App*>& commands,
                               int argc, const char* const* argv) {
  auto on_command_line = [&](const std::string& flag) {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
    }
    return false;
  };
  for (const CLI::App* command : commands)
    for (const CLI::Option* opt : command->get_options()) {
      const std::string where = toml.origin(opt);
      if (where.empty()) continue;
      for (const std::string& name : opt->get_lnames()) {
        const std::string flag = "--" + name;
        const size_t at = message.find(flag);
        const bool named = at != std::string::npos &&
                           (at + flag.size() == message.size() || !is_bare_key_char(message[at + flag.size()]));
        if (named && !on_command_line(flag)) return where + ": " + message;
      }
    }
  return message;
}

// Help text: CLI11 prints a negatable flag as "--progress,--no-progress{false}" (the value the negation
// sets), which reads as the default; this prints "--progress,--no-progress", and the option's description
// states the default (add_common_options / add_train_options).
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_name(const CLI::Option* opt, bool positional) const override {
    std::string name = CLI::Formatter::make_option_name(opt, positional);
    for (size_t open; (open = name.find('{')) != std::string::npos;) {
      const size_t close = name.find('}', open);
      if (close == std::string::npos) break;
      name.erase(open, close - open + 1);
    }
    return name;
  }
};

// CLI11's messages to one line.
std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (size_t p; (p = s.find('\n')) != std::string::npos;) s.replace(p, 1, "; ");
  return s;
}

}  // namespace

int parse_command_line(int argc, const char* const* argv, CommandLine* out) {
  CLI::App app{"spikegrad: spiking neural networks, TMI training and adversarial evaluation"};
  CLI::Option* config = app.set_config(
      "--config", "", "TOML file with [train] / [eval] / [attack] / [analyze] sections (before or after the command)");
  auto toml = std::make_shared<StrictToml>(&app, config);
  app.config_formatter(toml);
  app.formatter(std::make_shared<HelpFormatter>());
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("--verbose", verbose,
               "error messages name the source file:line that raised them (also SPIKEGRAD_VERBOSE=1)");
  RunConfig train_cfg, eval_cfg, attack_cfg;
  CLI::App* train = app.add_subcommand("train", "train a model; writes runs/<name>/");
  add_train_options(train, train_cfg);
  CLI::App* eval = app.add_subcommand("eval", "clean and attacked accuracy of a checkpoint");
  add_common_options(eval, eval_cfg);
  add_eval_options(eval, eval_cfg, false);
  eval->add_option("--checkpoint", eval_cfg.checkpoint, "checkpoint file")->required();
  eval->add_option("--save-logits", eval_cfg.save_logits, "write per-example mean logits (safetensors)");
  CLI::App* attack = app.add_subcommand("attack", "epsilon sweep of FGSM, PGD, BIM and GN on a checkpoint");
  add_common_options(attack, attack_cfg);
  add_eval_options(attack, attack_cfg, true);
  attack->add_option("--checkpoint", attack_cfg.checkpoint, "checkpoint file")->required();
  attack->add_option("--save-adv", attack_cfg.save_adv, "write the adversarial inputs (safetensors)");
  attack->add_option("--source-checkpoint", attack_cfg.source_checkpoint,
                     "also run every attack crafted on this checkpoint's model (a transfer / black-box attack)");
  RunConfig analyze_cfg;
  CLI::App* analyze = app.add_subcommand("analyze", "gradient-sparsity diagnostics of a checkpoint (apps/analyze.h)");
  add_common_options(analyze, analyze_cfg);
  add_analyze_options(analyze, analyze_cfg, out->analyze);
  // `spikegrad train --config f`: a flag the command does not know goes up to the top level, where --config is.
  for (CLI::App* sub : {train, eval, attack, analyze}) sub->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "spikegrad: error: %s\n",
                 with_config_origin(one_line(e.what()), *toml, {train, eval, attack, analyze}, argc, argv).c_str());
    return 2;
  }
  out->verbose = verbose || env_flag("SPIKEGRAD_VERBOSE");
  out->config_file = config->empty() ? std::string() : config->results().back();
  CLI::App* chosen = *train ? train : *eval ? eval : *attack ? attack : analyze;
  out->command = chosen->get_name();
  out->config = *train ? train_cfg : *eval ? eval_cfg : *attack ? attack_cfg : analyze_cfg;
  // Values from the --config file count as given too (CLI11 records them as the option's results).
  const nlohmann::json keys = RunConfig().to_json();
  out->given.all = false;
  out->given.keys.clear();
  for (const CLI::Option* opt : chosen->get_options()) {
    if (opt->count() == 0) continue;
    for (std::string name : opt->get_lnames()) {
      std::replace(name.begin(), name.end(), '-', '_');
      if (keys.contains(name)) out->given.keys.insert(name);
    }
  }
  return -1;
}

int cli_main(int argc, const char* const* argv) {
  CommandLine cl;
  const int code = parse_command_line(argc, argv, &cl);
  if (code >= 0) return code;
  // Under mpirun: which rank speaks (every rank may report the same error; rank 0 alone prints results).
  const dist::Communicator& comm = dist::world();
  const std::string rank = comm.distributed() ? "rank " + std::to_string(comm.rank()) + " of " +
                                                    std::to_string(comm.size()) + ": "
                                              : std::string();
  try {
    check_outputs_differ_from_inputs(cl.config, cl.config_file);
    if (cl.command == "train") {
      const std::string folder = run_train(cl.config, cl.given);
      if (comm.rank() == 0) std::printf("run folder: %s\n", folder.c_str());
    }
    else if (cl.command == "eval") run_eval(cl.config);
    else if (cl.command == "analyze") run_analyze(cl.config, cl.analyze);
    else run_attack(cl.config);
  } catch (const Interrupted& e) {  // SIGINT/SIGTERM: last.safetensors holds the position; 128 + SIGINT
    std::fprintf(stderr, "spikegrad: %s%s\n", rank.c_str(), e.what());
    return 130;
  } catch (const Error& e) {
    const std::string where = cl.verbose && !e.where().empty() ? " [" + e.where() + "]" : "";
    std::fprintf(stderr, "spikegrad: error: %s%s%s\n", rank.c_str(), one_line(e.what()).c_str(), where.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spikegrad: error: %s%s\n", rank.c_str(), one_line(e.what()).c_str());
    return 2;
  }
  return 0;
}

}  // namespace spikegrad::app
