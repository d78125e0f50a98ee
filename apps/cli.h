// The command line of `spikegrad`: train | eval | attack, their flags, and a --config TOML file (before or
// after the command) that is read strictly: a syntax error, an unknown section or key, a key outside a
// section or a key given twice is a one-line error naming the file and line.
#pragma once
#include <string>

#include "apps/analyze.h"
#include "apps/options.h"

namespace spikegrad::app {

struct CommandLine {
  std::string command;      // train | eval | attack | analyze
  RunConfig config;         // that command's flags, config-file values under them
  AnalyzeOptions analyze;   // analyze's own flags (apps/analyze.h)
  std::string config_file;  // --config; empty when none was given
  GivenSettings given;      // the settings given on the command line or in the --config file
  bool verbose = false;     // --verbose or SPIKEGRAD_VERBOSE=1: errors end with the source file:line
};

// Parses argv as the binary does. Returns -1 with *out filled when a command is to run; otherwise the exit
// code after printing the help (0) or one line "spikegrad: error: ..." on stderr (2).
int parse_command_line(int argc, const char* const* argv, CommandLine* out);

// The program: parse, run the command, every error one line on stderr with exit code 2.
int cli_main(int argc, const char* const* argv);

}  // namespace spikegrad::app
