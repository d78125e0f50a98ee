// metrics.csv: one row per epoch with every loss part named, accuracies of each split, lr, time and
// throughput. On resume the file is cut back to the checkpoint's epochs, so the rows always describe
// the model history that the checkpoints hold.
#pragma once
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
};

class MetricsFile {
 public:
  explicit MetricsFile(std::string path) : path_(std::move(path)) {}
  // Keeps the header and the first `epochs` rows (resume); creates nothing if the file is absent.
  void truncate_to(int64_t epochs) const;
  void append(const EpochMetrics& m) const;  // writes the header first if the file is new
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace spikegrad::app
