// `lrgd report`: runs side by side, significance of each run vs the first one.
#include <fmt/core.h>

#include <map>

#include "eval_internal.h"
#include "lrgd/error.h"
#include "lrgd/file.h"
#include "lrgd/progress.h"

namespace lrgd::eval {

namespace {

using detail::ojson;

struct LoadedRun {
  std::filesystem::path dir;
  ojson config;
  std::vector<detail::Record> records;
  bool torn = false;
  detail::RunStats stats;
  std::string label;
};

LoadedRun load_run(const std::filesystem::path& dir, const ReportOptions& o) {
  LoadedRun r;
  r.dir = dir;
  const auto cfg = dir / "config.json";
  try {
    r.config = ojson::parse(read_file(cfg));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(cfg.string(), 0, "", std::string("not JSON: ") + e.what());
  }
  const auto results = dir / "results.jsonl";
  if (!std::filesystem::exists(results)) throw IoError("no results.jsonl in " + dir.string());
  auto f = detail::read_results(results);
  r.records = std::move(f.records);
  r.torn = f.torn;
  std::sort(r.records.begin(), r.records.end(),
            [](const auto& a, const auto& b) { return std::tie(a.trial, a.draw) < std::tie(b.trial, b.draw); });
  r.stats = detail::compute_stats(r.records, o.metrics, r.config.value("confidence", 0.95));
  r.label = detail::run_label(r.config);
  return r;
}

}  // namespace

Report report_runs(std::span<const std::filesystem::path> dirs, const ReportOptions& o) {
  if (dirs.empty()) throw OptionError("RUN_DIR", "at least one run directory is required");
  if (o.metrics.empty()) throw OptionError("--metrics", "no metric");
  std::vector<LoadedRun> runs;
  for (const auto& d : dirs) runs.push_back(load_run(d, o));
  // Distinct labels: add the folder name where two runs would share one.
  std::map<std::string, int> seen;
  for (const auto& r : runs) seen[r.label]++;
  for (auto& r : runs)
    if (seen[r.label] > 1) r.label += " [" + r.dir.filename().string() + "]";

  const auto& base = runs.front();
  std::map<std::pair<std::uint32_t, std::string>, const detail::Record*> base_index;
  for (const auto& rec : base.records) base_index[{rec.trial, rec.user}] = &rec;

  ojson j;
  j["alpha"] = o.alpha;
  j["test"] = o.test == SignificanceTest::T ? "paired_t" : "wilcoxon";
  j["baseline"] = base.label;
  ojson jr = ojson::array();
  std::vector<std::string> labels;
  std::vector<std::vector<std::string>> cells;
  std::string notes;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& run = runs[i];
    ojson r;
    r["dir"] = run.dir.string();
    r["label"] = run.label;
    r["method"] = run.config.value("method", std::string());
    r["dataset"] = run.config.contains("dataset") ? run.config["dataset"].value("name", std::string()) : "";
    r["config_hash"] = run.config.value("config_hash", std::string());
    r["n_users"] = run.stats.n_users;
    r["n_trials"] = run.stats.trials.size();
    r["n_records"] = run.stats.n_records;
    r["incomplete"] = run.torn;
    r["valid_output_rate"] = detail::number(run.stats.valid_output_rate());
    r["n_hallucinated"] = run.stats.n_hallucinated;
    // Pairs with the first run.
    std::vector<const detail::Record*> a, b;
    if (i > 0) {
      for (const auto& rec : run.records) {
        const auto it = base_index.find({rec.trial, rec.user});
        if (it != base_index.end()) {
          a.push_back(it->second);
          b.push_back(&rec);
        }
      }
      r["n_pairs"] = a.size();
      if (a.size() < std::max(base.records.size(), run.records.size()))
        notes += fmt::format("\n{} shares {} of its {} (user, trial) records with {}.", run.label, a.size(),
                             run.records.size(), base.label);
    }
    ojson m = ojson::object();
    std::vector<std::string> row;
    for (std::size_t k = 0; k < o.metrics.size(); ++k) {
      const auto& spec = o.metrics[k];
      const auto& sm = run.stats.summaries.at(k);
      ojson cell = {{"mean", detail::number(sm.mean)},
                    {"std", detail::number(sm.std)},
                    {"ci_low", detail::number(sm.ci_low)},
                    {"ci_high", detail::number(sm.ci_high)}};
      std::string text = detail::mean_std_cell(sm);
      if (i > 0 && !a.empty()) {
        std::vector<double> va, vb;
        va.reserve(a.size());
        vb.reserve(b.size());
        for (std::size_t p = 0; p < a.size(); ++p) {
          va.push_back(spec.value(a[p]->target_rank));
          vb.push_back(spec.value(b[p]->target_rank));
        }
        const auto t = metrics::paired_t_test(vb, va);
        const auto w = metrics::wilcoxon_signed_rank(vb, va);
        const double p = o.test == SignificanceTest::T ? t.p_value : w.p_value;
        const std::string marker(metrics::significance_marker(p, o.alpha));
        cell["diff_vs_first"] = detail::number(metrics::mean(vb) - metrics::mean(va));
        cell["t"] = detail::number(t.statistic);
        cell["t_p"] = detail::number(t.p_value);
        cell["wilcoxon_p"] = detail::number(w.p_value);
        cell["marker"] = marker;
        text += marker;
      }
      m[spec.key()] = std::move(cell);
      row.push_back(std::move(text));
    }
    r["metrics"] = std::move(m);
    jr.push_back(std::move(r));
    labels.push_back(run.label);
    cells.push_back(std::move(row));
  }
  j["runs"] = std::move(jr);

  Report rep;
  rep.markdown = detail::markdown_table(o.metrics, labels, cells);
  rep.markdown +=
      fmt::format("\nMean ± std over trials. * p < {} vs {} (first row), {} over (user, trial) pairs, two-sided.",
                  o.alpha, base.label, o.test == SignificanceTest::T ? "paired t-test" : "Wilcoxon signed-rank");
  for (const auto& run : runs)
    rep.markdown +=
        fmt::format("\n{}: {} x {}, valid-output rate {:.2f}%{}.", run.label, count_of(run.stats.n_users, "user"),
                    count_of(run.stats.trials.size(), "trial"), 100.0 * run.stats.valid_output_rate(),
                    run.torn ? " (incomplete: torn last line ignored)" : "");
  rep.markdown += notes + "\n";
  rep.json = j.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
  return rep;
}

}  // namespace lrgd::eval
