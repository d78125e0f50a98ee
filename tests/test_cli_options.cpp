// The command line (issue 16): strict --config files (syntax errors, unknown keys and sections, keys
// outside a section, duplicates: one line naming file:line, exit 2), --config after the command, integer
// flags parsed into their real range, readable range errors, and outputs that would overwrite an input.
// Exit codes and messages on the real binary; values through the same parser in process.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include <unistd.h>

#include "apps/cli.h"
#include "engine/check.h"
#include "support/cli_runs.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kConfigs = fs::path(__FILE__).parent_path().parent_path() / "configs";

class CliOptions : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("spikegrad_cli_options_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  // In process: the exit code (-1: the command would run), the parsed command line, and stderr.
  int parse(std::vector<std::string> args, app::CommandLine* cl, std::string* err) const {
    return parse_cli(std::move(args), cl, err);
  }
#ifdef SPIKEGRAD_CLI_PATH
  // The real binary: its exit code and stderr.
  int run(const std::string& args, std::string* err) const {
    const fs::path out = dir_ / "stderr.txt";
    const int status = std::system((std::string(SPIKEGRAD_CLI_PATH) + " " + args + " 2>" + out.string() + " >/dev/null").c_str());
    std::ifstream in(out);
    err->assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // A data folder that does not exist: a run that got past the command line fails there, with another message.
  std::string no_data() const { return " --data-dir " + (dir_ / "no-data").string() + " --runs-dir " + (dir_ / "runs").string(); }
#endif
  fs::path dir_;
};

TEST_F(CliOptions, EveryShippedConfigStillParses) {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kConfigs)) {  // configs/sparsity, configs/paper too
    if (entry.path().extension() != ".toml") continue;
    ++files;
    // the seed-002 presets keep the released code's seed; every other preset uses TMI's
    const uint64_t seed = entry.path().parent_path().filename() == "sparsity" ? 3407u : 1000u;
    for (bool after : {false, true}) {
      app::CommandLine cl;
      std::string err;
      const std::vector<std::string> args = after ? std::vector<std::string>{"train", "--config", entry.path().string()}
                                                  : std::vector<std::string>{"--config", entry.path().string(), "train"};
      EXPECT_EQ(parse(args, &cl, &err), -1) << entry.path() << ": " << err;
      EXPECT_EQ(cl.command, "train");
      EXPECT_EQ(cl.config_file, entry.path().string());
      EXPECT_EQ(cl.config.seed, seed) << entry.path();
    }
  }
  EXPECT_GE(files, 4 + 4 + 18);  // configs/, configs/sparsity/, configs/paper/
  app::CommandLine cl;
  std::string err;
  ASSERT_EQ(parse({"train", "--config", (kConfigs / "demo.toml").string(), "--epochs", "3"}, &cl, &err), -1) << err;
  EXPECT_EQ(cl.config.lr, 0.002) << "the file's value";
  EXPECT_EQ(cl.config.attack_subset, 1000);
  EXPECT_EQ(cl.config.epochs, 3) << "the command line wins over the file";
}

TEST_F(CliOptions, ConfigValuesOfEveryKindAreRead) {
  const fs::path f = write("kinds.toml",
                           "# comment\n"
                           "\n"
                           "[train]  # trailing comment\n"
                           "epochs = 7   # seven\n"
                           "T = 3\n"
                           "lr = 2.5e-3\n"
                           "val-size = 1_000\n"
                           "name = \"a \\\"quoted\\\" name\"\n"
                           "runs-dir = 'C:\\runs'\n"
                           "detach-reset = true\n"
                           "progress = false\n"
                           "seed = 18446744073709551615\n"
                           "[attack]\n"
                           "steps = 9\n");
  app::CommandLine cl;
  std::string err;
  ASSERT_EQ(parse({"--config", f.string(), "train"}, &cl, &err), -1) << err;
  EXPECT_EQ(cl.config.epochs, 7);
  EXPECT_EQ(cl.config.time_steps, 3);
  EXPECT_DOUBLE_EQ(cl.config.lr, 2.5e-3);
  EXPECT_EQ(cl.config.val_size, 1000);
  EXPECT_EQ(cl.config.name, "a \"quoted\" name");
  EXPECT_EQ(cl.config.runs_dir, "C:\\runs");
  EXPECT_TRUE(cl.config.detach_reset);
  EXPECT_FALSE(cl.config.progress);
  EXPECT_EQ(cl.config.seed, std::numeric_limits<uint64_t>::max());
}

// Each mistake: one line "spikegrad: error: <file>:<line>: ...", exit 2, whichever side of the command
// --config is on.
TEST_F(CliOptions, ConfigMistakesAreOneLineErrorsWithFileAndLine) {
  struct Case {
    const char* text;
    int line;
    const char* says;
  };
  const Case cases[] = {
      {"[train\nepochs = 1\n", 1, "closing ']'"},
      {"[train]\nepcohs = 1\n", 2, "unknown key 'epcohs' in [train] (did you mean 'epochs'?)"},
      {"epochs = 1\n[train]\n", 1, "outside a section"},
      {"# x\n[trian]\nepochs = 1\n", 2, "unknown section [trian]"},
      {"[train]\nepochs = 1\n\nepochs = 2\n", 4, "duplicate key 'epochs' in [train] (first on line 2)"},
      {"[train]\nT = 1\ntime-steps = 2\n", 3, "sets the same flag as 'T'"},
      {"[train]\n[eval]\n[train]\n", 3, "section [train] appears twice"},
      {"[train]\nloss = tet\n", 2, "invalid value 'tet'"},
      {"[train]\nname = \"open\n", 2, "unterminated string"},
      {"[train]\nepochs 3\n", 2, "expected '='"},
      {"[train]\nepochs = 3 4\n", 2, "unexpected '4'"},
      {"[train]\nhelp = true\n", 2, "unknown key 'help'"},
      {"[eval]\ncheckpoint = \"a\"\nepochs = 1\n", 3, "unknown key 'epochs' in [eval]"},
  };
  int k = 0;
  for (const Case& c : cases) {
    const fs::path f = write("bad" + std::to_string(k++) + ".toml", c.text);
    const std::string where = f.string() + ":" + std::to_string(c.line) + ": ";
    std::string err;
    app::CommandLine cl;
    EXPECT_EQ(parse({"--config", f.string(), "train"}, &cl, &err), 2) << c.text;
    EXPECT_EQ(err.rfind("spikegrad: error: " + where, 0), 0u) << c.text << " -> " << err;
    EXPECT_NE(err.find(c.says), std::string::npos) << c.text << " -> " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_EQ(parse({"train", "--config", f.string()}, &cl, &err), 2) << c.text;
    EXPECT_NE(err.find(where), std::string::npos) << c.text << " -> " << err;
  }
}

#ifdef SPIKEGRAD_CLI_PATH
TEST_F(CliOptions, ConfigMistakesFailTheBinaryWithExit2) {
  std::string err;
  const fs::path syntax = write("syntax.toml", "[train\nepochs = 1\n");
  EXPECT_EQ(run("--config " + syntax.string() + " train" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: " + syntax.string() + ":1: '[train': a section header needs a closing ']'\n");
  const fs::path typo = write("typo.toml", "[train]\nepochs = 1\nepcohs = 3\n");
  EXPECT_EQ(run("--config " + typo.string() + " train" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: " + typo.string() + ":3: unknown key 'epcohs' in [train] (did you mean 'epochs'?)\n");
  const fs::path outside = write("outside.toml", "epochs = 1\n");
  EXPECT_EQ(run("--config " + outside.string() + " train" + no_data(), &err), 2);
  EXPECT_NE(err.find(outside.string() + ":1: the key 'epochs' is outside a section"), std::string::npos) << err;
  const fs::path section = write("section.toml", "[trainn]\nepochs = 1\n");
  EXPECT_EQ(run("--config " + section.string() + " train" + no_data(), &err), 2);
  EXPECT_NE(err.find(section.string() + ":1: unknown section [trainn]"), std::string::npos) << err;
  const fs::path dup = write("dup.toml", "[train]\nepochs = 1\nepochs = 2\n");
  EXPECT_EQ(run("--config " + dup.string() + " train" + no_data(), &err), 2);
  EXPECT_NE(err.find(dup.string() + ":3: duplicate key 'epochs'"), std::string::npos) << err;
  // After the command, --config is read the same way.
  EXPECT_EQ(run("train --config " + typo.string() + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: " + typo.string() + ":3: unknown key 'epcohs' in [train] (did you mean 'epochs'?)\n");
  // A good file after the command gets the run as far as the (missing) data.
  EXPECT_EQ(run("train --config " + (kConfigs / "demo.toml").string() + no_data(), &err), 2);
  EXPECT_NE(err.find("no-data"), std::string::npos) << err;
}

TEST_F(CliOptions, IntegerFlagsDoNotWrap) {
  std::string err;
  const std::string ckpt = " --checkpoint " + (dir_ / "missing.safetensors").string();
  EXPECT_EQ(run("attack --steps 4294967297" + ckpt, &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --steps must be in [1, 2147483647], got 4294967297\n");
  EXPECT_EQ(run("attack --steps 2147483648" + ckpt, &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --steps must be in [1, 2147483647], got 2147483648\n");
  EXPECT_EQ(run("train --seed -1" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --seed must be >= 0, got -1\n");
  EXPECT_EQ(run("train --seed 18446744073709551616" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --seed must be in [0, 18446744073709551615], got 18446744073709551616\n");
  EXPECT_EQ(run("eval --eval-batch 99999999999999999999" + ckpt, &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --eval-batch must be in [1, 9223372036854775807], got 99999999999999999999\n");
  EXPECT_EQ(run("train --batch 1.5" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --batch must be an integer, got '1.5'\n");
}

TEST_F(CliOptions, RangeErrorsReadPlainly) {
  std::string err;
  EXPECT_EQ(run("train --epochs 0" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --epochs must be >= 1, got 0\n");
  EXPECT_EQ(run("train --T 0" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --T must be >= 1, got 0\n");
  EXPECT_EQ(run("train --lr 0" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --lr must be > 0, got 0\n");
  EXPECT_EQ(run("train --decay 1.5" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --decay must be in [0, 1], got 1.5\n");
  EXPECT_EQ(run("train --mi-lambda -1" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --mi-lambda must be >= 0, got -1\n");
  EXPECT_EQ(run("train --lr inf" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --lr must be a finite number, got 'inf'\n");
  EXPECT_EQ(run("eval --test-subset -3 --checkpoint x", &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --test-subset must be >= 0, got -3\n");
  // From a config file as well, with the file and line of the key (defect 12: the value errors of a file
  // used to name neither); the command line overrides the file's value.
  const fs::path f = write("zero.toml", "[train]\nlr = 0.1\nepochs = 0\n");
  EXPECT_EQ(run("--config " + f.string() + " train" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: " + f.string() + ":3: --epochs must be >= 1, got 0\n");
  const fs::path member = write("member.toml", "[train]\n\nsurrogate = \"tanh\"\n");
  EXPECT_EQ(run("train --config " + member.string() + no_data(), &err), 2);
  EXPECT_EQ(err.rfind("spikegrad: error: " + member.string() + ":3: --surrogate: tanh not in", 0), 0u) << err;
  EXPECT_EQ(run("--config " + f.string() + " train --epochs 1" + no_data(), &err), 2);
  EXPECT_NE(err.find("no-data"), std::string::npos) << "past the command line, to the missing data: " << err;
}

// The dataset flags of the JPEG and event datasets: ranges and choices checked on the command line, before any
// data is read; the readers' own checks (missing folders, bad files) come after.
TEST_F(CliOptions, DatasetFlagsAreCheckedBeforeTheData) {
  std::string err;
  EXPECT_EQ(run("train --dataset cifar10-dvs --dvs-split random-50-50" + no_data(), &err), 2);
  EXPECT_EQ(err.rfind("spikegrad: error: --dvs-split: random-50-50 not in", 0), 0u) << err;
  EXPECT_EQ(run("train --dataset cifar10-dvs --dvs-size 129" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --dvs-size must be in [1, 128], got 129\n");
  EXPECT_EQ(run("train --decode-threads -2" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --decode-threads must be in [-1, 256], got -2\n");
  EXPECT_EQ(run("train --dataset imagenet --crop-scale-min 0" + no_data(), &err), 2);
  EXPECT_EQ(err, "spikegrad: error: --crop-scale-min must be in (0, 1], got 0\n");
  EXPECT_EQ(run("train --dataset cifar10-dvs --attack-grad ann-qcfs" + no_data(), &err), 2);
  EXPECT_EQ(err.rfind("spikegrad: error: --attack-grad ann-qcfs: models of cifar10-dvs read event frames", 0), 0u) << err;
  EXPECT_EQ(run("train --dataset imagenet-21k" + no_data(), &err), 2);
  EXPECT_EQ(err.rfind("spikegrad: error: --dataset: imagenet-21k not in", 0), 0u) << err;
  app::CommandLine cl;
  ASSERT_EQ(parse({"train", "--dataset", "tiny-imagenet", "--jpeg-recipe", "resized-crop", "--image-size", "32",
                   "--skip-corrupt", "--no-dct-scaling", "--decode-threads", "3"},
                  &cl, &err),
            -1)
      << err;
  EXPECT_EQ(cl.config.jpeg_recipe, "resized-crop");
  EXPECT_EQ(cl.config.image_size, 32);
  EXPECT_TRUE(cl.config.skip_corrupt);
  EXPECT_FALSE(cl.config.dct_scaling);
  EXPECT_EQ(cl.config.decode_threads, 3);
}

// Defect 12: no source locations in what users read (they used to end every message: " [apps/train.cpp:
// 123]"), but behind --verbose / SPIKEGRAD_VERBOSE=1; the help shows the real defaults of the negatable
// flags (it printed "--progress,--no-progress{false}") and the datasets' default folders.
TEST_F(CliOptions, MessagesCarrySourceLocationsOnlyWhenVerbose) {
  std::string err;
  EXPECT_EQ(run("train" + no_data(), &err), 2);
  EXPECT_EQ(err.find(".cpp:"), std::string::npos) << err;
  EXPECT_EQ(err.find(" ["), std::string::npos) << err;
  EXPECT_NE(err.find("no-data"), std::string::npos) << err;
  EXPECT_EQ(run("--verbose train" + no_data(), &err), 2);
  EXPECT_NE(err.find(" [datasets/idx.cpp:"), std::string::npos) << err;
  EXPECT_EQ(run("train --verbose" + no_data(), &err), 2);
  EXPECT_NE(err.find(" [datasets/idx.cpp:"), std::string::npos) << err;
  ASSERT_EQ(setenv("SPIKEGRAD_VERBOSE", "1", 1), 0);  // the binary inherits it
  EXPECT_EQ(run("train" + no_data(), &err), 2);
  unsetenv("SPIKEGRAD_VERBOSE");
  EXPECT_NE(err.find(" [datasets/idx.cpp:"), std::string::npos) << err;
}

TEST_F(CliOptions, HelpShowsTheRealDefaults) {
  const fs::path out = dir_ / "help.txt";
  ASSERT_EQ(std::system((std::string(SPIKEGRAD_CLI_PATH) + " train --help >" + out.string()).c_str()), 0);
  std::ifstream in(out);
  const std::string help((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(help.find("{false}"), std::string::npos) << help;
  EXPECT_NE(help.find("--progress,--no-progress    progress bar on a terminal (default: on)"), std::string::npos) << help;
  EXPECT_NE(help.find("less memory; default: on)"), std::string::npos) << help;
  EXPECT_NE(help.find("default: /usr/share/datasets/fashion-mnist for fashion-mnist, data/mnist for mnist"),
            std::string::npos)
      << help;
}

TEST_F(CliOptions, OutputOntoAnInputIsRefused) {
  const std::string original = "not really a checkpoint, but it must survive";
  const fs::path ckpt = write("best.safetensors", original);
  fs::create_directories(dir_ / "sub");
  fs::create_symlink(ckpt, dir_ / "link.safetensors");
  std::string err;
  for (const std::string& same : {ckpt.string(), (dir_ / "sub" / ".." / "best.safetensors").string(),
                                  (dir_ / "link.safetensors").string()}) {
    EXPECT_EQ(run("attack --checkpoint " + ckpt.string() + " --save-adv " + same, &err), 2) << same;
    EXPECT_NE(err.find("--save-adv '" + same + "' is the same file as --checkpoint '" + ckpt.string() + "'"), std::string::npos)
        << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_EQ(run("eval --checkpoint " + ckpt.string() + " --save-logits " + same, &err), 2) << same;
    EXPECT_NE(err.find("--save-logits '" + same + "' is the same file as --checkpoint"), std::string::npos) << err;
  }
  const fs::path config = write("attack.toml", "[attack]\nsteps = 2\n");
  EXPECT_EQ(run("--config " + config.string() + " attack --checkpoint " + ckpt.string() + " --save-adv " + config.string(), &err), 2);
  EXPECT_NE(err.find("--save-adv '" + config.string() + "' is the same file as --config"), std::string::npos) << err;
  std::ifstream in(ckpt);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), original);
  // A different output path gets as far as reading the (not a) checkpoint.
  EXPECT_EQ(run("attack --checkpoint " + ckpt.string() + " --save-adv " + (dir_ / "adv.safetensors").string(), &err), 2);
  EXPECT_EQ(err.find("--save-adv"), std::string::npos) << err;
}
#endif

TEST_F(CliOptions, IntegerFlagsTakeTheirWholeRange) {
  app::CommandLine cl;
  std::string err;
  ASSERT_EQ(parse({"attack", "--checkpoint", "x", "--steps", "2147483647", "--seed", "18446744073709551615", "--attack-subset",
                   "0", "--eval-batch", "9223372036854775807"},
                  &cl, &err),
            -1)
      << err;
  EXPECT_EQ(cl.config.steps, 2147483647);
  EXPECT_EQ(cl.config.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(cl.config.attack_subset, 0);
  EXPECT_EQ(cl.config.eval_batch, std::numeric_limits<int64_t>::max());
  ASSERT_EQ(parse({"train", "--seed", "0", "--epochs", "+5", "--lr", "1e-2", "--decay", "1"}, &cl, &err), -1) << err;
  EXPECT_EQ(cl.config.seed, 0u);
  EXPECT_EQ(cl.config.epochs, 5);
  EXPECT_DOUBLE_EQ(cl.config.lr, 1e-2);
  EXPECT_EQ(cl.config.decay, 1.0);
  for (const char* bad : {"", " 3", "3 ", "0x10", "1e3", "--"}) {
    EXPECT_EQ(parse({"train", "--epochs=" + std::string(bad)}, &cl, &err), 2) << "'" << bad << "'";
    EXPECT_NE(err.find("--epochs"), std::string::npos) << err;
  }
}

TEST_F(CliOptions, OutputPathCheckInTheLibrary) {
  app::RunConfig c;
  c.checkpoint = (dir_ / "a.safetensors").string();
  c.save_adv = (dir_ / "b.safetensors").string();
  EXPECT_NO_THROW(app::check_outputs_differ_from_inputs(c));
  c.save_adv = (dir_ / "." / "a.safetensors").string();
  EXPECT_THROW(app::check_outputs_differ_from_inputs(c), Error);
  c.save_adv.clear();
  c.save_logits = "cfg.toml";
  EXPECT_THROW(app::check_outputs_differ_from_inputs(c, "./cfg.toml"), Error);
  EXPECT_NO_THROW(app::check_outputs_differ_from_inputs(c, "other.toml"));
}

}  // namespace
}  // namespace spikegrad::testing
