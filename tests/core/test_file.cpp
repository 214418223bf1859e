// Whole-file reads, atomic writes, and the count wording of lrgd_core.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "lrgd/error.h"
#include "lrgd/file.h"
#include "lrgd/progress.h"

namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("lrgd-test-file-" + std::to_string(::getpid()));
  Scratch() { fs::remove_all(dir); }
  ~Scratch() { fs::remove_all(dir); }
};

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lrgd::IoError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(File, AtomicWriteMakesTheFolderAndLeavesNoTemporary) {
  Scratch s;
  const auto path = s.dir / "a" / "b" / "out.txt";
  std::string bytes = "line 1\n";
  bytes.push_back('\0');  // binary content survives
  bytes += std::string(200000, 'x');
  lrgd::write_file_atomic(path, bytes);
  EXPECT_EQ(lrgd::read_file(path), bytes);
  lrgd::write_file_atomic(path, "short");
  EXPECT_EQ(lrgd::read_file(path), "short") << "a rewrite replaces the whole file";
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(path.parent_path())) {
    ++entries;
    EXPECT_EQ(e.path(), path) << "a temporary file is left behind";
  }
  EXPECT_EQ(entries, 1u);
}

// Two writers of one path (two tests building the same cached model, two runs) never share a
// temporary file: each name is new, within a process and across processes (the pid).
TEST(File, PrivateTempPathsAreDistinctAndBesideThePath) {
  const fs::path path = "/some/dir/model.gguf";
  const auto a = lrgd::private_temp_path(path);
  const auto b = lrgd::private_temp_path(path);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.parent_path(), path.parent_path());
  EXPECT_EQ(a.string().rfind(path.string() + ".tmp." + std::to_string(::getpid()) + ".", 0), 0u) << a;
}

TEST(File, ErrorsNameThePathAndTheReason) {
  Scratch s;
  const auto missing = s.dir / "nope.txt";
  const auto r = what_of([&] { lrgd::read_file(missing); });
  EXPECT_NE(r.find("cannot read " + missing.string()), std::string::npos) << r;
  EXPECT_NE(r.find("No such file"), std::string::npos) << r;
  // A parent that is a file cannot become a folder.
  lrgd::write_file_atomic(s.dir / "file", "x");
  const auto w = what_of([&] { lrgd::write_file_atomic(s.dir / "file" / "out.txt", "y"); });
  EXPECT_NE(w.find("cannot create the folder " + (s.dir / "file").string()), std::string::npos) << w;
  EXPECT_NE(w.find("Not a directory"), std::string::npos) << w;
  if (::geteuid() != 0) {  // root writes anywhere
    fs::create_directories(s.dir / "ro");
    fs::permissions(s.dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    const auto ro = what_of([&] { lrgd::write_file_atomic(s.dir / "ro" / "out.txt", "z"); });
    EXPECT_NE(ro.find("Permission denied"), std::string::npos) << ro;
    fs::permissions(s.dir / "ro", fs::perms::owner_all);
  }
}

TEST(Progress, CountsAreWordedForOneAndMany) {
  EXPECT_EQ(lrgd::count_of(1, "trial"), "1 trial");
  EXPECT_EQ(lrgd::count_of(0, "trial"), "0 trials");
  EXPECT_EQ(lrgd::count_of(10, "user"), "10 users");
}
