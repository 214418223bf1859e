// `lrgd report`: runs side by side, significance of each run vs the first one.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include "eval_internal.h"
#include "lrgd/enum_names.h"
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

// The (user, trial) records two runs share, as (x, ref) pairs in x's order.
using Pairs = std::vector<std::pair<const detail::Record*, const detail::Record*>>;
using Index = std::map<std::pair<std::uint32_t, std::string>, const detail::Record*>;

Index index_of(const LoadedRun& run) {
  Index index;
  for (const auto& rec : run.records) index[{rec.trial, rec.user}] = &rec;
  return index;
}

Pairs pair_records(const LoadedRun& x, const Index& ref) {
  Pairs pairs;
  for (const auto& rec : x.records) {
    const auto it = ref.find({rec.trial, rec.user});
    if (it != ref.end()) pairs.emplace_back(&rec, it->second);
  }
  return pairs;
}

// One paired comparison x vs ref on one metric: the observations per unit, both tests.
struct Comparison {
  std::size_t n = 0;  // users or (user, trial) pairs
  double diff = 0;    // mean of x - ref over the observations
  metrics::TestResult t, w;
  double t_p_holm = std::numeric_limits<double>::quiet_NaN();  // set once the table's family is known
  double w_p_holm = std::numeric_limits<double>::quiet_NaN();
};

Comparison compare(const Pairs& pairs, const metrics::MetricSpec& spec, SignificanceUnit unit) {
  std::vector<double> vx, vr;
  if (unit == SignificanceUnit::UserTrial) {
    for (const auto& [x, r] : pairs) {
      vx.push_back(spec.value(x->target_rank));
      vr.push_back(spec.value(r->target_rank));
    }
  } else {
    // Trial means per user first: the user, not the (user, trial) record, is independent.
    struct Sums {
      double x = 0, r = 0;
      std::size_t n = 0;
    };
    std::map<std::string, Sums> by_user;
    for (const auto& [x, r] : pairs) {
      auto& s = by_user[x->user];
      s.x += spec.value(x->target_rank);
      s.r += spec.value(r->target_rank);
      ++s.n;
    }
    for (const auto& [user, s] : by_user) {
      vx.push_back(s.x / static_cast<double>(s.n));
      vr.push_back(s.r / static_cast<double>(s.n));
    }
  }
  Comparison c;
  c.n = vx.size();
  if (vx.empty()) {
    c.diff = c.t.p_value = c.w.p_value = std::numeric_limits<double>::quiet_NaN();
    c.t.statistic = c.w.statistic = c.diff;
    return c;
  }
  c.diff = metrics::mean(vx) - metrics::mean(vr);
  c.t = metrics::paired_t_test(vx, vr);
  c.w = metrics::wilcoxon_signed_rank(vx, vr);
  return c;
}

std::size_t find_ours(const std::vector<LoadedRun>& runs, const std::string& ours) {
  if (ours.empty()) return runs.size() - 1;
  if (std::all_of(ours.begin(), ours.end(), [](unsigned char c) { return std::isdigit(c); })) {
    const auto pos = std::stoull(ours.size() > 6 ? std::string("0") : ours);
    if (pos < 1 || pos > runs.size())
      throw OptionError("--ours", fmt::format("position {} is not in 1..{}", ours, runs.size()));
    return pos - 1;
  }
  const auto lower = [](std::string v) {
    for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return v;
  };
  std::vector<std::size_t> hits;
  for (std::size_t i = 0; i < runs.size(); ++i)
    if (lower(runs[i].label) == lower(ours) || lower(runs[i].dir.filename().string()) == lower(ours)) hits.push_back(i);
  if (hits.size() == 1) return hits.front();
  std::string known;
  for (const auto& r : runs) known += (known.empty() ? "" : ", ") + r.label;
  throw OptionError("--ours",
                    fmt::format("'{}' matches {} runs (labels: {}; or a 1-based position)", ours, hits.size(), known));
}

const char* test_name(SignificanceTest t) {
  return t == SignificanceTest::T ? "paired t-test" : "Wilcoxon signed-rank";
}

// "1000 users (trial means)" / "10000 (user, trial) pairs", or a range when they differ.
std::string unit_text(const std::vector<const Comparison*>& cs, SignificanceUnit unit) {
  std::size_t lo = std::numeric_limits<std::size_t>::max(), hi = 0;
  for (const auto* c : cs) {
    lo = std::min(lo, c->n);
    hi = std::max(hi, c->n);
  }
  const std::string n = lo == hi ? std::to_string(lo) : fmt::format("{}-{}", lo, hi);
  if (unit == SignificanceUnit::User) return n + " users (trial means)";
  return n + " (user, trial) pairs (anti-conservative: a user's trials are not independent)";
}

}  // namespace

SignificanceUnit parse_significance_unit(std::string_view text) {
  static constexpr std::array<Named<SignificanceUnit>, 2> kUnits{
      {{SignificanceUnit::User, "user"}, {SignificanceUnit::UserTrial, "user-trial"}}};
  return parse_named(kUnits, text, "--unit", "unit");
}

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
  const bool with_imp = o.ours != "none" && runs.size() > 1;
  const std::size_t ours = with_imp ? find_ours(runs, o.ours) : 0;

  const auto& base = runs.front();
  std::vector<Index> indexes;
  for (const auto& r : runs) indexes.push_back(index_of(r));
  const std::size_t n_metrics = o.metrics.size();

  // Every comparison of the table first, so that Holm sees the whole family.
  std::vector<Pairs> base_pairs(runs.size());
  std::vector<std::vector<Comparison>> vs_base(runs.size());  // [run][metric], run > 0
  for (std::size_t i = 1; i < runs.size(); ++i) {
    base_pairs[i] = pair_records(runs[i], indexes.front());
    if (base_pairs[i].empty()) continue;
    for (const auto& spec : o.metrics) vs_base[i].push_back(compare(base_pairs[i], spec, o.unit));
  }
  // Imp.: ours vs the runner-up, the best other run by the table's mean on that metric.
  std::vector<std::size_t> runner_up(n_metrics, runs.size());
  std::vector<Comparison> vs_runner_up(n_metrics);
  std::vector<std::size_t> n_imp_pairs(n_metrics, 0);
  if (with_imp) {
    for (std::size_t k = 0; k < n_metrics; ++k) {
      for (std::size_t i = 0; i < runs.size(); ++i) {
        if (i == ours || std::isnan(runs[i].stats.summaries.at(k).mean)) continue;
        if (runner_up[k] == runs.size() ||
            runs[i].stats.summaries.at(k).mean > runs[runner_up[k]].stats.summaries.at(k).mean)
          runner_up[k] = i;
      }
      if (runner_up[k] == runs.size()) continue;
      const auto pairs = pair_records(runs[ours], indexes[runner_up[k]]);
      n_imp_pairs[k] = pairs.size();
      vs_runner_up[k] = compare(pairs, o.metrics[k], o.unit);
    }
  }
  // A comparison with the first run is already in the table: the same test, counted once.
  const auto repeats_base = [&](std::size_t k) { return runner_up[k] == 0 || ours == 0; };
  std::vector<Comparison*> family;
  for (auto& row : vs_base)
    for (auto& c : row) family.push_back(&c);
  for (std::size_t k = 0; k < n_metrics; ++k)
    if (runner_up[k] != runs.size() && !repeats_base(k)) family.push_back(&vs_runner_up[k]);
  {
    std::vector<double> tp, wp;
    for (const auto* c : family) {
      tp.push_back(c->t.p_value);
      wp.push_back(c->w.p_value);
    }
    const auto ta = o.holm ? metrics::holm_adjust(tp) : tp;
    const auto wa = o.holm ? metrics::holm_adjust(wp) : wp;
    for (std::size_t f = 0; f < family.size(); ++f) {
      family[f]->t_p_holm = ta[f];
      family[f]->w_p_holm = wa[f];
    }
    for (std::size_t k = 0; k < n_metrics; ++k) {
      if (runner_up[k] == runs.size() || !repeats_base(k)) continue;
      const auto& same = vs_base[ours == 0 ? runner_up[k] : ours];
      if (same.empty()) continue;  // no records shared with the first run: nothing to adjust
      vs_runner_up[k].t_p_holm = same[k].t_p_holm;
      vs_runner_up[k].w_p_holm = same[k].w_p_holm;
    }
  }
  // The p-value behind a marker: the chosen test's, Holm-adjusted when asked.
  const auto marker_p = [&](const Comparison& c) { return o.test == SignificanceTest::T ? c.t_p_holm : c.w_p_holm; };
  const auto test_json = [&](ojson& cell, const Comparison& c) {
    cell["n"] = c.n;
    cell["t"] = detail::number(c.t.statistic);
    cell["t_p"] = detail::number(c.t.p_value);
    cell["wilcoxon_p"] = detail::number(c.w.p_value);
    if (o.holm) {
      cell["t_p_holm"] = detail::number(c.t_p_holm);
      cell["wilcoxon_p_holm"] = detail::number(c.w_p_holm);
    }
    cell["marker"] = std::string(metrics::significance_marker(marker_p(c), o.alpha));
  };

  ojson j;
  j["alpha"] = o.alpha;
  j["test"] = o.test == SignificanceTest::T ? "paired_t" : "wilcoxon";
  j["unit"] = o.unit == SignificanceUnit::User ? "user" : "user-trial";
  j["correction"] = o.holm ? "holm" : "none";
  j["n_comparisons"] = family.size();
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
    const auto& pairs = base_pairs[i];
    if (i > 0) {
      r["n_pairs"] = pairs.size();
      if (pairs.size() < std::max(base.records.size(), run.records.size()))
        notes += fmt::format("\n{} shares {} of its {} (user, trial) records with {}.", run.label, pairs.size(),
                             run.records.size(), base.label);
    }
    ojson m = ojson::object();
    std::vector<std::string> row;
    for (std::size_t k = 0; k < n_metrics; ++k) {
      const auto& sm = run.stats.summaries.at(k);
      ojson cell = {{"mean", detail::number(sm.mean)},
                    {"std", detail::number(sm.std)},
                    {"ci_low", detail::number(sm.ci_low)},
                    {"ci_high", detail::number(sm.ci_high)}};
      std::string text = detail::mean_std_cell(sm);
      if (!vs_base[i].empty()) {
        const auto& c = vs_base[i][k];
        cell["diff_vs_first"] = detail::number(c.diff);
        test_json(cell, c);
        text += cell["marker"].get<std::string>();
      }
      m[o.metrics[k].key()] = std::move(cell);
      row.push_back(std::move(text));
    }
    r["metrics"] = std::move(m);
    jr.push_back(std::move(r));
    labels.push_back(run.label);
    cells.push_back(std::move(row));
  }
  j["runs"] = std::move(jr);
  if (with_imp) {
    ojson imp;
    imp["ours"] = runs[ours].label;
    ojson im = ojson::object();
    std::vector<std::string> row;
    for (std::size_t k = 0; k < n_metrics; ++k) {
      ojson cell;
      if (runner_up[k] == runs.size()) {
        row.push_back("n/a");
        im[o.metrics[k].key()] = nullptr;
        continue;
      }
      const auto& c = vs_runner_up[k];
      const double a = runs[ours].stats.summaries.at(k).mean, b = runs[runner_up[k]].stats.summaries.at(k).mean;
      const auto text = metrics::improvement_text(a, b, marker_p(c), o.alpha);
      cell["runner_up"] = runs[runner_up[k]].label;
      cell["ours_mean"] = detail::number(a);
      cell["runner_up_mean"] = detail::number(b);
      cell["improvement_pct"] = b != 0 ? detail::number(100.0 * (a - b) / b) : ojson(nullptr);
      cell["text"] = text;
      cell["n_pairs"] = n_imp_pairs[k];
      cell["diff"] = detail::number(c.diff);
      test_json(cell, c);
      row.push_back(text + " vs " + runs[runner_up[k]].label);
      im[o.metrics[k].key()] = std::move(cell);
    }
    imp["metrics"] = std::move(im);
    j["imp"] = std::move(imp);
    labels.push_back("Imp. of " + runs[ours].label);
    cells.push_back(std::move(row));
  }

  Report rep;
  rep.markdown = detail::markdown_table(o.metrics, labels, cells);
  rep.markdown += "\nMean ± std over trials.";
  std::vector<const Comparison*> base_family, imp_family;
  for (const auto& row : vs_base)
    for (const auto& c : row) base_family.push_back(&c);
  for (std::size_t k = 0; k < n_metrics; ++k)
    if (runner_up[k] != runs.size()) imp_family.push_back(&vs_runner_up[k]);
  const std::string correction =
      o.holm ? fmt::format(", Holm-adjusted over the table's {} comparisons", family.size()) : "";
  if (!base_family.empty())
    rep.markdown += fmt::format(" * p < {} vs {} (first row): {} over {}, two-sided{}.", o.alpha, base.label,
                                test_name(o.test), unit_text(base_family, o.unit), correction);
  if (!imp_family.empty())
    rep.markdown += fmt::format(
        "\nImp.: ({0} - runner-up) / runner-up per metric, the runner-up (named in the cell) being the best other row; "
        "* p < {1}: {0} vs the runner-up, {2} over {3}, two-sided{4}.",
        runs[ours].label, o.alpha, test_name(o.test), unit_text(imp_family, o.unit), correction);
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
