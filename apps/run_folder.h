// The run folder's integrity: every file of runs/<name>/ is written through one checked path (whole files
// atomically: temporary beside it, fsync, rename, fsync of the folder; metrics rows appended, flushed and
// fsynced), so a full disk or an I/O error is an error naming the file, never a silently short file.
// A run holds an exclusive lock on its folder for its whole life, and --name cannot leave the runs folder.
#pragma once
#include <filesystem>
#include <string>

namespace spikegrad::app {

// Replaces `path` with `text` atomically; on failure `path` keeps its old content and the error names it.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);
// Appends `text` to `path` (created if absent), then fsyncs it; any short write or failed sync is an error
// naming the file.
void append_durably(const std::filesystem::path& path, const std::string& text);

// `--name`: one folder name inside the runs folder: not empty, ".", "..", absolute, nor containing '/' or '\'.
void validate_run_name(const std::string& name);

// An exclusive flock on <dir>/.spikegrad.lock, held until destruction (the kernel also drops it when the
// process dies, however it dies, so a lock left by a killed run never blocks the next one). A folder locked
// by another process (or another RunLock) is an error naming the folder and that process's pid.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes what an interrupted write left in `dir` (temporaries "*.tmp" and "*.tmp.<pid>.<n>"); call it
// while holding the folder's RunLock.
void remove_stale_temporaries(const std::filesystem::path& dir);

}  // namespace spikegrad::app
