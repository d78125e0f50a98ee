#include "apps/metrics.h"

#include <fstream>
#include <sstream>

#include "engine/check.h"

namespace spikegrad::app {

void MetricsFile::truncate_to(int64_t epochs) const {
  std::ifstream in(path_);
  if (!in) return;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line) && int64_t(lines.size()) < epochs + 1) lines.push_back(line);
  in.close();
  std::ofstream out(path_, std::ios::trunc);
  SG_CHECK(out.good(), path_ << ": cannot rewrite the metrics file");
  for (const std::string& l : lines) out << l << "\n";
}

void MetricsFile::append(const EpochMetrics& m) const {
  const bool fresh = !std::ifstream(path_).good();
  std::ofstream out(path_, std::ios::app);
  SG_CHECK(out.good(), path_ << ": cannot open the metrics file for writing");
  if (fresh) {
    out << "epoch,lr";
    for (const auto& [name, v] : m.loss_parts) out << "," << name;
    out << ",train_acc,val_acc,test_acc,train_peak_mib,seconds,images_per_s\n";
  }
  std::ostringstream row;
  row.precision(8);
  row << m.epoch << "," << m.lr;
  for (const auto& [name, v] : m.loss_parts) row << "," << v;
  row << "," << m.train_accuracy << ",";
  if (m.val_accuracy >= 0) row << m.val_accuracy;
  row << "," << m.test_accuracy << "," << m.train_peak_mib << "," << m.seconds << "," << m.images_per_second << "\n";
  out << row.str();
  SG_CHECK(out.good(), path_ << ": write failed");
}

}  // namespace spikegrad::app
