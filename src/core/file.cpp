#include "lrgd/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "lrgd/error.h"

namespace lrgd {

namespace {

std::string errno_text() { return std::strerror(errno); }

// A file descriptor closed on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string read_file(const std::filesystem::path& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw IoError("cannot read " + path.string() + ": " + errno_text());
  std::string out;
  char chunk[1 << 16];
  while (true) {
    const auto n = ::read(f.fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError("cannot read " + path.string() + ": " + errno_text());
    }
    if (n == 0) break;
    out.append(chunk, static_cast<std::size_t>(n));
  }
  return out;
}

std::filesystem::path private_temp_path(const std::filesystem::path& path) {
  static std::atomic<std::uint64_t> counter{0};
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  return tmp;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create the folder " + dir.string() + ": " + ec.message());
  const std::filesystem::path tmp = private_temp_path(path);
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) throw IoError("cannot write " + tmp.string() + ": " + errno_text());
    std::size_t done = 0;
    while (done < content.size()) {
      const auto n = ::write(f.fd, content.data() + done, content.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const std::string why = errno_text();
        ::unlink(tmp.c_str());
        throw IoError("cannot write " + tmp.string() + ": " + why);
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      const std::string why = errno_text();
      ::unlink(tmp.c_str());
      throw IoError("cannot write " + tmp.string() + ": " + why);
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw IoError("cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  // Make the rename itself durable.
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) (void)::fsync(d.fd);
}

namespace {

// "lrgd eval --data ..." from /proc/self/cmdline (NUL-separated), for the lock's holder line.
std::string own_command() {
  std::string cmd;
  try {
    cmd = read_file("/proc/self/cmdline");
  } catch (const IoError&) {
    return "?";
  }
  for (auto& c : cmd)
    if (c == '\0' || c == '\n') c = ' ';
  while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
  if (cmd.size() > 300) cmd = cmd.substr(0, 297) + "...";
  return cmd;
}

}  // namespace

DirLock::DirLock(const std::filesystem::path& dir) {
  const auto path = dir / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError("cannot write in " + dir.string() + ": " + errno_text());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string why = errno == EWOULDBLOCK ? "" : errno_text();
    std::string holder;
    try {
      holder = read_file(path);
    } catch (const IoError&) {
    }
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (!why.empty()) throw IoError("cannot lock " + path.string() + ": " + why);
    throw IoError(dir.string() + " is in use by another process (" + (holder.empty() ? "unknown" : holder) +
                  "); wait for it to finish or choose another folder");
  }
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32] = {};
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  const std::string holder = "pid " + std::to_string(::getpid()) + ", started " + when + ": " + own_command() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, holder.data(), holder.size(), 0) < 0) {
    const std::string why = errno_text();
    ::close(fd_);
    fd_ = -1;
    throw IoError("cannot write in " + dir.string() + ": " + why);
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing drops the flock
}

}  // namespace lrgd
