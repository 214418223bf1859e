// `lrgd eval` with a tiny random GGUF on the Games data: kill -9 in the middle, resume,
// and compare with an uninterrupted run byte for byte; score mode is deterministic too.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "eval_test_util.h"
#include "lrgd/model_init.h"
#include "process.h"
#include "tiny_model.h"

namespace {

using lrgd::test::spawn;
using lrgd::test::wait_exit;

using namespace lrgd;
using nlohmann::json;

using lrgd::test::kGames;
using lrgd::test::tiny_model;

// zsl --constrain (generate mode) or icl --mode score.
std::vector<std::string> eval_args(const std::filesystem::path& model, const std::filesystem::path& out, bool score,
                                   int n_users = 20) {
  std::vector<std::string> a{LRGD_CLI,        "eval",
                             "--data",        kGames.string(),
                             "--model",       model.string(),
                             "--users",       std::to_string(n_users),
                             "--trials",      "2",
                             "--batch",       "4",
                             "--threads",     "1",
                             "--no-progress", "--out",
                             out.string()};
  if (score)
    a.insert(a.end(), {"--method", "icl", "--mode", "score"});
  else
    a.insert(a.end(), {"--method", "zsl", "--constrain"});
  return a;
}

std::size_t complete_lines(const std::filesystem::path& p) {
  const auto s = test::slurp(p);
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

TEST(EvalResume, KillNineThenResumeIsByteIdentical) {
  if (!std::filesystem::exists(kGames)) GTEST_SKIP() << "no Games data";
  test::TempDir dir("kill");
  const auto model = tiny_model(dir.path());
  const auto killed = dir / "killed";
  const auto full = dir / "full";

  // Run, and kill -9 once a few records are on disk.
  const pid_t pid = spawn(eval_args(model, killed, false));
  ASSERT_GT(pid, 0);
  const auto results = killed / "results.jsonl";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         (!std::filesystem::exists(results) || complete_lines(results) < 5))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  const std::size_t n_done = complete_lines(results);
  ASSERT_GE(n_done, 5u);
  ASSERT_LT(n_done, 40u);
  // Simulate a write cut in the middle of a line as well.
  std::ofstream(results, std::ios::app | std::ios::binary) << R"({"trial":1,"draw":3,"user":"12)";

  auto resume = eval_args(model, killed, false);
  resume.push_back("--resume");
  ASSERT_EQ(wait_exit(spawn(resume)), 0);
  ASSERT_EQ(wait_exit(spawn(eval_args(model, full, false))), 0);

  const auto want = test::slurp(full / "results.jsonl");
  EXPECT_EQ(std::count(want.begin(), want.end(), '\n'), 40);
  EXPECT_EQ(test::slurp(results), want);

  const auto s_resumed = json::parse(test::slurp(killed / "summary.json"));
  const auto s_full = json::parse(test::slurp(full / "summary.json"));
  EXPECT_EQ(s_resumed["n_resumed"], n_done);
  EXPECT_EQ(s_resumed["n_computed"], 40 - n_done);
  EXPECT_EQ(s_resumed["torn_line_dropped"], true);
  // Nothing already computed was asked of the model again.
  EXPECT_EQ(s_full["backend"]["n_requests"].get<std::size_t>() - s_resumed["backend"]["n_requests"].get<std::size_t>(),
            n_done);
  EXPECT_EQ(s_resumed["metrics"], s_full["metrics"]);
  EXPECT_EQ(s_full["valid_output_rate"], 1.0);
  EXPECT_GT(s_full["time_in_model_s"].get<double>(), 0.0);
}

TEST(EvalResume, ScoreModeRunsAreByteIdentical) {
  if (!std::filesystem::exists(kGames)) GTEST_SKIP() << "no Games data";
  test::TempDir dir("score");
  const auto model = tiny_model(dir.path());
  std::string first;
  for (const char* name : {"a", "b"}) {
    const auto args = eval_args(model, dir / name, true, 2);
    ASSERT_EQ(wait_exit(spawn(args)), 0);
    const auto s = test::slurp(dir / name / "results.jsonl");
    EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 4);
    if (first.empty())
      first = s;
    else
      EXPECT_EQ(s, first);
  }
  const auto summary = json::parse(test::slurp(dir / "a" / "summary.json"));
  EXPECT_EQ(summary["method"], "icl");
  EXPECT_EQ(summary["mode"], "score");
  EXPECT_EQ(summary["valid_output_rate"], 1.0);
}

}  // namespace
