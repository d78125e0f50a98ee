#include "apps/metrics.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/run_folder.h"
#include "engine/check.h"

namespace spikegrad::app {

namespace fs = std::filesystem;

void MetricsFile::truncate_to(int64_t epochs, const std::string& checkpoint) const {
  std::vector<std::string> lines;
  {
    std::ifstream in(path_);
    if (!in) {
      SG_CHECK(epochs == 0, path_ << ": missing, but " << checkpoint << " is at epoch " << epochs
                                  << ": the rows of epochs 1.." << epochs
                                  << " are lost; restore the file, or start a new run with --name");
      return;
    }
    std::string line;
    while (std::getline(in, line) && int64_t(lines.size()) < epochs + 1) lines.push_back(line);
    SG_CHECK(!in.bad(), path_ << ": read failed");
  }
  int64_t rows = 0;  // complete rows in order: row i starts with "i,"
  if (!lines.empty() && lines[0].rfind("epoch,", 0) == 0)
    while (rows + 1 < int64_t(lines.size()) && lines[size_t(rows + 1)].rfind(std::to_string(rows + 1) + ",", 0) == 0) ++rows;
  SG_CHECK((!lines.empty() && lines[0].rfind("epoch,", 0) == 0) || epochs == 0,
           path_ << ": no header row, but " << checkpoint << " is at epoch " << epochs << ": the rows of epochs 1.."
                 << epochs << " are lost; restore the file, or start a new run with --name");
  SG_CHECK(rows >= epochs, path_ << ": holds rows for epochs 1.." << rows << ", but " << checkpoint << " is at epoch "
                                 << epochs << ": the rows of epochs " << rows + 1 << ".." << epochs
                                 << " are lost; restore the file, or start a new run with --name");
  std::error_code ec;
  const auto size = fs::file_size(path_, ec);
  std::string kept;
  for (const std::string& l : lines) kept += l + "\n";
  if (!ec && size == kept.size()) return;  // nothing beyond the checkpoint's epochs
  write_file_atomically(path_, kept);
}

void MetricsFile::append(const EpochMetrics& m) const {
  std::error_code ec;
  const bool fresh = !fs::exists(path_, ec) || fs::file_size(path_, ec) == 0;
  bool robustness_columns = true;
  if (!fresh && fs::is_regular_file(path_, ec)) {
    // The header is one line of a few hundred bytes; the read is bounded so that no file can make it run on.
    std::ifstream in(path_);
    std::vector<char> line(size_t(1) << 16, '\0');
    in.getline(line.data(), std::streamsize(line.size()));
    robustness_columns = std::string(line.data()).find(",test_mi_bits,robust_acc,") != std::string::npos;
  }
  std::ostringstream text;
  if (fresh) {
    text << "epoch,lr";
    for (const auto& [name, v] : m.loss_parts) text << "," << name;
    text << ",train_acc,val_acc,test_acc,test_mi_bits,robust_acc,train_peak_mib,seconds,images_per_s\n";
  }
  std::ostringstream row;
  row.precision(8);
  row << m.epoch << "," << m.lr;
  for (const auto& [name, v] : m.loss_parts) row << "," << v;
  row << "," << m.train_accuracy << ",";
  if (m.val_accuracy >= 0) row << m.val_accuracy;
  row << "," << m.test_accuracy;
  if (robustness_columns) {
    row << ",";
    if (!std::isnan(m.test_mi_bits)) row << m.test_mi_bits;
    row << ",";
    if (!std::isnan(m.robust_accuracy)) row << m.robust_accuracy;
  }
  row << "," << m.train_peak_mib << "," << m.seconds << "," << m.images_per_second << "\n";
  text << row.str();
  append_durably(path_, text.str());
}

}  // namespace spikegrad::app
