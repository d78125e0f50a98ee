// libFuzzer target: the strict TOML --config reader of the CLI (apps/cli.h). The input is written as a config file
// and parsed as `spikegrad --config <file> <command>` for each of train, eval and attack, through
// parse_command_line(), the binary's own parse. Its documented outcomes are -1 (parsed: a command would run),
// 2 (one-line "spikegrad: error: ..." on stderr) and 0 (help); a spikegrad::Error is tolerated too. Any other
// return value or exception escaping it is a finding. scripts/fuzz.sh runs it with -close_fd_mask=2, which
// discards the target's stderr (the error lines) while libFuzzer and the sanitizers keep a copy of it.
#include "apps/cli.h"
#include "engine/check.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("config.toml", data, size);
  const char* const commands[][5] = {
      {"spikegrad", "--config", path.c_str(), "train", nullptr},
      {"spikegrad", "--config", path.c_str(), "eval", "--checkpoint=ckpt.safetensors"},
      {"spikegrad", "attack", "--checkpoint=ckpt.safetensors", "--config", path.c_str()},
  };
  for (const auto& argv : commands) {
    const int argc = argv[4] == nullptr ? 4 : 5;
    int code = 0;
    FUZZ_EXPECT_ONLY_SPIKEGRAD_ERROR("toml_config", {
      spikegrad::app::CommandLine cl;
      code = spikegrad::app::parse_command_line(argc, argv, &cl);
    });
    if (code != -1 && code != 0 && code != 2) {
      std::fprintf(stderr, "\n==FUZZ== toml_config: parse_command_line returned %d (documented: -1, 0, 2)\n", code);
      std::abort();
    }
  }
  return 0;
}
