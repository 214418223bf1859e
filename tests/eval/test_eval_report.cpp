// report_runs' statistics on hand-written run directories: the unit of the paired tests,
// Holm, and the Imp. row. Expected p-values are scipy 1.17's: stats.ttest_rel(x, ref).pvalue
// and stats.wilcoxon(x, ref, zero_method="wilcox", correction=True, method="approx").pvalue.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "eval_test_util.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/metrics.h"

namespace lrgd {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ranks[u][t]: user "u<u>"'s target rank in trial t (0: not ranked); a negative rank
// leaves the (user, trial) record out.
void write_run(const fs::path& dir, const std::string& method, const std::vector<std::vector<int>>& ranks,
               std::size_t first_user = 0) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << json{{"method", method}, {"config_hash", method}}.dump() << "\n";
  std::ofstream out(dir / "results.jsonl");
  for (std::size_t t = 0; t < ranks.front().size(); ++t)
    for (std::size_t u = 0; u < ranks.size(); ++u) {
      if (ranks[u][t] < 0) continue;
      out << json{{"trial", t},
                  {"draw", u},
                  {"user", "u" + std::to_string(first_user + u)},
                  {"target_rank", ranks[u][t]},
                  {"valid", true},
                  {"n_hallucinated", 0},
                  {"n_duplicates", 0},
                  {"n_prompt_tokens", 0},
                  {"n_generated_tokens", 0},
                  {"n_history_dropped", 0},
                  {"n_demo_dropped", 0}}
                 .dump()
          << "\n";
    }
}

std::vector<std::vector<int>> constant_per_user(const std::vector<int>& per_user, std::size_t trials) {
  std::vector<std::vector<int>> r;
  for (int v : per_user) r.emplace_back(trials, v);
  return r;
}

// 5 users x 10 trials, each user's rank the same in every trial (as when LRGD's
// demonstration is fixed per user). x: ranks 1,1,1,3,2 vs ref: 2 everywhere, so on MRR the
// user differences are +0.5 x3, -1/6, 0. x also has a user u5 that ref lacks (ignored) and
// lacks u0's trial 9 (so 49 shared records; u0's mean is unchanged).
struct TwoRuns {
  test::TempDir root{"report-unit"};
  std::vector<fs::path> dirs{root / "ref", root / "x"};
  TwoRuns() {
    write_run(dirs[0], "zsl", constant_per_user({2, 2, 2, 2, 2}, 10));
    auto x = constant_per_user({1, 1, 1, 3, 2, 1}, 10);
    x[0][9] = -1;
    write_run(dirs[1], "lrgd", x);
  }
  json report(eval::ReportOptions o) const {
    o.metrics = metrics::parse_metrics("mrr@10,recall@1");
    return json::parse(eval::report_runs(dirs, o).json);
  }
};

TEST(ReportUnit, UserMeansAreNotSignificantWhereRecordPairsAre) {
  const TwoRuns runs;
  const auto user = runs.report({});
  EXPECT_EQ(user["unit"], "user");
  const auto& mu = user["runs"][1]["metrics"]["mrr@10"];
  EXPECT_EQ(mu["n"], 5);  // u5 has no partner
  EXPECT_NEAR(mu["t_p"].get<double>(), 0.14035738661899455, 1e-12);
  EXPECT_NEAR(mu["wilcoxon_p"].get<double>(), 0.18587673236587587, 1e-12);
  EXPECT_NEAR(mu["diff_vs_first"].get<double>(), (3 * 0.5 - 1.0 / 6) / 5, 1e-15);
  EXPECT_EQ(mu["marker"], "");
  const auto& ru = user["runs"][1]["metrics"]["recall@1"];
  EXPECT_NEAR(ru["t_p"].get<double>(), 0.07048399691021992, 1e-12);
  EXPECT_NEAR(ru["wilcoxon_p"].get<double>(), 0.14891467317876572, 1e-12);
  EXPECT_EQ(ru["marker"], "");

  eval::ReportOptions o;
  o.unit = eval::SignificanceUnit::UserTrial;
  const auto pairs = runs.report(o);
  EXPECT_EQ(pairs["unit"], "user-trial");
  EXPECT_EQ(pairs["runs"][1]["n_pairs"], 49);
  const auto& mp = pairs["runs"][1]["metrics"]["mrr@10"];
  EXPECT_EQ(mp["n"], 49);
  EXPECT_NEAR(mp["t_p"].get<double>(), 1.1452064177976014e-07, 1e-15);
  EXPECT_NEAR(mp["wilcoxon_p"].get<double>(), 8.296855662649367e-07, 1e-14);
  EXPECT_NEAR(mp["diff_vs_first"].get<double>(), 0.26190476190476186, 1e-14);
  EXPECT_EQ(mp["marker"], "*");
  const auto& rp = pairs["runs"][1]["metrics"]["recall@1"];
  EXPECT_NEAR(rp["t_p"].get<double>(), 6.716856842598406e-11, 1e-18);
  EXPECT_NEAR(rp["wilcoxon_p"].get<double>(), 7.752970071781904e-08, 1e-15);
  EXPECT_EQ(rp["marker"], "*");
}

TEST(ReportUnit, FootnoteStatesTheUnit) {
  const TwoRuns runs;
  eval::ReportOptions o;
  o.metrics = metrics::parse_metrics("mrr@10");
  const auto user = eval::report_runs(runs.dirs, o).markdown;
  EXPECT_NE(user.find("paired t-test over 5 users (trial means), two-sided."), std::string::npos) << user;
  o.unit = eval::SignificanceUnit::UserTrial;
  o.test = eval::SignificanceTest::Wilcoxon;
  const auto pairs = eval::report_runs(runs.dirs, o).markdown;
  EXPECT_NE(pairs.find("Wilcoxon signed-rank over 49 (user, trial) pairs (anti-conservative"), std::string::npos)
      << pairs;
  EXPECT_EQ(eval::parse_significance_unit("user-trial"), eval::SignificanceUnit::UserTrial);
  EXPECT_THROW(eval::parse_significance_unit("trial"), OptionError);
}

TEST(ReportHolm, AdjustsTheTablesFamilyAndTheMarkers) {
  const TwoRuns runs;
  eval::ReportOptions o;
  o.alpha = 0.1;
  auto raw = runs.report(o);
  EXPECT_EQ(raw["correction"], "none");
  EXPECT_EQ(raw["runs"][1]["metrics"]["recall@1"]["marker"], "*");  // raw p 0.0705
  EXPECT_FALSE(raw["runs"][1]["metrics"]["recall@1"].contains("t_p_holm"));
  o.holm = true;
  const auto adj = runs.report(o);
  EXPECT_EQ(adj["correction"], "holm");
  // ZSL vs LRGD on two metrics; the Imp. row (LRGD vs its runner-up ZSL) repeats those tests
  // and is not counted again. Holm by hand: 2 * 0.07048399691021992, then
  // max(that, 1 * 0.14035738661899455) for the larger p.
  EXPECT_EQ(adj["n_comparisons"], 2);
  const auto& r = adj["runs"][1]["metrics"]["recall@1"];
  const auto& m = adj["runs"][1]["metrics"]["mrr@10"];
  EXPECT_NEAR(r["t_p"].get<double>(), 0.07048399691021992, 1e-12);  // raw p kept
  EXPECT_NEAR(r["t_p_holm"].get<double>(), 0.14096799382043984, 1e-12);
  EXPECT_NEAR(m["t_p_holm"].get<double>(), 0.14096799382043984, 1e-12);
  EXPECT_EQ(r["marker"], "");
  EXPECT_NEAR(adj["imp"]["metrics"]["recall@1"]["t_p_holm"].get<double>(), 0.14096799382043984, 1e-12);
  // ZSL's Recall@1 is 0: no relative improvement.
  EXPECT_EQ(adj["imp"]["metrics"]["recall@1"]["text"], "n/a");
  EXPECT_TRUE(adj["imp"]["metrics"]["recall@1"]["improvement_pct"].is_null());
}

// 6 users x 2 trials. MRR@10: Random 0, Pop 0.6667, ICL 0.75, LRGD 0.7917 (runner-up ICL,
// +5.56%); Recall@1: Random 0, Pop 0.6667, ICL 0.5, LRGD 0.5833 (runner-up Pop, -12.50%).
// Over users, LRGD vs ICL on MRR differs only for u3 (+0.25) and LRGD vs Pop on Recall@1
// only for u3 (-0.5): scipy's ttest_rel p = 0.3632174676491228 for both.
struct FourRuns {
  test::TempDir root{"report-imp"};
  std::vector<fs::path> dirs{root / "random", root / "pop", root / "icl", root / "lrgd"};
  FourRuns() {
    write_run(dirs[0], "random", constant_per_user({0, 0, 0, 0, 0, 0}, 2));
    write_run(dirs[1], "pop", constant_per_user({1, 1, 1, 1, 0, 0}, 2));
    write_run(dirs[2], "icl", constant_per_user({1, 1, 1, 2, 2, 2}, 2));
    write_run(dirs[3], "lrgd", {{1, 1}, {1, 1}, {1, 1}, {1, 2}, {2, 2}, {2, 2}});
  }
  eval::Report report(eval::ReportOptions o = {}) const {
    o.metrics = metrics::parse_metrics("mrr@10,recall@1");
    return eval::report_runs(dirs, o);
  }
};

TEST(ReportImp, AgainstTheRunnerUpPerMetricIncludingLosses) {
  const FourRuns runs;
  const auto rep = runs.report();
  const auto j = json::parse(rep.json);
  ASSERT_TRUE(j.contains("imp"));
  EXPECT_EQ(j["imp"]["ours"], "LRGD");
  const auto& mrr = j["imp"]["metrics"]["mrr@10"];
  EXPECT_EQ(mrr["runner_up"], "ICL");
  EXPECT_NEAR(mrr["improvement_pct"].get<double>(), 100.0 * (0.79166666666666667 - 0.75) / 0.75, 1e-9);
  EXPECT_EQ(mrr["text"], "5.56%");
  EXPECT_EQ(mrr["n"], 6);
  EXPECT_NEAR(mrr["t_p"].get<double>(), 0.3632174676491228, 1e-12);
  const auto& rec = j["imp"]["metrics"]["recall@1"];
  EXPECT_EQ(rec["runner_up"], "Pop");
  EXPECT_EQ(rec["text"], "-12.50%");
  EXPECT_NEAR(rec["t_p"].get<double>(), 0.3632174676491228, 1e-12);
  EXPECT_NE(rep.markdown.find("| Imp. of LRGD | 5.56% vs ICL | -12.50% vs Pop |"), std::string::npos) << rep.markdown;
  EXPECT_NE(rep.markdown.find("Imp.: (LRGD - runner-up) / runner-up"), std::string::npos) << rep.markdown;
  // Holm's family: 3 runs x 2 metrics vs Random, plus the two Imp. tests.
  eval::ReportOptions h;
  h.holm = true;
  EXPECT_EQ(json::parse(runs.report(h).json)["n_comparisons"], 8);
  EXPECT_NE(runs.report(h).markdown.find("Holm-adjusted over the table's 8 comparisons"), std::string::npos);
}

TEST(ReportImp, OursByLabelFolderOrPosition) {
  const FourRuns runs;
  eval::ReportOptions o;
  o.ours = "icl";  // label, case-insensitive
  auto j = json::parse(runs.report(o).json);
  EXPECT_EQ(j["imp"]["ours"], "ICL");
  EXPECT_EQ(j["imp"]["metrics"]["mrr@10"]["runner_up"], "LRGD");
  EXPECT_EQ(j["imp"]["metrics"]["mrr@10"]["text"], "-5.26%");  // 0.75 vs 0.7917
  o.ours = "2";
  EXPECT_EQ(json::parse(runs.report(o).json)["imp"]["ours"], "Pop");
  o.ours = "none";
  j = json::parse(runs.report(o).json);
  EXPECT_FALSE(j.contains("imp"));
  EXPECT_EQ(runs.report(o).markdown.find("Imp."), std::string::npos);
  for (const char* bad : {"5", "0", "sasrec"}) {
    o.ours = bad;
    EXPECT_THROW(runs.report(o), OptionError) << bad;
  }
}

}  // namespace
}  // namespace lrgd
