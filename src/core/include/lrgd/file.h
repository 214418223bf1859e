// Whole-file reads and crash-safe writes, with errors that name the file and the reason.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace lrgd {

// The file's bytes. Throws IoError("cannot read PATH: reason").
std::string read_file(const std::filesystem::path& path);

// PATH.tmp.<pid>.<n>: a temporary name beside PATH that no other writer, in this process or
// another, uses at the same time (two writers of the same PATH never share a temporary file).
std::filesystem::path private_temp_path(const std::filesystem::path& path);

// Writes `content` to a private temporary file, syncs it and renames it over PATH (then syncs the folder), so
// PATH holds either the old or the new content after a crash, never a torn one. Creates
// missing parent folders. Throws IoError naming the path and the system's reason.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Exclusive use of a folder by this process: DIR/.lock, held with flock(2) and naming the
// holder (pid, command, start time) inside. The kernel drops the lock when the process ends,
// kill -9 included, so a stale file never blocks. Taking it also proves the folder writable,
// before any work. Throws IoError: "DIR is in use by another process (pid 123: lrgd eval
// ...)" or "cannot write in DIR: <reason>".
class DirLock {
 public:
  explicit DirLock(const std::filesystem::path& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace lrgd
