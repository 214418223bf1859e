#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "lrgd/error.h"
#include "lrgd/metrics.h"

namespace m = lrgd::metrics;

namespace {

TEST(Metrics, RankOneIsPerfect) {
  EXPECT_DOUBLE_EQ(m::ndcg_at(1, 1), 1.0);
  EXPECT_DOUBLE_EQ(m::ndcg_at(1, 10), 1.0);
  EXPECT_DOUBLE_EQ(m::recall_at(1, 1), 1.0);
  EXPECT_DOUBLE_EQ(m::mrr_at(1, 10), 1.0);
}

TEST(Metrics, RankTenCountsOnlyAtTen) {
  EXPECT_DOUBLE_EQ(m::ndcg_at(10, 10), 1.0 / std::log2(11.0));  // 0.28906...
  EXPECT_NEAR(m::ndcg_at(10, 10), 0.289064826, 1e-9);
  EXPECT_DOUBLE_EQ(m::ndcg_at(10, 5), 0.0);
  EXPECT_DOUBLE_EQ(m::recall_at(10, 10), 1.0);
  EXPECT_DOUBLE_EQ(m::recall_at(10, 5), 0.0);
  EXPECT_DOUBLE_EQ(m::mrr_at(10, 10), 0.1);
  EXPECT_DOUBLE_EQ(m::ndcg_at(3, 5), 0.5);  // 1/log2(4)
}

TEST(Metrics, AbsentScoresZero) {
  for (int k : {1, 5, 10}) {
    EXPECT_EQ(m::ndcg_at(m::kNotRanked, k), 0.0);
    EXPECT_EQ(m::recall_at(m::kNotRanked, k), 0.0);
    EXPECT_EQ(m::mrr_at(m::kNotRanked, k), 0.0);
  }
  EXPECT_EQ(m::ndcg_at(11, 10), 0.0);
}

TEST(Metrics, RankOf) {
  const std::vector<std::int32_t> ranking = {7, 3, 9};
  EXPECT_EQ(m::rank_of(ranking, 7), 1);
  EXPECT_EQ(m::rank_of(ranking, 9), 3);
  EXPECT_EQ(m::rank_of(ranking, 4), m::kNotRanked);
  EXPECT_EQ(m::rank_of({}, 4), m::kNotRanked);
}

TEST(Metrics, KeysAndParsing) {
  std::vector<std::string> keys;
  for (const auto& s : m::default_metrics()) keys.push_back(s.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"ndcg@1", "ndcg@5", "ndcg@10", "recall@1", "recall@5", "recall@10", "mrr@10"}));
  EXPECT_EQ(m::parse_metric("HR@20"), (m::MetricSpec{m::MetricKind::Recall, 20}));
  EXPECT_EQ(m::parse_metrics("ndcg@10, mrr@5").size(), 2u);
  EXPECT_THROW(m::parse_metric("ndcg"), lrgd::OptionError);
  EXPECT_THROW(m::parse_metric("ndcg@0"), lrgd::OptionError);
  EXPECT_THROW(m::parse_metric("map@10"), lrgd::OptionError);
  EXPECT_THROW(m::parse_metrics(" , "), lrgd::OptionError);
}

TEST(Metrics, UserTableAndMeans) {
  // Users with ranks 1, 10, absent, 2.
  const std::vector<int> ranks = {1, 10, m::kNotRanked, 2};
  const auto table = m::compute_user_metrics(ranks, m::default_metrics());
  EXPECT_EQ(table.n_users(), 4u);
  EXPECT_EQ(table.column("recall@10"), (std::vector<double>{1, 1, 0, 1}));
  EXPECT_EQ(table.column("recall@1"), (std::vector<double>{1, 0, 0, 0}));
  const auto& mrr = table.column("mrr@10");
  EXPECT_DOUBLE_EQ(m::mean(mrr), (1.0 + 0.1 + 0.0 + 0.5) / 4.0);
  const double ndcg10 = (1.0 + 1.0 / std::log2(11.0) + 0.0 + 1.0 / std::log2(3.0)) / 4.0;
  EXPECT_DOUBLE_EQ(table.means()[2], ndcg10);
  EXPECT_THROW(table.column("ndcg@20"), std::out_of_range);
}

TEST(Metrics, SummaryUsesTDistribution) {
  const std::vector<double> v = {0.30, 0.32, 0.28, 0.35, 0.31};
  const auto s = m::summarize(v);
  EXPECT_EQ(s.n, 5u);
  EXPECT_NEAR(s.mean, 0.312, 1e-12);
  EXPECT_NEAR(s.std, 0.025884358211089555, 1e-12);
  // t_{0.975,4} = 2.7764451051977987
  const double half = 2.7764451051977987 * s.std / std::sqrt(5.0);
  EXPECT_NEAR(s.ci_low, s.mean - half, 1e-9);
  EXPECT_NEAR(s.ci_high, s.mean + half, 1e-9);
  const auto one = m::summarize(std::vector<double>{0.5});
  EXPECT_EQ(one.std, 0.0);
  EXPECT_TRUE(std::isnan(one.ci_low));
  EXPECT_THROW(m::summarize(v, 1.0), std::invalid_argument);
}

TEST(Metrics, TrialsSummariseUserMeans) {
  const auto specs = m::parse_metrics("recall@1");
  std::vector<m::UserMetrics> trials = {m::compute_user_metrics(std::vector<int>{1, 0}, specs),   // 0.5
                                        m::compute_user_metrics(std::vector<int>{1, 1}, specs),   // 1.0
                                        m::compute_user_metrics(std::vector<int>{0, 0}, specs)};  // 0.0
  const auto s = m::summarize_trials(trials);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_DOUBLE_EQ(s[0].mean, 0.5);
  EXPECT_DOUBLE_EQ(s[0].std, 0.5);
  trials.push_back(m::compute_user_metrics(std::vector<int>{1}, m::parse_metrics("ndcg@1")));
  EXPECT_THROW(m::summarize_trials(trials), std::invalid_argument);
}

TEST(Metrics, Marker) {
  EXPECT_EQ(m::significance_marker(0.049), "*");
  EXPECT_EQ(m::significance_marker(0.05), "");
  EXPECT_EQ(m::significance_marker(std::nan("")), "");
  // Paper Table 3, Games: LRGD 0.2977 over LLaRA 0.2313.
  EXPECT_EQ(m::improvement_text(0.2977, 0.2313, 0.001), "28.71%*");
  EXPECT_EQ(m::improvement_text(0.30, 0.32, 0.4), "-6.25%");
  EXPECT_EQ(m::improvement_text(0.3, 0.0, 0.01), "n/a");
}

}  // namespace
