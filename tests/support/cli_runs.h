// Running the command line from tests: parsed in process (app::parse_command_line, stderr captured), or the
// real binary (SPIKEGRAD_CLI_PATH) as a user runs it, with its exit code and stderr.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "apps/cli.h"

namespace spikegrad::testing {

// args without the program name; returns parse_command_line's code (-1: the command would run).
inline int parse_cli(std::vector<std::string> args, app::CommandLine* cl, std::string* err) {
  args.insert(args.begin(), "spikegrad");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  ::testing::internal::CaptureStderr();
  const int code = app::parse_command_line(int(argv.size()), argv.data(), cl);
  *err = ::testing::internal::GetCapturedStderr();
  return code;
}

#ifdef SPIKEGRAD_CLI_PATH
// The binary with `args` (a shell command line); stdout is dropped. -1 when it did not exit normally.
inline int run_cli(const std::string& args, std::string* err) {
  const std::filesystem::path out =
      std::filesystem::path(::testing::TempDir()) / ("spikegrad_cli_stderr_" + std::to_string(getpid()) + ".txt");
  const int status = std::system((std::string(SPIKEGRAD_CLI_PATH) + " " + args + " 2>" + out.string() + " >/dev/null").c_str());
  std::ifstream in(out);
  err->assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#endif

}  // namespace spikegrad::testing
