#include "apps/run_folder.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "engine/check.h"

namespace spikegrad::app {

namespace fs = std::filesystem;

namespace {

void write_all(int fd, const std::string& text, const fs::path& path) {
  const char* p = text.data();
  size_t n = text.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    // A short write is retried; the retry reports the real cause (ENOSPC, EFBIG, EIO).
    SG_CHECK(w > 0, path.string() << ": write failed: " << (w < 0 ? std::strerror(errno) : "write returned 0 bytes"));
    p += w;
    n -= size_t(w);
  }
}

void sync_and_close(int fd, const fs::path& path) {
  const int rc = ::fsync(fd);
  const int err = errno;
  // fsync of a character device (e.g. /dev/null) is EINVAL: nothing to sync, not a failed write.
  if (rc != 0 && err != EINVAL) {
    ::close(fd);
    SG_FAIL(path.string() << ": write failed: " << std::strerror(err));
  }
  SG_CHECK(::close(fd) == 0, path.string() << ": write failed: " << std::strerror(errno));
}

// All of `text` into the open `fd`, synced and closed; the fd is closed on every path.
void write_sync_close(int fd, const std::string& text, const fs::path& path) {
  try {
    write_all(fd, text, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  sync_and_close(fd, path);
}

void sync_directory(const fs::path& dir, const fs::path& path) {
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  SG_CHECK(dfd >= 0, path.string() << ": written, but its folder could not be opened to sync it: " << std::strerror(errno));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  SG_CHECK(rc == 0 || err == EINVAL, path.string() << ": written, but syncing its folder failed: " << std::strerror(err));
}

bool is_temporary(const std::string& name) {
  const size_t n = name.size();
  return (n > 4 && name.compare(n - 4, 4, ".tmp") == 0) || name.find(".tmp.") != std::string::npos;
}

}  // namespace

void write_file_atomically(const fs::path& path, const std::string& text) {
  static std::atomic<uint64_t> counter{0};
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SG_CHECK(fd >= 0, path.string() << ": cannot write (creating " << tmp.filename().string()
                                  << " failed: " << std::strerror(errno) << ")");
  try {
    write_sync_close(fd, text, path);
    SG_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, path.string() << ": write failed: renaming "
                                                                     << tmp.filename().string() << " over it: "
                                                                     << std::strerror(errno));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  sync_directory(path.parent_path(), path);
}

void append_durably(const fs::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  SG_CHECK(fd >= 0, path.string() << ": cannot open for appending: " << std::strerror(errno));
  write_sync_close(fd, text, path);
}

void validate_run_name(const std::string& name) {
  const bool bad = name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
                   name.find('\\') != std::string::npos || name.find('\0') != std::string::npos;
  SG_CHECK(!bad, "--name '" << name
                            << "': must be one folder name inside the runs folder (not empty, '.' or '..', and no '/' "
                               "or '\\'); use --runs-dir to choose where runs go");
}

RunLock::RunLock(const fs::path& dir) {
  const fs::path path = dir / ".spikegrad.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  SG_CHECK(fd_ >= 0, path.string() << ": cannot open the run folder's lock file: " << std::strerror(errno));
  int rc;
  do rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    std::string holder;
    if (err == EWOULDBLOCK) {
      char buf[32] = {};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      if (n > 0) holder = std::string(buf, size_t(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    }
    ::close(fd_);
    fd_ = -1;
    SG_CHECK(err != EWOULDBLOCK, "run folder " << dir.string() << " is in use by another spikegrad process (pid "
                                               << (holder.empty() ? std::string("unknown") : holder)
                                               << "); wait for it to finish or use --name for a new run");
    SG_FAIL(path.string() << ": cannot lock the run folder: " << std::strerror(err));
  }
  // Ours now: record the pid for the message another process gets. Informational only (the lock is the
  // flock), so a failure here does not stop the run.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (!is_temporary(e.path().filename().string())) continue;
    std::error_code rm;
    fs::remove_all(e.path(), rm);
    if (!rm) std::fprintf(stderr, "removed %s, left by an interrupted write\n", e.path().string().c_str());
  }
}

}  // namespace spikegrad::app
