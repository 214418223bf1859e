// Ranking metrics for one relevant item per user, their aggregation over users and
// trials, and the paired significance tests used to mark "A beats B" (p < 0.05 → "*").
// Pure functions: no IO, no randomness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lrgd::metrics {

// Ranks are 1-based positions of the relevant item in a ranked list; kNotRanked (0)
// means absent (including invalid answers, which count as misses).
inline constexpr int kNotRanked = 0;

// 1-based position of `target` in `ranking`, or kNotRanked.
int rank_of(std::span<const std::int32_t> ranking, std::int32_t target);

// Single-relevant-item metrics at cutoff k (k >= 1); 0 when rank is kNotRanked or > k.
double ndcg_at(int rank, int k);    // 1 / log2(rank + 1)
double recall_at(int rank, int k);  // = HR@k: 1
double mrr_at(int rank, int k);     // 1 / rank

enum class MetricKind { Ndcg, Recall, Mrr };

struct MetricSpec {
  MetricKind kind = MetricKind::Ndcg;
  int k = 10;
  std::string key() const;  // JSON key: "ndcg@10", "recall@5", "mrr@10"
  double value(int rank) const;
  friend bool operator==(const MetricSpec&, const MetricSpec&) = default;
};

// ndcg@1, ndcg@5, ndcg@10, recall@1, recall@5, recall@10, mrr@10 (the report's columns).
std::vector<MetricSpec> default_metrics();
// "ndcg@10" (also "hr@10" as recall, case-insensitive). Throws OptionError("--metrics").
MetricSpec parse_metric(std::string_view key);
// Comma-separated list of keys; throws OptionError on an empty list or a bad key.
std::vector<MetricSpec> parse_metrics(std::string_view keys);

// Per-user metric values of one run: values[m][u] for metrics[m] and user u.
struct UserMetrics {
  std::vector<MetricSpec> metrics;
  std::vector<std::vector<double>> values;

  std::size_t n_users() const { return values.empty() ? 0 : values.front().size(); }
  // The column of `key`; throws std::out_of_range when the metric was not computed.
  const std::vector<double>& column(std::string_view key) const;
  std::vector<double> means() const;  // one per metric, mean over users
};

UserMetrics compute_user_metrics(std::span<const int> ranks, std::span<const MetricSpec> metrics);

// Mean and spread of a sample, with a t-distribution confidence interval for the mean.
struct Summary {
  std::size_t n = 0;
  double mean = 0;
  double std = 0;      // sample standard deviation (n - 1); 0 when n < 2
  double ci_low = 0;   // mean -/+ t_{(1+c)/2, n-1} * std / sqrt(n); NaN when n < 2
  double ci_high = 0;  // (serialises as JSON null)
};

double mean(std::span<const double> values);        // NaN when empty
double sample_std(std::span<const double> values);  // 0 when fewer than 2 values
// `confidence` in (0, 1). Throws std::invalid_argument outside that range.
Summary summarize(std::span<const double> values, double confidence = 0.95);

// One Summary per metric over the trials' user means (mean and std over trials).
// Throws std::invalid_argument when the trials' metric lists differ.
std::vector<Summary> summarize_trials(std::span<const UserMetrics> trials, double confidence = 0.95);

// Distributions (Numerical Recipes 3rd ed., 6.4 and 6.14).
double regularized_incomplete_beta(double a, double b, double x);  // I_x(a, b); a, b > 0, x in [0,1]
double student_t_cdf(double t, double df);                         // P(T <= t), df > 0
double student_t_quantile(double p, double df);                    // inverse of the cdf, p in (0,1)
double normal_cdf(double z);

enum class Alternative { TwoSided, Greater, Less };  // Greater: A > B

struct TestResult {
  double statistic = 0;       // t for the t-test; W+ (sum of ranks of positive a-b) for Wilcoxon
  double z = 0;               // Wilcoxon normal approximation's z; NaN when exact or for t
  double p_value = 1;         // NaN when the test is undefined (t-test with n < 2)
  std::size_t n = 0;          // pairs
  std::size_t n_nonzero = 0;  // pairs with a != b
  bool exact = false;
};

// Paired t-test on d = a - b (same length, paired by user; else std::invalid_argument).
// All differences zero: t = 0, p = 1. Constant non-zero difference: t = ±inf, p = 0.
TestResult paired_t_test(std::span<const double> a, std::span<const double> b,
                         Alternative alternative = Alternative::TwoSided);

enum class WilcoxonMethod {
  Auto,    // Exact when 1..50 non-zero differences with no tied |d|, else Normal
  Exact,   // permutation distribution of the (mid)ranks; cost O(n^3)
  Normal,  // normal approximation with tie and continuity correction
};

// Wilcoxon signed-rank test on d = a - b. Zero differences are dropped (Wilcoxon's
// method), tied |d| get mid-ranks. No non-zero difference: p = 1. Matches
// scipy.stats.wilcoxon(zero_method="wilcox", correction=True, method="exact"/"approx").
TestResult wilcoxon_signed_rank(std::span<const double> a, std::span<const double> b,
                                Alternative alternative = Alternative::TwoSided,
                                WilcoxonMethod method = WilcoxonMethod::Auto);

// Holm-Bonferroni step-down adjustment of a family of p-values (same order as `p`):
// sorted ascending, the i-th smallest (0-based) becomes max over j <= i of
// min(1, (m - j) * p_(j)), so the result is monotone in p and capped at 1. NaN entries (a
// test that could not run) stay NaN and are not counted in m. Matches statsmodels'
// multipletests(p, method="holm")[1] on finite input.
std::vector<double> holm_adjust(std::span<const double> p);

// "*" when p < alpha (the paper's marker), else "" (also for NaN).
std::string_view significance_marker(double p_value, double alpha = 0.05);

// The paper's "Imp." cell: relative improvement of `ours` over `baseline` in percent with
// two decimals plus the marker, e.g. "28.71%*". "n/a" when baseline is 0.
std::string improvement_text(double ours, double baseline, double p_value, double alpha = 0.05);

}  // namespace lrgd::metrics
