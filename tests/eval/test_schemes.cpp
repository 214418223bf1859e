// Candidate schemes end to end: the retrieved scheme's pop retriever against a plain
// top-by-training-popularity, and every scheme through `lrgd eval` with its config recorded.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eval_test_util.h"
#include "lrgd/baselines.h"
#include "lrgd/eval.h"
#include "lrgd/protocol.h"
#include "process.h"

namespace {

using namespace lrgd;
using nlohmann::json;
namespace fs = std::filesystem;

TEST(Schemes, PopRetrieverIsTheTopUnseenItemsByTrainingPopularity) {
  const auto ds = test::tiny_dataset(40);
  protocol::ProtocolOptions o;
  o.n_users = 0;
  o.n_candidates = 12;
  o.negatives = protocol::NegativeSampling::Retrieved;
  baselines::BaselineOptions bo;
  o.retriever = eval::make_ranker_retriever(rec::make_baseline_ranker(ds, rec::Method::Pop, bo, 11), "pop");
  const auto split = protocol::prepare_split(ds, o);
  // Plain reference: training counts (each sequence but its last two items), then the 11
  // unseen items with the highest count, ties by the lower index.
  std::vector<int> count(ds.n_items(), 0);
  for (const auto& seq : ds.sequences)
    for (std::size_t k = 0; k + 2 < seq.size(); ++k) ++count[static_cast<std::size_t>(seq[k])];
  ASSERT_EQ(split.users.size(), 40u);
  for (const auto& u : split.users) {
    const auto& seq = ds.sequences[static_cast<std::size_t>(u.user)];
    std::vector<data::ItemIndex> unseen;
    for (data::ItemIndex i = 0; i < static_cast<data::ItemIndex>(ds.n_items()); ++i)
      if (std::find(seq.begin(), seq.end(), i) == seq.end()) unseen.push_back(i);
    std::stable_sort(unseen.begin(), unseen.end(), [&](auto a, auto b) {
      return count[static_cast<std::size_t>(a)] > count[static_cast<std::size_t>(b)];
    });
    unseen.resize(11);
    unseen.push_back(u.test_target);
    std::sort(unseen.begin(), unseen.end());
    auto got = u.test_candidates;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, unseen) << u.user_id;
  }
}

const std::string kFixture = std::string(LRGD_SOURCE_DIR) + "/tests/fixtures/data/lcrec";

std::vector<json> records(const fs::path& run) {
  std::vector<json> out;
  std::istringstream in(test::slurp(run / "results.jsonl"));
  for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
  return out;
}

TEST(SchemesCli, EverySchemeRunsAndIsRecorded) {
  test::TempDir dir("schemes-cli");
  const std::string base =
      "eval --data " + kFixture + " --method pop --users 0 --candidates 4 --trials 2 --no-progress";
  struct Case {
    std::string args, negatives, retriever, per_trial;
  };
  for (const Case& c : {Case{" --negatives uniform-all", "uniform-all", "", "redraw"},
                        Case{" --negatives popularity", "popularity", "", "redraw"},
                        Case{" --negatives retrieved --retriever markov", "retrieved", "markov", "redraw"},
                        Case{" --candidates-per-trial fixed", "uniform-unseen", "", "fixed"}}) {
    const fs::path out = dir.path() / (c.negatives + c.per_trial);
    const auto r = test::run_cli(base + c.args + " -o " + out.string());
    ASSERT_EQ(r.code, 0) << c.args << "\n" << r.out;
    const auto config = json::parse(test::slurp(out / "config.json"));
    EXPECT_EQ(config["protocol"]["negatives"], c.negatives);
    EXPECT_EQ(config["protocol"]["retriever"], c.retriever);
    EXPECT_EQ(config["protocol"]["candidates_per_trial"], c.per_trial);
    if (c.per_trial == "fixed") {
      // Trial 1 shows trial 0's candidates in the same order: pop ranks them the same way.
      const auto rs = records(out);
      ASSERT_EQ(rs.size() % 2, 0u);
      const std::size_t n = rs.size() / 2;
      for (std::size_t k = 0; k < n; ++k) {
        EXPECT_EQ(rs[k]["trial"], 0);
        EXPECT_EQ(rs[n + k]["ranked_items"], rs[k]["ranked_items"]);
        EXPECT_EQ(rs[n + k]["target_number"], rs[k]["target_number"]);
      }
    }
  }
  EXPECT_EQ(test::run_cli(base + " --negatives sometimes -o " + (dir.path() / "x").string()).code, 2);
  EXPECT_EQ(test::run_cli(base + " --negatives retrieved -o " + (dir.path() / "y").string()).code, 2);
  EXPECT_EQ(test::run_cli(base + " --retriever pop -o " + (dir.path() / "z").string()).code, 2);
  EXPECT_FALSE(fs::exists(dir.path() / "x"));
}

// A candidate or user file that does not fit the data: exit 2, file and line named, and the
// run directory never created.
TEST(SchemesCli, BadCandidateAndUserFilesWriteNothing) {
  test::TempDir dir("schemes-bad");
  const std::string base =
      "eval --data " + kFixture + " --method pop --users 0 --candidates 3 --trials 1 --no-progress";
  const auto write_file = [](const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  };
  write_file(dir / "c.tsv", "u1\ta5 a6\nu2\ta3 zz\n");
  write_file(dir / "c.json", "{\"u1\": {\"-1\": {\"candidate_set\": [\"a5\", \"a6\"\n");
  write_file(dir / "users.txt", "u1\nnobody\n");
  struct Case {
    std::string args, expected;
  };
  for (const Case& c : {Case{" --candidate-file " + (dir / "c.tsv").string(), "c.tsv:2: field 'item'"},
                        Case{" --candidate-file " + (dir / "c.json").string(), "c.json:2"},
                        Case{" --users-file " + (dir / "users.txt").string(), "users.txt:2: field 'user'"}}) {
    const fs::path out = dir / "run";
    const auto r = test::run_cli(base + c.args + " -o " + out.string());
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find(c.expected), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(out)) << c.args;
  }
  const auto prep = test::run_cli("data prepare --data " + kFixture + " --candidates 3 --users-file " +
                                  (dir / "users.txt").string() + " -o " + (dir / "split.jsonl").string());
  EXPECT_EQ(prep.code, 2) << prep.out;
  EXPECT_FALSE(fs::exists(dir / "split.jsonl"));
}

}  // namespace
