#include "lrgd/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "lrgd/error.h"

namespace lrgd::metrics {

int rank_of(std::span<const std::int32_t> ranking, std::int32_t target) {
  const auto it = std::find(ranking.begin(), ranking.end(), target);
  return it == ranking.end() ? kNotRanked : static_cast<int>(it - ranking.begin()) + 1;
}

static bool in_top(int rank, int k) { return rank != kNotRanked && rank > 0 && rank <= k; }

double ndcg_at(int rank, int k) { return in_top(rank, k) ? 1.0 / std::log2(rank + 1.0) : 0.0; }
double recall_at(int rank, int k) { return in_top(rank, k) ? 1.0 : 0.0; }
double mrr_at(int rank, int k) { return in_top(rank, k) ? 1.0 / rank : 0.0; }

std::string MetricSpec::key() const {
  const char* name = kind == MetricKind::Ndcg ? "ndcg" : kind == MetricKind::Recall ? "recall" : "mrr";
  return std::string(name) + "@" + std::to_string(k);
}

double MetricSpec::value(int rank) const {
  switch (kind) {
    case MetricKind::Ndcg:
      return ndcg_at(rank, k);
    case MetricKind::Recall:
      return recall_at(rank, k);
    case MetricKind::Mrr:
      return mrr_at(rank, k);
  }
  return 0.0;
}

std::vector<MetricSpec> default_metrics() {
  return {{MetricKind::Ndcg, 1},   {MetricKind::Ndcg, 5},    {MetricKind::Ndcg, 10}, {MetricKind::Recall, 1},
          {MetricKind::Recall, 5}, {MetricKind::Recall, 10}, {MetricKind::Mrr, 10}};
}

MetricSpec parse_metric(std::string_view key) {
  std::string s;
  for (char c : key) {
    if (!std::isspace(static_cast<unsigned char>(c)))
      s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const auto at = s.find('@');
  if (at == std::string::npos) throw OptionError("--metrics", "metric '" + std::string(key) + "' lacks '@k'");
  const std::string name = s.substr(0, at);
  const std::string k_text = s.substr(at + 1);
  MetricSpec spec;
  if (name == "ndcg") {
    spec.kind = MetricKind::Ndcg;
  } else if (name == "recall" || name == "hr") {
    spec.kind = MetricKind::Recall;
  } else if (name == "mrr") {
    spec.kind = MetricKind::Mrr;
  } else {
    throw OptionError("--metrics", "unknown metric '" + std::string(key) + "' (ndcg, recall, hr, mrr)");
  }
  const bool digits = !k_text.empty() && k_text.size() <= 6 &&
                      std::all_of(k_text.begin(), k_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(k_text) < 1) {
    throw OptionError("--metrics", "cutoff in '" + std::string(key) + "' must be a positive integer");
  }
  spec.k = std::stoi(k_text);
  return spec;
}

std::vector<MetricSpec> parse_metrics(std::string_view keys) {
  std::vector<MetricSpec> out;
  std::size_t start = 0;
  while (start <= keys.size()) {
    const auto comma = std::min(keys.find(',', start), keys.size());
    const auto part = keys.substr(start, comma - start);
    if (part.find_first_not_of(" \t") != std::string_view::npos) out.push_back(parse_metric(part));
    start = comma + 1;
  }
  if (out.empty()) throw OptionError("--metrics", "no metric given");
  return out;
}

const std::vector<double>& UserMetrics::column(std::string_view key) const {
  for (std::size_t m = 0; m < metrics.size(); ++m) {
    if (metrics[m].key() == key) return values.at(m);
  }
  throw std::out_of_range("metric '" + std::string(key) + "' was not computed");
}

std::vector<double> UserMetrics::means() const {
  std::vector<double> out;
  for (const auto& v : values) out.push_back(mean(v));
  return out;
}

UserMetrics compute_user_metrics(std::span<const int> ranks, std::span<const MetricSpec> metrics) {
  UserMetrics out;
  out.metrics.assign(metrics.begin(), metrics.end());
  for (const auto& spec : metrics) {
    std::vector<double> column;
    column.reserve(ranks.size());
    for (int r : ranks) column.push_back(spec.value(r));
    out.values.push_back(std::move(column));
  }
  return out;
}

double mean(std::span<const double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double sample_std(std::span<const double> values) {
  if (values.size() < 2) return 0.0;
  const double m = mean(values);
  double ss = 0;
  for (double v : values) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(values.size() - 1));
}

Summary summarize(std::span<const double> values, double confidence) {
  if (!(confidence > 0.0 && confidence < 1.0)) throw std::invalid_argument("confidence must be in (0, 1)");
  Summary s;
  s.n = values.size();
  s.mean = mean(values);
  s.std = sample_std(values);
  if (s.n < 2) {
    s.ci_low = s.ci_high = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  const double df = static_cast<double>(s.n - 1);
  const double half = student_t_quantile(0.5 + confidence / 2.0, df) * s.std / std::sqrt(static_cast<double>(s.n));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

std::vector<Summary> summarize_trials(std::span<const UserMetrics> trials, double confidence) {
  if (trials.empty()) return {};
  const auto& metrics = trials.front().metrics;
  std::vector<std::vector<double>> per_metric(metrics.size());
  for (const auto& t : trials) {
    if (t.metrics != metrics) throw std::invalid_argument("trials were evaluated with different metrics");
    const auto means = t.means();
    for (std::size_t m = 0; m < metrics.size(); ++m) per_metric[m].push_back(means[m]);
  }
  std::vector<Summary> out;
  for (const auto& v : per_metric) out.push_back(summarize(v, confidence));
  return out;
}

std::string_view significance_marker(double p_value, double alpha) {
  return p_value < alpha ? std::string_view("*") : std::string_view("");
}

std::string improvement_text(double ours, double baseline, double p_value, double alpha) {
  if (baseline == 0.0 || std::isnan(ours) || std::isnan(baseline)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * (ours - baseline) / baseline);
  return buf + std::string(significance_marker(p_value, alpha));
}

}  // namespace lrgd::metrics
