// Storage faults through the binary: a file-size limit during eval and during LRGD's
// optimisation (a clear error, and the resumed run equals an uninterrupted one), a run
// directory that is in use or cannot be written, a damaged memory or response cache.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "eval_test_util.h"
#include "lrgd/error.h"
#include "lrgd/file.h"
#include "process.h"
#include "tiny_model.h"

namespace fs = std::filesystem;
using lrgd::test::kGames;

namespace {

struct Outcome {
  int code = -1;  // exit status; -1 if killed by a signal
  std::string out;
};

// Runs lrgd with `args` under a file-size limit of `max_file_bytes` (0: none).
Outcome run_limited(const std::vector<std::string>& args, rlim_t max_file_bytes, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (max_file_bytes > 0) {
      const rlimit lim{max_file_bytes, max_file_bytes};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<std::string> all{LRGD_CLI};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : all) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, lrgd::read_file(log)};
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST(StorageFaults, FileSizeLimitDuringEvalThenResumeEqualsAnUninterruptedRun) {
  if (!fs::exists(kGames)) GTEST_SKIP() << "no Games data";
  lrgd::test::TempDir dir("fsize");
  const std::vector<std::string> common{"eval",    "--data",       kGames.string(), "--method", "pop",
                                        "--users", "300",          "--trials",      "2",        "--batch",
                                        "16",      "--no-progress"};
  const auto cut = run_limited(with(common, {"--out", (dir / "cut").string()}), 40000, dir / "cut.log");
  EXPECT_EQ(cut.code, 1) << cut.out;
  EXPECT_NE(cut.out.find("File too large"), std::string::npos) << cut.out;
  EXPECT_NE(cut.out.find((dir / "cut" / "results.jsonl").string()), std::string::npos) << "the file is named";
  EXPECT_LE(fs::file_size(dir / "cut" / "results.jsonl"), 40000u);

  const auto resumed = run_limited(with(common, {"--out", (dir / "cut").string(), "--resume"}), 0, dir / "r.log");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  const auto whole = run_limited(with(common, {"--out", (dir / "whole").string()}), 0, dir / "w.log");
  ASSERT_EQ(whole.code, 0) << whole.out;
  EXPECT_EQ(lrgd::read_file(dir / "cut" / "results.jsonl"), lrgd::read_file(dir / "whole" / "results.jsonl"));
}

TEST(StorageFaults, FileSizeLimitDuringLrgdOptimisationThenResumeEqualsAnUninterruptedRun) {
  if (!fs::exists(kGames)) GTEST_SKIP() << "no Games data";
  lrgd::test::TempDir dir("fsize-lrgd");
  const auto model = lrgd::test::tiny_model(dir.path());
  const std::vector<std::string> common{"eval",
                                        "--data",
                                        kGames.string(),
                                        "--method",
                                        "lrgd",
                                        "--model",
                                        model.string(),
                                        "--users",
                                        "8",
                                        "--trials",
                                        "1",
                                        "--paths",
                                        "2",
                                        "--rounds",
                                        "3",
                                        "--batch",
                                        "2",
                                        "--threads",
                                        "1",
                                        "--constrain",
                                        "--no-plot",
                                        "--no-progress"};
  // The memory's write-ahead log outgrows 64 KiB while the optimisation commits a round.
  const auto cut = run_limited(with(common, {"--out", (dir / "cut").string()}), 65536, dir / "cut.log");
  EXPECT_EQ(cut.code, 1) << cut.out;
  EXPECT_NE(cut.out.find("memory " + (dir / "cut" / "memory.sqlite").string() + ": COMMIT: disk I/O error"),
            std::string::npos)
      << cut.out;
  EXPECT_EQ(cut.out.find("Segmentation"), std::string::npos) << cut.out;

  const auto resumed = run_limited(with(common, {"--out", (dir / "cut").string(), "--resume"}), 0, dir / "r.log");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  const auto whole = run_limited(with(common, {"--out", (dir / "whole").string()}), 0, dir / "w.log");
  ASSERT_EQ(whole.code, 0) << whole.out;
  EXPECT_EQ(lrgd::read_file(dir / "cut" / "results.jsonl"), lrgd::read_file(dir / "whole" / "results.jsonl"));
  const auto rows = [&](const fs::path& run) {
    return lrgd::test::run_cli("memory export --memory " + (run / "memory.sqlite").string() + " 2>/dev/null").out;
  };
  EXPECT_EQ(rows(dir / "cut"), rows(dir / "whole")) << "every demonstration row, as an uninterrupted run writes it";
}

TEST(StorageFaults, ARunDirectoryInUseIsRefusedNamingTheHolder) {
  if (!fs::exists(kGames)) GTEST_SKIP() << "no Games data";
  lrgd::test::TempDir dir("lock");
  const auto run = dir / "run";
  fs::create_directories(run);
  {
    const lrgd::DirLock held(run);  // this process holds it, as a running eval would
    const auto r = lrgd::test::run_cli("eval --data " + kGames.string() + " --method pop --users 5 --trials 1 --out " +
                                       run.string());
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("is in use by another process (pid " + std::to_string(::getpid())), std::string::npos)
        << r.out;
    EXPECT_FALSE(fs::exists(run / "config.json")) << "refused before any work";
  }
  // Released with its holder (kill -9 included: the kernel drops the lock).
  const auto r = lrgd::test::run_cli("eval --data " + kGames.string() + " --method pop --users 5 --trials 1 --out " +
                                     run.string());
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(StorageFaults, ARunDirectoryThatCannotBeWrittenFailsBeforeAnyWork) {
  if (!fs::exists(kGames)) GTEST_SKIP() << "no Games data";
  // /proc refuses new folders even to root.
  const auto r = lrgd::test::run_cli("eval --data " + kGames.string() +
                                     " --method pop --users 5 --trials 1 --out /proc/self/lrgd-run");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot create the run directory /proc/self/lrgd-run"), std::string::npos) << r.out;
  if (::geteuid() != 0) {  // permissions do not bind root
    lrgd::test::TempDir dir("ro");
    const auto ro = dir / "ro";
    fs::create_directories(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    const auto w = lrgd::test::run_cli("eval --data " + kGames.string() + " --method pop --users 5 --trials 1 --out " +
                                       ro.string());
    EXPECT_EQ(w.code, 1) << w.out;
    EXPECT_NE(w.out.find("cannot write in " + ro.string()), std::string::npos) << w.out;
    fs::permissions(ro, fs::perms::owner_all);
  }
}

TEST(StorageFaults, DamagedMemoryAndCacheAreNamedNeverACrash) {
  if (!fs::exists(kGames)) GTEST_SKIP() << "no Games data";
  lrgd::test::TempDir dir("damaged");
  // Not a database at all.
  lrgd::write_file_atomic(dir / "memory.sqlite", std::string(8192, 'x'));
  const auto m = lrgd::test::run_cli("memory list --memory " + (dir / "memory.sqlite").string());
  EXPECT_EQ(m.code, 1) << m.out;
  EXPECT_NE(m.out.find("memory " + (dir / "memory.sqlite").string() + " is damaged"), std::string::npos) << m.out;

  // A real response cache with a page overwritten in the middle.
  const auto model = lrgd::test::tiny_model(dir.path());
  const std::string eval = "eval --data " + kGames.string() + " --method zsl --model " + model.string() +
                           " --users 6 --trials 1 --constrain --threads 1 --no-progress --cache " +
                           (dir / "cache.sqlite").string();
  ASSERT_EQ(lrgd::test::run_cli(eval + " --out " + (dir / "a").string()).code, 0);
  {
    auto bytes = lrgd::read_file(dir / "cache.sqlite");
    ASSERT_GE(bytes.size(), 3u * 4096u);
    for (std::size_t i = 4096 + 100; i < 2 * 4096; ++i) bytes[i] = static_cast<char>(0xA5);
    lrgd::write_file_atomic(dir / "cache.sqlite", bytes);
    fs::remove(dir / "cache.sqlite-wal");
    fs::remove(dir / "cache.sqlite-shm");
  }
  const auto c = lrgd::test::run_cli(eval + " --out " + (dir / "b").string());
  EXPECT_EQ(c.code, 1) << c.out;
  EXPECT_NE(c.out.find("response cache " + (dir / "cache.sqlite").string() + " is damaged"), std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("rebuilt"), std::string::npos) << c.out;
  // Rebuilt as the message says: the same answers as before.
  fs::remove(dir / "cache.sqlite");
  ASSERT_EQ(lrgd::test::run_cli(eval + " --out " + (dir / "b").string() + " --overwrite").code, 0);
  EXPECT_EQ(lrgd::read_file(dir / "a" / "results.jsonl"), lrgd::read_file(dir / "b" / "results.jsonl"));
}
