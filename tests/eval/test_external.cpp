// `--method external`: score files of other tools replayed over lrgd's own queries. Round
// trips against pop (in-process and through the CLI with scripts/external_scores_example.py),
// every bad input refused with file and line before the run directory is touched.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eval_test_util.h"
#include "lrgd/baselines.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/external.h"
#include "lrgd/protocol.h"
#include "process.h"

namespace {

using namespace lrgd;
using nlohmann::json;
namespace fs = std::filesystem;

eval::EvalConfig config(rec::Method method, int list_length = 10) {
  eval::EvalConfig c;
  c.method = method;
  c.protocol.n_users = 10;
  c.protocol.n_candidates = 20;
  c.n_trials = 2;
  c.list_length = list_length;
  return c;
}

eval::RunOptions quiet(const fs::path& out) {
  eval::RunOptions o;
  o.out = out;
  o.batch_size = 3;
  o.progress = false;
  o.fsync_interval_s = 0;
  return o;
}

std::vector<json> lines_of(const fs::path& p) {
  std::vector<json> out;
  std::istringstream in(test::slurp(p));
  for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
  return out;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// The records of two runs agree on everything the method decides.
void expect_same_records(const fs::path& a, const fs::path& b) {
  const auto ra = lines_of(a / "results.jsonl");
  const auto rb = lines_of(b / "results.jsonl");
  ASSERT_EQ(ra.size(), rb.size());
  for (std::size_t i = 0; i < ra.size(); ++i) {
    for (const char* k : {"trial", "draw", "user", "target", "ranking", "ranked_items", "target_rank", "metrics"})
      EXPECT_EQ(ra[i][k], rb[i][k]) << k << " of record " << i;
  }
  const auto sa = json::parse(test::slurp(a / "summary.json"));
  const auto sb = json::parse(test::slurp(b / "summary.json"));
  EXPECT_EQ(sa["metrics"], sb["metrics"]);
}

TEST(External, RankingsOfPopReproducePop) {
  const auto ds = test::tiny_dataset();
  test::TempDir dir("ext-rank");
  // Pop's full order of every candidate set is a ranking file.
  eval::run_eval(config(rec::Method::Pop, 20), ds, nullptr, quiet(dir / "pop-full"));
  std::string file;
  for (const auto& r : lines_of(dir / "pop-full" / "results.jsonl")) {
    ASSERT_EQ(r["ranked_items"].size(), 20u);
    file += json({{"user", r["user"]}, {"trial", r["trial"]}, {"ranking", r["ranked_items"]}}).dump() + "\n";
  }
  write(dir / "ranking.jsonl", file);
  eval::run_eval(config(rec::Method::Pop), ds, nullptr, quiet(dir / "pop"));
  auto c = config(rec::Method::External);
  c.scores_path = (dir / "ranking.jsonl").string();
  c.label = "Pop again";
  const auto r = eval::run_eval(c, ds, nullptr, quiet(dir / "ext"));
  EXPECT_EQ(r.n_records, 20u);
  expect_same_records(dir / "pop", dir / "ext");

  const auto cfg = json::parse(test::slurp(dir / "ext" / "config.json"));
  EXPECT_EQ(cfg["method"], "external");
  EXPECT_EQ(cfg["external"]["scores_path"], c.scores_path);
  EXPECT_EQ(cfg["external"]["scores_sha256"], sha256_hex(file));
  EXPECT_EQ(cfg["external"]["tie_break"], "candidate_order");
  // Same users and candidates as pop: the protocol section is the same.
  EXPECT_EQ(cfg["protocol"], json::parse(test::slurp(dir / "pop" / "config.json"))["protocol"]);
  EXPECT_EQ(json::parse(test::slurp(dir / "ext" / "summary.json"))["label"], "Pop again");
  EXPECT_NE(test::slurp(dir / "ext" / "table.md").find("| Pop again |"), std::string::npos);
  const auto first = lines_of(dir / "ext" / "results.jsonl").front();
  EXPECT_EQ(first["answer_format"], "external");
  EXPECT_EQ(first["valid"], true);

  // The report pairs it with pop like any run: no difference anywhere.
  const std::vector<fs::path> runs{dir / "pop", dir / "ext"};
  const auto rep = json::parse(eval::report_runs(runs, {}).json);
  EXPECT_EQ(rep["runs"][1]["label"], "Pop again");
  EXPECT_EQ(rep["runs"][1]["n_pairs"], 20);
  EXPECT_EQ(rep["runs"][1]["metrics"]["ndcg@10"]["diff_vs_first"], 0.0);
}

TEST(External, PopularityScoresWithTiesReproducePop) {
  const auto ds = test::tiny_dataset();
  test::TempDir dir("ext-scores");
  baselines::PopularityRecommender pop(ds, {});
  // TSV with a header, one (user, trial) in reverse candidate order: ties must still fall to
  // the protocol's candidate order, not to the file's.
  std::string file = "user\ttrial\titem\tscore\n";
  const auto c0 = config(rec::Method::Pop);
  for (std::uint32_t t = 0; t < c0.n_trials; ++t) {
    auto po = c0.protocol;
    po.trial = t;
    for (const auto& u : protocol::prepare_split(ds, po).users) {
      auto cands = u.test_candidates;
      if (t == 1) std::reverse(cands.begin(), cands.end());
      for (auto item : cands)
        file += u.user_id + "\t" + std::to_string(t) + "\t" + ds.items[static_cast<std::size_t>(item)].id + "\t" +
                std::to_string(pop.popularity(item)) + "\n";
    }
  }
  write(dir / "pop.tsv", file);
  eval::run_eval(c0, ds, nullptr, quiet(dir / "pop"));
  auto c = config(rec::Method::External);
  c.scores_path = (dir / "pop.tsv").string();
  eval::run_eval(c, ds, nullptr, quiet(dir / "ext"));
  expect_same_records(dir / "pop", dir / "ext");
  EXPECT_EQ(json::parse(test::slurp(dir / "ext" / "summary.json"))["label"], "External");
}

TEST(External, OrderCandidatesBreaksTiesByCandidatePosition) {
  const auto ds = test::tiny_dataset(3);
  test::TempDir dir("ext-ties");
  rec::Query q;
  q.user = 1;
  q.trial = 0;
  q.candidates = {50, 40, 30, 20};
  write(dir / "s.jsonl", R"({"user":"u1","trial":0,"scores":{"20":1,"30":2,"40":2,"50":-1.5}})"
                         "\n");
  const auto f = external::read_score_file(dir / "s.jsonl", ds);
  EXPECT_EQ(f.format, "jsonl");
  EXPECT_EQ(external::order_candidates(f, q, ds, 10), (std::vector<int>{1, 2, 3, 0}));
  EXPECT_EQ(external::order_candidates(f, q, ds, 2), (std::vector<int>{1, 2}));
  write(dir / "r.jsonl", R"({"user":"u1","trial":0,"ranking":["30",20,"50","40"],"model":"x"})"
                         "\n");
  EXPECT_EQ(external::order_candidates(external::read_score_file(dir / "r.jsonl", ds), q, ds, 10),
            (std::vector<int>{2, 3, 0, 1}));
  // A repeated candidate (--negatives uniform-all): one line covers both copies, adjacent.
  q.candidates = {50, 40, 50, 20};
  write(dir / "d.jsonl", R"({"user":"u1","trial":0,"scores":{"20":1,"40":0,"50":2}})"
                         "\n");
  EXPECT_EQ(external::order_candidates(external::read_score_file(dir / "d.jsonl", ds), q, ds, 10),
            (std::vector<int>{0, 2, 3, 1}));
  write(dir / "dr.jsonl", R"({"user":"u1","trial":0,"ranking":["40","50","20"]})"
                          "\n");
  EXPECT_EQ(external::order_candidates(external::read_score_file(dir / "dr.jsonl", ds), q, ds, 10),
            (std::vector<int>{1, 0, 2, 3}));
}

// ---- Through the CLI, on the LC-Rec fixture (4 users, 8 items: 4 candidates each). ----

const std::string kFixture = std::string(LRGD_SOURCE_DIR) + "/tests/fixtures/data/lcrec";
const std::string kScript = std::string(LRGD_SOURCE_DIR) + "/scripts/external_scores_example.py";
const std::string kProtocol = " --users 0 --candidates 4 --no-progress";
// An item of each fixture user's history: never one of its candidates.
const std::map<std::string, std::string> kHistoryItem = {{"u1", "a1"}, {"u2", "a2"}, {"u3", "a6"}, {"u4", "a8"}};

std::string eval_args(const fs::path& scores, const fs::path& out, const std::string& trials = "2",
                      const std::string& users = "0") {
  return "eval --data " + kFixture + " --method external --scores " + scores.string() + " --trials " + trials +
         " --users " + users + " --candidates 4 --no-progress -o " + out.string();
}

// Prepared splits for trials 0 and 1 and the script's scores in `format`.
fs::path script_scores(const test::TempDir& dir, const std::string& format) {
  for (int t = 0; t < 2; ++t) {
    const auto r =
        test::run_cli("data prepare --data " + kFixture + " --users 0 --candidates 4 --trial " + std::to_string(t) +
                      " -o " + (dir / ("split-t" + std::to_string(t) + ".jsonl")).string());
    EXPECT_EQ(r.code, 0) << r.out;
  }
  const auto out = dir / ("scores." + format);
  const std::string cmd = "python3 " + kScript + " --data " + kFixture + " --format " + format + " -o " + out.string() +
                          " " + (dir / "split-t0.jsonl").string() + " " + (dir / "split-t1.jsonl").string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return out;
}

TEST(ExternalCli, ExampleScriptReproducesPop) {
  test::TempDir dir("ext-cli");
  for (const std::string format : {"tsv", "jsonl"}) {
    const auto scores = script_scores(dir, format);
    const auto r = test::run_cli(eval_args(scores, dir / ("ext-" + format)) + " --label Script");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("| Script |"), std::string::npos) << r.out;
  }
  const auto p = test::run_cli("eval --data " + kFixture + " --method pop --trials 2" + kProtocol + " -o " +
                               (dir / "pop").string());
  ASSERT_EQ(p.code, 0) << p.out;
  expect_same_records(dir / "pop", dir / "ext-tsv");
  expect_same_records(dir / "pop", dir / "ext-jsonl");
  const auto rep = test::run_cli("report " + (dir / "pop").string() + " " + (dir / "ext-tsv").string());
  ASSERT_EQ(rep.code, 0) << rep.out;
  EXPECT_NE(rep.out.find("| Script |"), std::string::npos) << rep.out;
  // A --users run smaller than the file's uses its first users; the rest of the file is unused.
  const auto small = test::run_cli(eval_args(dir / "scores.tsv", dir / "small", "1", "2"));
  EXPECT_EQ(small.code, 0) << small.out;
}

struct BadCase {
  std::string name;
  std::string file;     // its content
  std::string where;    // expected in the message: "FILE:LINE" as ":LINE", or text
  std::string message;  // expected in the message
};

TEST(ExternalCli, BadScoreFilesFailWithFileAndLineAndWriteNothing) {
  test::TempDir dir("ext-bad");
  const auto good_path = script_scores(dir, "jsonl");
  const std::string good = test::slurp(good_path);
  std::vector<std::string> lines;
  {
    std::istringstream in(good);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 8u);  // 4 users x 2 trials
  const auto join = [](const std::vector<std::string>& ls) {
    std::string s;
    for (const auto& l : ls) s += l + "\n";
    return s;
  };
  const auto edit = [&](std::size_t i, const std::function<void(json&)>& f) {
    auto ls = lines;
    auto j = json::parse(ls[i]);
    f(j);
    ls[i] = j.dump();
    return join(ls);
  };
  const auto j2 = json::parse(lines[2]);
  const std::string user2 = j2["user"];
  const std::string first_item = j2["scores"].begin().key();
  // Line 3 with the first score a sentinel that text replacement turns into NaN.
  std::string nan_line = edit(2, [&](json& j) { j["scores"][first_item] = 123456.5; });
  nan_line.replace(nan_line.find("123456.5"), 8, "NaN");
  const auto tsv_line = [](const std::string& u, const std::string& i, const std::string& s) {
    return u + "\t0\t" + i + "\t" + s + "\n";
  };
  std::vector<BadCase> cases = {
      {"truncated", good.substr(0, good.size() - 7), ":8", "truncated"},
      {"malformed",
       join({lines[0], lines[1], "{\"user\": \"u1\", \"trial\": 0, \"scores\": {", lines[3]}) +
           join({lines.begin() + 4, lines.end()}),
       ":3", "not a JSON object"},
      {"unknown_user", edit(2, [](json& j) { j["user"] = "nobody"; }), ":3", "user 'nobody' is not in the dataset"},
      {"missing_user", edit(2, [](json& j) { j.erase("user"); }), ":3", "field 'user': missing"},
      {"trial_not_integer", edit(2, [](json& j) { j["trial"] = "zero"; }), ":3",
       "field 'trial': expected a non-negative integer, found string"},
      {"trial_out_of_range", edit(2, [](json& j) { j["trial"] = 4294967296ll; }), ":3",
       "field 'trial': expected a non-negative integer, found 4294967296"},
      {"unknown_item", edit(2, [](json& j) { j["scores"]["zz9"] = 1.0; }), ":3", "item 'zz9' is not in the dataset"},
      {"missing_user_trial", join({lines.begin(), lines.begin() + 7}), ": no line for user", "trial 1"},
      {"missing_candidate", edit(2, [&](json& j) { j["scores"].erase(first_item); }), ":3",
       "misses 1 of its 4 candidates: '" + first_item + "'"},
      {"partial_ranking",
       edit(2,
            [&](json& j) {
              j = {{"user", j["user"]}, {"trial", j["trial"]}, {"ranking", json::array({first_item})}};
            }),
       ":3", "misses 3 of its 4 candidates"},
      {"not_a_candidate",
       edit(2,
            [&](json& j) {
              j["scores"].erase(first_item);
              j["scores"][kHistoryItem.at(user2)] = 1;
            }),
       ":3", "item '" + kHistoryItem.at(user2) + "' is not a candidate of user '" + user2 + "' in trial 0"},
      {"duplicate_user_trial", join(lines) + lines[2] + "\n", ":9", "appears again (first at line 3)"},
      {"nan_json", nan_line, ":3", "non-finite score"},
      {"nan_tsv", "user\ttrial\titem\tscore\n" + tsv_line("u1", "a1", "0.5") + tsv_line("u1", "a2", "nan"), ":3",
       "non-finite score"},
      {"duplicate_tsv_item", tsv_line("u1", "a1", "0.5") + tsv_line("u1", "a1", "0.7"), ":2",
       "appears again (first at line 1)"},
      {"tsv_three_fields", tsv_line("u1", "a1", "0.5") + "u1\t0\ta2\n", ":2", "expected 4 tab-separated fields"},
      {"empty", "", "", "empty score file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto file = dir / ("bad-" + c.name + (c.name.find("tsv") != std::string::npos ? ".tsv" : ".jsonl"));
    write(file, c.file);
    const auto out = dir / ("run-" + c.name);
    const auto r = test::run_cli(eval_args(file, out));
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(file.string() + c.where), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(out)) << "the run directory was created";
  }

  // An existing run is left byte for byte as it was, with --resume and with --overwrite.
  const auto run = dir / "run-good";
  ASSERT_EQ(test::run_cli(eval_args(good_path, run)).code, 0);
  std::map<std::string, std::string> before;
  for (const auto& e : fs::directory_iterator(run))
    if (e.path().filename() != ".lock") before[e.path().filename().string()] = test::slurp(e.path());
  write(dir / "bad.jsonl", cases[2].file);
  for (const char* flag : {" --resume", " --overwrite"}) {
    const auto r = test::run_cli(eval_args(dir / "bad.jsonl", run) + flag);
    EXPECT_EQ(r.code, 2) << r.out;
    for (const auto& [name, bytes] : before) EXPECT_EQ(test::slurp(run / name), bytes) << name << flag;
  }
}

TEST(ExternalCli, ResumeWithAnotherScoreFileIsRefused) {
  test::TempDir dir("ext-resume");
  const auto scores = script_scores(dir, "jsonl");
  const auto run = dir / "run";
  ASSERT_EQ(test::run_cli(eval_args(scores, run)).code, 0);
  // Same file, new path: the content decides.
  fs::copy_file(scores, dir / "copy.jsonl");
  const auto same = test::run_cli(eval_args(dir / "copy.jsonl", run) + " --resume");
  EXPECT_EQ(same.code, 0) << same.out;
  // Other scores (reversed), still a valid file: refused as any configuration change.
  std::string other;
  std::istringstream in(test::slurp(scores));
  for (std::string l; std::getline(in, l);) {
    auto j = json::parse(l);
    for (auto& [k, v] : j["scores"].items()) v = -v.get<double>();
    other += j.dump() + "\n";
  }
  write(dir / "other.jsonl", other);
  const std::string results = test::slurp(run / "results.jsonl");
  const auto r = test::run_cli(eval_args(dir / "other.jsonl", run) + " --resume");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("changed: external"), std::string::npos) << r.out;
  EXPECT_EQ(test::slurp(run / "results.jsonl"), results);
  // --scores belongs to --method external, which needs it.
  EXPECT_EQ(test::run_cli("eval --data " + kFixture + " --method pop --scores " + scores.string() + kProtocol + " -o " +
                          (dir / "x").string())
                .code,
            2);
  EXPECT_EQ(
      test::run_cli("eval --data " + kFixture + " --method external" + kProtocol + " -o " + (dir / "y").string()).code,
      2);
}

}  // namespace
