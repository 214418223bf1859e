// Folders of the tests: a fresh temporary folder per use, and one folder per build directory
// for inputs that tests build once and share (tiny models), so that parallel ctest runs of
// different builds never share a file and a new build never reads an older build's file.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace lrgd::test {

// A fresh folder under the system temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("lrgd-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// <build>/test-cache/<name>: shared by the tests of this build directory. Writers of a file
// here write a private temporary file and rename it, so concurrent tests see whole files.
inline std::filesystem::path build_cache(const std::string& name) {
  const std::filesystem::path dir = LRGD_TEST_CACHE_DIR;
  std::filesystem::create_directories(dir);
  return dir / name;
}

}  // namespace lrgd::test
