// The trainer on the JPEG and event datasets, end to end on copies the tests write in the standard layouts:
// `spikegrad train --dataset tiny-imagenet|imagenet|cifar10-dvs --data-dir ...` trains, selects, evaluates and
// attacks; eval reads the dataset settings back from the checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "apps/commands.h"
#include "apps/train.h"
#include "datasets/jpeg.h"
#include "engine/safetensors.h"
#include "support/cli_runs.h"
#include "support/jpeg_files.h"
#include "support/synthetic_data.h"

namespace spikegrad::testing {
namespace {

namespace fs = std::filesystem;

// Class c is a colour plus a bright square in quadrant c over noise: learnable in a few steps at 16x16.
Bytes learnable_jpeg(int label, int file) {
  const int64_t side = 48;
  Bytes rgb = smooth_pixels(side, side, 3, 100 * label + file);
  for (int64_t y = 0; y < side; ++y)
    for (int64_t x = 0; x < side; ++x) {
      const bool in_square = (y / (side / 2)) == label / 2 && (x / (side / 2)) == label % 2;
      uint8_t* px = &rgb[size_t((y * side + x) * 3)];
      px[0] = uint8_t(px[0] / 4 + (in_square ? 190 : 0));
      px[1] = uint8_t(px[1] / 4 + 40 * label);
      px[2] = uint8_t(px[2] / 4);
    }
  return jpeg_rgb(rgb, side, side, 95);
}

const std::vector<std::string> kWnids = {"n04", "n01", "n03", "n02"};

// Tiny-ImageNet layout with 4 classes: 16 train images each, 12 val images.
void write_tiny_layout(const fs::path& root) {
  std::string wnids;
  for (const std::string& w : kWnids) wnids += w + "\n";
  write_text(root / "wnids.txt", wnids);
  for (int c = 0; c < 4; ++c)
    for (int f = 0; f < 16; ++f)
      write_bytes(root / "train" / kWnids[size_t(c)] / "images" / (kWnids[size_t(c)] + "_" + std::to_string(f) + ".JPEG"),
                  learnable_jpeg(c, f));
  std::string annotations;
  for (int v = 0; v < 12; ++v) {
    const std::string name = "val_" + std::to_string(v) + ".JPEG";
    write_bytes(root / "val" / "images" / name, learnable_jpeg(v % 4, 50 + v));
    annotations += name + "\t" + kWnids[size_t(v % 4)] + "\t0\t0\t10\t10\n";
  }
  write_text(root / "val" / "val_annotations.txt", annotations);
}

app::RunConfig jpeg_run(const std::string& dataset, const fs::path& data, const fs::path& runs) {
  app::RunConfig c = small_run_config(data, runs, 8, 8, 16);
  c.dataset = dataset;
  c.model = "small_cnn";
  c.image_size = 16;
  c.batch = 8;
  c.epochs = 3;
  c.lr = 1e-2;
  c.mi_lambda = 0;
  c.attacks = "fgsm";
  c.decode_threads = 2;
  return c;
}

// eval of a run's best checkpoint on the CPU, its per-example logits saved to `logits`; the dataset and its
// settings come from the checkpoint, as the CLI's eval does by default.
app::RunConfig eval_flags(const fs::path& run, const fs::path& logits) {
  app::RunConfig eval;
  eval.dataset.clear();
  eval.checkpoint = (run / "best.safetensors").string();
  eval.device = "cpu";
  eval.progress = false;
  eval.save_logits = logits.string();
  return eval;
}

double report_accuracy(const fs::path& run, const std::string& key) {
  const std::vector<std::vector<std::string>> rows = read_csv(run / "metrics.csv");
  EXPECT_GE(rows.size(), 2u);
  const std::vector<std::string>& header = rows.front();
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == key) return std::stod(rows.back()[i]);
  ADD_FAILURE() << "no column " << key << " in metrics.csv";
  return NAN;
}

TEST(DatasetCli, TrainsAndEvaluatesOnTinyImageNetLayout) {
  const fs::path dir = fresh_test_dir("dataset_cli");
  write_tiny_layout(dir / "tiny");
  app::RunConfig c = jpeg_run("tiny-imagenet", dir / "tiny", dir / "runs");
  const fs::path run = app::run_train(c);
  const std::string report = read_text(run / "report.md");
  EXPECT_NE(report.find("tiny-imagenet"), std::string::npos) << report;
  // The colours and squares are easy: the model must have learned them (chance is 25%).
  EXPECT_GE(report_accuracy(run, "test_acc"), 50.0);

  // eval takes the crop size and recipe from the checkpoint: a different --image-size cannot be asked for.
  app::RunConfig eval = eval_flags(run, dir / "logits.safetensors");
  eval.attacks = "fgsm";
  eval.attack_subset = 4;
  eval.eval_batch = 5;
  app::run_eval(eval);
  const SafetensorsFile logits = load_safetensors(eval.save_logits);
  ASSERT_FALSE(logits.tensors.empty());
  EXPECT_EQ(logits.tensors[0].tensor.shape(), (Shape{12, 4}));  // every val image, 4 classes
}

TEST(DatasetCli, ImageNetFlatValFolderWithLabelFile) {
  const fs::path dir = fresh_test_dir("dataset_cli");
  const fs::path root = dir / "imagenet";
  for (int c = 0; c < 4; ++c)
    for (int f = 0; f < 6; ++f)
      write_bytes(root / "train" / kWnids[size_t(c)] / (kWnids[size_t(c)] + "_" + std::to_string(f) + ".JPEG"),
                  learnable_jpeg(c, f));
  std::string labels;
  for (int v = 0; v < 6; ++v) {
    const std::string name = "ILSVRC2012_val_" + std::to_string(v) + ".JPEG";
    write_bytes(root / "val" / name, learnable_jpeg(v % 4, 70 + v));
    labels += name + " " + kWnids[size_t(v % 4)] + "\n";
  }
  write_text(dir / "my_labels.txt", labels);
  app::RunConfig c = jpeg_run("imagenet", root, dir / "runs");
  c.epochs = 1;
  c.val_size = 4;
  c.val_labels = (dir / "my_labels.txt").string();
  const fs::path run = app::run_train(c);
  EXPECT_TRUE(fs::exists(run / "best.safetensors"));

  // A label file naming a class that has no training folder: a one-line error naming the file.
  write_text(dir / "bad_labels.txt", "ILSVRC2012_val_0.JPEG n99\n");
  c.val_labels = (dir / "bad_labels.txt").string();
  c.name = "bad";
  try {
    app::run_train(c);
    FAIL() << "accepted an unknown class";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad_labels.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("n99"), std::string::npos) << e.what();
  }
}

// CIFAR10-DVS layout: 10 class folders of AEDAT 2.0 files; class c's events fall in a band of rows of its own.
void write_dvs_layout(const fs::path& root, int per_class) {
  const char* classes[] = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  for (int c = 0; c < 10; ++c) {
    fs::create_directories(root / classes[c]);
    for (int f = 0; f < per_class; ++f) {
      std::string bytes = "#!AER-DAT2.0\r\n# written by the test\r\n";
      auto put = [&](uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) bytes.push_back(char(uint8_t(v >> s)));
      };
      for (uint32_t e = 0; e < 3000; ++e) {  // dense: the frames' values stay near 1 after the area resize
        const uint32_t sx = 12 * uint32_t(c) + (e * 7 + uint32_t(f)) % 12, sy = (e * 13) % 128, p = e % 2;
        put((sy << 8) | (sx << 1) | p);
        put(1000 + 10 * e);
      }
      std::ofstream(root / classes[c] / ("cifar10_" + std::string(classes[c]) + "_" + std::to_string(f) + ".aedat"),
                    std::ios::binary)
          << bytes;
    }
  }
}

TEST(DatasetCli, TrainsOnCifar10DvsFramesAndAttacksThem) {
  const fs::path dir = fresh_test_dir("dataset_cli");
  write_dvs_layout(dir / "dvs", 10);
  app::RunConfig c = small_run_config(dir / "dvs", dir / "runs", 8, 8, 16);
  c.dataset = "cifar10-dvs";
  c.model = "small_cnn";
  c.time_steps = 3;
  c.dvs_size = 32;
  c.dvs_split = "per-class-700-300";
  // Event frames are small numbers (a frame's mean is ~0.01): BN's running variance, which starts at 1, needs
  // ~100 updates (momentum 0.1) before evaluation sees what training saw, so many small batches.
  c.batch = 4;
  c.epochs = 6;
  c.lr = 1e-2;
  c.augment = "off";  // TET's roll by up to 5 px would move the bands (3 px at 32 px) across classes
  c.attacks = "fgsm,pgd";
  c.dvs_cache_dir = (dir / "cache").string();
  const fs::path run = app::run_train(c);
  EXPECT_TRUE(fs::exists(dir / "cache" / "cifar10-dvs_T3_number_32x32.safetensors"));
  const std::string report = read_text(run / "report.md");
  EXPECT_NE(report.find("| fgsm | eps 4/255"), std::string::npos) << report;
  EXPECT_NE(report.find("| pgd | eps 4/255"), std::string::npos) << report;
  EXPECT_EQ(report.find("ANN-ReLU"), std::string::npos) << report;  // frames have no one-image ANN
  EXPECT_GE(report_accuracy(run, "test_acc"), 50.0);  // chance is 10%: the bands are easy
  const std::string config = read_text(run / "config.json");
  EXPECT_NE(config.find("\"dvs_split\": \"per-class-700-300\""), std::string::npos) << config;

  // --T must match the frames the run was made with; eval rebuilds the frames from the checkpoint's settings.
  app::RunConfig eval = eval_flags(run, dir / "logits.safetensors");
  eval.attacks = "none";
  eval.dvs_cache_dir = c.dvs_cache_dir;
  app::run_eval(eval);
  const SafetensorsFile logits = load_safetensors(eval.save_logits);
  ASSERT_FALSE(logits.tensors.empty());
  EXPECT_EQ(logits.tensors[0].tensor.shape(), (Shape{30, 10}));  // per class 10 - round(0.7 * 10) = 3 test files
}


#ifdef SPIKEGRAD_CLI_PATH
// The error line of a failed run ("spikegrad: error: ..." to the end of its line); empty when there is none.
std::string error_line(const std::string& err) {
  const size_t at = err.find("spikegrad: error: ");
  return at == std::string::npos ? std::string() : err.substr(at, err.find('\n', at) - at);
}

// Damaged data through the real binary: exit code 2 and one error line naming the file, never a crash.
TEST(DatasetCli, DamagedFilesAreOneLineExit2ErrorsNamingTheFile) {
  const fs::path dir = fresh_test_dir("dataset_cli");
  const std::string common = " --device cpu --epochs 1 --val-size 4 --batch 4 --runs-dir " + (dir / "runs").string();
  std::string err;

  // An event file whose data is not whole 8-byte events.
  write_dvs_layout(dir / "dvs", 3);
  const fs::path odd = dir / "dvs" / "cat" / "cifar10_cat_1.aedat";
  std::ofstream(odd, std::ios::binary | std::ios::app) << 'x';
  EXPECT_EQ(run_cli("train --dataset cifar10-dvs --T 2 --data-dir " + (dir / "dvs").string() + common, &err), 2);
  EXPECT_EQ(err.rfind("spikegrad: error: ", 0), 0u) << err;  // before anything else: the frames are built first
  EXPECT_NE(error_line(err).find(odd.string()), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;

  // A truncated JPEG: found when the loader reaches it, named; with --skip-corrupt it is left out and counted.
  write_tiny_layout(dir / "tiny");
  const fs::path bad = dir / "tiny" / "train" / "n03" / "images" / "n03_5.JPEG";
  const Bytes full = learnable_jpeg(2, 5);
  write_bytes(bad, Bytes(full.begin(), full.begin() + full.size() / 2));
  const std::string tiny = "train --dataset tiny-imagenet --image-size 16 --attacks none --data-dir " +
                           (dir / "tiny").string() + common;
  EXPECT_EQ(run_cli(tiny + " --name strict", &err), 2);
  EXPECT_NE(error_line(err).find(bad.string()), std::string::npos) << err;
  EXPECT_EQ(run_cli(tiny + " --name skipping --skip-corrupt --no-progress", &err), 0) << err;
  EXPECT_NE(err.find("--skip-corrupt left out 1 unreadable file(s)"), std::string::npos) << err;
  EXPECT_NE(err.find(bad.string()), std::string::npos) << err;
}
#endif

}  // namespace
}  // namespace spikegrad::testing
