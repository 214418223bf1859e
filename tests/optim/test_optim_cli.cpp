// `lrgd eval --method lrgd`, `lrgd memory`, `lrgd ablate` with a tiny random GGUF on the
// Games data (child processes); kill -9 during the optimisation, then --resume.
#include <fcntl.h>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "../eval/eval_test_util.h"
#include "lrgd/data.h"
#include "lrgd/memory.h"
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

std::vector<std::string> common(const std::filesystem::path& model, int n_users) {
  return {"--data", kGames.string(), "--model", model.string(), "--users",      std::to_string(n_users), "--trials",
          "1",      "--threads",     "1",       "--constrain",  "--no-progress"};
}

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string dump_memory(const std::filesystem::path& p) {
  std::string s;
  for (const auto& e : memory::Store(p).list()) s += memory::to_json(e) + "\n";
  return s;
}

TEST(OptimCli, GamesRunWritesEveryTableAndPlot) {
  if (!std::filesystem::exists(kGames)) GTEST_SKIP() << "no Games data";
  test::TempDir dir("cli");
  const auto model = tiny_model(dir.path());
  const auto run = dir / "run";
  ASSERT_EQ(wait_exit(spawn(
                cat({LRGD_CLI, "eval", "--method", "lrgd", "--paths", "2", "--rounds", "2", "--out", run.string()},
                    common(model, 10)))),
            0);
  for (const char* f :
       {"config.json", "results.jsonl", "summary.json", "table.md", "memory.sqlite", "collapse.md", "collapse.png"})
    EXPECT_TRUE(std::filesystem::exists(run / f)) << f;
  const auto summary = json::parse(test::slurp(run / "summary.json"));
  EXPECT_EQ(summary["label"], "LRGD");
  EXPECT_EQ(summary["n_records"], 10);
  EXPECT_EQ(summary["method_summary"]["n_users"], 10);
  EXPECT_EQ(summary["method_summary"]["n_rounds_computed"], 10 * 2 * 2);
  EXPECT_GT(summary["method_summary"]["tokens_per_user"]["validation"].get<double>(), 0.0);
  const auto config = json::parse(test::slurp(run / "config.json"));
  EXPECT_EQ(config["method_config"]["paths"], 2);
  EXPECT_EQ(config["prompt"]["demonstration"], "lrgd_best_valid");
  EXPECT_EQ(memory::Store(run / "memory.sqlite").count(), 40u);
  EXPECT_NE(test::slurp(run / "collapse.md").find("| 2 |"), std::string::npos);
  EXPECT_NE(test::slurp(run / "table.md").find("LRGD"), std::string::npos);
  for (const char* what : {"list", "best", "export"})
    EXPECT_EQ(wait_exit(spawn({LRGD_CLI, "memory", what, "--memory", (run / "memory.sqlite").string()})), 0) << what;
  {
    // A dataset's bare name matches its rows (the key is name:hash); a wrong one says what is there.
    const auto by_name =
        lrgd::test::run_cli("memory export --dataset Games --memory " + (run / "memory.sqlite").string());
    ASSERT_EQ(by_name.code, 0) << by_name.out;
    EXPECT_NE(by_name.out.find("40 rows exported"), std::string::npos) << by_name.out;
    const auto wrong = lrgd::test::run_cli("memory list --dataset Gamez --memory " + (run / "memory.sqlite").string());
    EXPECT_NE(wrong.out.find("no row matches"), std::string::npos) << wrong.out;
    EXPECT_NE(wrong.out.find("Games:"), std::string::npos) << wrong.out;
  }

  // The dual analysis of good against bad demonstrations from this memory: the user's
  // highest-S demonstration against its lowest, both recorded in dual.json.
  const auto rows = memory::Store(run / "memory.sqlite").list();
  const std::string user = rows.front().user;
  double hi = -1, lo = 2;
  for (const auto& e : rows)
    if (e.user == user) {
      hi = std::max(hi, e.score);
      lo = std::min(lo, e.score);
    }
  // The user by the dataset's own id (the reviewer id): the memory's rows (internal ids) are found.
  const auto games = lrgd::data::load_dataset(kGames);
  const auto u = lrgd::data::find_user(games, user);
  ASSERT_GE(u, 0);
  const std::string reviewer = games.user_alt_ids.at(static_cast<std::size_t>(u));
  ASSERT_EQ(lrgd::data::find_user(games, reviewer), u);
  const auto dual = dir / "dual.json";
  ASSERT_EQ(wait_exit(spawn({LRGD_CLI,           "dual",
                             "--data",           kGames.string(),
                             "--model",          model.string(),
                             "--user",           reviewer,
                             "--demos-from",     (run / "memory.sqlite").string(),
                             "--features",       "16",
                             "--round-features", "16",
                             "--generate",       "1",
                             "--threads",        "1",
                             "--no-plots",       "--out",
                             dual.string()})),
            0);
  const auto dj = json::parse(test::slurp(dual));
  ASSERT_EQ(dj["reports"].size(), 2u);
  EXPECT_EQ(dj["reports"][0]["label"], "good");
  EXPECT_EQ(dj["reports"][1]["label"], "bad");
  const auto good_src = dj["reports"][0]["demonstration"].get<std::string>();
  const auto bad_src = dj["reports"][1]["demonstration"].get<std::string>();
  EXPECT_NE(good_src.find(user + " (LRGD best"), std::string::npos) << good_src;
  EXPECT_NE(good_src.find(fmt::format("S = {:.3f}", hi)), std::string::npos) << good_src;
  EXPECT_NE(bad_src.find(user + " (LRGD worst"), std::string::npos) << bad_src;
  EXPECT_NE(bad_src.find(fmt::format("S = {:.3f}", lo)), std::string::npos) << bad_src;
  // A memory without this user is a clear error, not a silent fallback.
  EXPECT_EQ(wait_exit(spawn({LRGD_CLI, "dual", "--data", kGames.string(), "--model", model.string(), "--user",
                             "no-such-user", "--demos-from", (run / "memory.sqlite").string(), "--no-plots", "--out",
                             (dir / "x.json").string()})),
            2);

  // Table 5 and Fig. 9 in one command.
  const auto ab = dir / "ablate";
  ASSERT_EQ(wait_exit(spawn(cat({LRGD_CLI, "ablate", "--out", ab.string(), "--", "--rounds", "2"}, common(model, 4)))),
            0);
  for (const char* f : {"table5.md", "table5.json", "collapse.md", "collapse.png", "memory.sqlite"})
    EXPECT_TRUE(std::filesystem::exists(ab / f)) << f;
  const auto t5 = test::slurp(ab / "table5.md");
  for (const char* col : {"LRGD (3-PDO)", "2-PDO", "1-PDO", "w/o P", "w/o R", "w/o P, R", "T/D swapped", "nDCG@10",
                          "Recall@10", "Each variant against LRGD"})
    EXPECT_NE(t5.find(col), std::string::npos) << col;
  const auto c = test::slurp(ab / "collapse.md");
  EXPECT_NE(c.find("with P"), std::string::npos);
  EXPECT_NE(c.find("without P"), std::string::npos);

  // The README's form: eval options right after ablate's own, no "--"; --overwrite starts the
  // variants and their shared memory over; each variant's table is headed by its name.
  std::string readme_form = "ablate --overwrite --out " + ab.string() + " --variants k1 --no-collapse";
  for (const auto& a : common(model, 2)) readme_form += " " + a;
  const auto again = lrgd::test::run_cli(readme_form + " --rounds 2");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("## Variant k1 (1-PDO)"), std::string::npos) << again.out;
  // k1 tries as many demonstrations as LRGD's 3 paths x 2 rounds: 6 rounds on its one path.
  EXPECT_EQ(memory::Store(ab / "memory.sqlite").count(), 2u * 6u) << "the memory was started over";
  // ablate's own options after an eval option are named, not passed on silently.
  const auto late = lrgd::test::run_cli("ablate --out " + ab.string() + " --data " + kGames.string() + " --resume");
  EXPECT_EQ(late.code, 2) << late.out;
  EXPECT_NE(late.out.find("--resume is an option of ablate"), std::string::npos) << late.out;
  const auto late_flag =
      lrgd::test::run_cli("ablate --out " + ab.string() + " --data " + kGames.string() + " --test-per-round");
  EXPECT_EQ(late_flag.code, 2) << late_flag.out;
  EXPECT_NE(late_flag.out.find("--test-per-round is an option of ablate"), std::string::npos) << late_flag.out;
}

TEST(OptimCli, KillNineDuringOptimisationThenResume) {
  if (!std::filesystem::exists(kGames)) GTEST_SKIP() << "no Games data";
  test::TempDir dir("kill");
  const auto model = tiny_model(dir.path());
  const auto args = [&](const std::filesystem::path& out) {
    return cat({LRGD_CLI, "eval", "--method", "lrgd", "--paths", "2", "--rounds", "3", "--batch", "2", "--no-plot",
                "--out", out.string()},
               common(model, 6));
  };
  const auto killed = dir / "killed";
  const pid_t pid = spawn(args(killed));
  ASSERT_GT(pid, 0);
  const auto db = killed / "memory.sqlite";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::size_t rows = 0;
  while (std::chrono::steady_clock::now() < deadline && rows < 8) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (std::filesystem::exists(db)) {
      try {
        rows = memory::Store(db).count();
      } catch (const std::exception&) {
      }
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  const auto rows_killed = memory::Store(db).count();
  ASSERT_LT(rows_killed, 6u * 6u);
  auto resume = args(killed);
  resume.push_back("--resume");
  ASSERT_EQ(wait_exit(spawn(resume)), 0);
  const auto full = dir / "full";
  ASSERT_EQ(wait_exit(spawn(args(full))), 0);
  EXPECT_EQ(test::slurp(killed / "results.jsonl"), test::slurp(full / "results.jsonl"));
  EXPECT_EQ(dump_memory(killed / "memory.sqlite"), dump_memory(full / "memory.sqlite"));
  const auto s = json::parse(test::slurp(killed / "summary.json"));
  // Every row stored before the kill is reused; only the rest is computed.
  EXPECT_EQ(s["method_summary"]["n_rounds_computed"].get<std::size_t>(), 6u * 6u - rows_killed);
  // The memory's counts are whole however the run was interrupted: equal to the full run's.
  const auto f = json::parse(test::slurp(full / "summary.json"));
  EXPECT_EQ(s["method_summary"]["memory_rows"], f["method_summary"]["memory_rows"]);
  EXPECT_EQ(f["method_summary"]["memory_rows"]["n_rows"].get<std::size_t>(), 6u * 6u);
  std::size_t n_collapsed = 0;
  for (const auto& e : memory::Store(full / "memory.sqlite").list()) n_collapsed += e.collapsed ? 1 : 0;
  EXPECT_EQ(f["method_summary"]["memory_rows"]["n_collapses"].get<std::size_t>(), n_collapsed);
}

}  // namespace
