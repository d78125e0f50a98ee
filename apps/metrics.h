// metrics.csv: one row per epoch with every loss part named, accuracies of each split, lr, time and
// throughput. Each row is appended, flushed and fsynced before the epoch's last.safetensors is replaced
// (the row is the first half of the epoch's commit); on resume the file is reconciled with the checkpoint:
// rows beyond its epoch are dropped, and rows missing below it are an error, so the rows always describe
// exactly once the model history that the checkpoints hold.
#pragma once
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace spikegrad::app {

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double lr = 0;
  std::vector<std::pair<std::string, double>> loss_parts;  // "loss", "ce", "mi_bits", ... (epoch means)
  double train_accuracy = 0, val_accuracy = -1, test_accuracy = 0;  // percent; val -1: no validation split
  double seconds = 0, images_per_second = 0;
  // Memory the epoch's training steps needed on the device's caching allocator above what was live when
  // the epoch began (parameters, optimizer state, data): activations, gradients and scratch, in MiB.
  double train_peak_mib = 0;
  // train --track-robustness N (apps/robustness_tracking.h): KDE MI(X;Z) in bits and FGSM robust accuracy (%) on
  // the first N test examples; NaN (an empty cell) when the run does not track them. The columns are always
  // there, so every run's file has one column set.
  double test_mi_bits = std::numeric_limits<double>::quiet_NaN();
  double robust_accuracy = std::numeric_limits<double>::quiet_NaN();
};

class MetricsFile {
 public:
  explicit MetricsFile(std::string path) : path_(std::move(path)) {}
  // Resume: keeps the header and the first `epochs` rows (rewritten atomically when rows go). A file with
  // fewer rows than `epochs`, no header, or rows out of order is an error naming the file and the epochs
  // whose rows are missing; nothing is changed then. `checkpoint` names the checkpoint in that message.
  void truncate_to(int64_t epochs, const std::string& checkpoint = "the checkpoint") const;
  // Appends the row, with the header first if the file is absent or empty; flushed and fsynced, and a
  // failed write is an error naming the file. A file whose header predates the test_mi_bits / robust_acc
  // columns (a run resumed across the upgrade) gets rows without them, matching its header.
  void append(const EpochMetrics& m) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace spikegrad::app
