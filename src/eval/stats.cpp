// Aggregates of a run's records and the Markdown table cells.
#include <fmt/core.h>

#include <cmath>
#include <set>

#include "eval_internal.h"

namespace lrgd::eval::detail {

RunStats compute_stats(const std::vector<Record>& records, const std::vector<metrics::MetricSpec>& specs,
                       double confidence) {
  RunStats s;
  s.metrics = specs;
  s.n_records = records.size();
  std::set<std::string> users;
  std::map<std::uint32_t, std::vector<int>> ranks;
  for (const auto& r : records) {
    users.insert(r.user);
    ranks[r.trial].push_back(r.target_rank);
    s.n_valid += r.valid ? 1 : 0;
    s.n_failed += r.failed ? 1 : 0;
    s.n_hallucinated += static_cast<std::size_t>(r.n_hallucinated);
    s.n_with_hallucination += r.n_hallucinated > 0 ? 1 : 0;
    s.n_duplicates += static_cast<std::size_t>(r.n_duplicates);
    s.n_truncated += (r.n_history_dropped + r.n_demo_dropped) > 0 ? 1 : 0;
    s.n_history_dropped += static_cast<std::size_t>(r.n_history_dropped);
    s.n_demo_dropped += static_cast<std::size_t>(r.n_demo_dropped);
    s.n_prompt_tokens += static_cast<std::uint64_t>(r.n_prompt_tokens);
    s.n_generated_tokens += static_cast<std::uint64_t>(r.n_generated_tokens);
    s.n_scored_tokens += static_cast<std::uint64_t>(r.n_scored_tokens);
  }
  s.n_users = users.size();
  for (const auto& [trial, rk] : ranks) {
    s.trials.push_back(trial);
    s.per_trial.push_back(metrics::compute_user_metrics(rk, specs));
  }
  if (!s.per_trial.empty()) s.summaries = metrics::summarize_trials(s.per_trial, confidence);
  return s;
}

std::string metric_title(const metrics::MetricSpec& spec) {
  const char* name = spec.kind == metrics::MetricKind::Ndcg     ? "nDCG"
                     : spec.kind == metrics::MetricKind::Recall ? "Recall"
                                                                : "MRR";
  return fmt::format("{}@{}", name, spec.k);
}

std::string markdown_table(const std::vector<metrics::MetricSpec>& specs, const std::vector<std::string>& labels,
                           const std::vector<std::vector<std::string>>& cells) {
  std::string out = "| Method |";
  for (const auto& m : specs) out += " " + metric_title(m) + " |";
  out += "\n|:--|";
  for (std::size_t i = 0; i < specs.size(); ++i) out += "--:|";
  out += "\n";
  for (std::size_t r = 0; r < labels.size(); ++r) {
    out += "| " + labels[r] + " |";
    for (const auto& c : cells[r]) out += " " + c + " |";
    out += "\n";
  }
  return out;
}

std::string mean_std_cell(const metrics::Summary& s) {
  if (s.n < 2) return fmt::format("{:.4f}", s.mean);
  return fmt::format("{:.4f} ± {:.4f}", s.mean, s.std);
}

ojson number(double v) { return std::isfinite(v) ? ojson(v) : ojson(nullptr); }

}  // namespace lrgd::eval::detail
