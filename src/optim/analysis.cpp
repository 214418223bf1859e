// Collapse analysis (paper Fig. 9): per-round similarity and nDCG@10, table and plot.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>

#include "lrgd/metrics.h"
#include "lrgd/optim.h"
#include "lrgd/process.h"

namespace lrgd::optim {

std::vector<RoundStats> round_stats(std::span<const memory::Entry> rows) {
  std::map<int, RoundStats> by;
  std::map<int, std::size_t> n_sim;
  for (const auto& e : rows) {
    auto& s = by[e.round];
    s.round = e.round;
    ++s.n;
    s.ndcg10 += metrics::ndcg_at(e.target_rank, 10);
    s.mean_score += e.score;
    s.collapse_rate += e.collapsed ? 1 : 0;
    s.perturbed_rate += e.perturbation_path >= 0 ? 1 : 0;
    if (e.round > 0) {
      s.similarity += e.similarity;
      ++n_sim[e.round];
    }
  }
  std::vector<RoundStats> out;
  for (auto& [r, s] : by) {
    const double n = static_cast<double>(s.n);
    s.ndcg10 /= n;
    s.mean_score /= n;
    s.collapse_rate /= n;
    s.perturbed_rate /= n;
    s.similarity = r > 0 ? s.similarity / static_cast<double>(n_sim[r]) : std::numeric_limits<double>::quiet_NaN();
    out.push_back(s);
  }
  return out;
}

std::string collapse_markdown(std::span<const Series> series) {
  std::string s =
      "# Collapse analysis (paper Fig. 9)\n\nPer optimisation round, over (user, path) on the validation target: mean "
      "token-Jaccard similarity of the demonstration to the same path's previous one, and nDCG@10.\n\n";
  const auto has_test = [](const Series& se) {
    return std::any_of(se.rounds.begin(), se.rounds.end(),
                       [](const RoundStats& r) { return !std::isnan(r.test_ndcg10); });
  };
  bool any_test = false;
  for (const auto& se : series) any_test = any_test || has_test(se);
  if (any_test) s += "Test nDCG@10 (round r): the test target ranked with the best demonstration of rounds 1..r.\n\n";
  s += "| Round |";
  std::string sep = "|--:|";
  for (const auto& se : series) {
    s += fmt::format(" Similarity ({0}) | nDCG@10 ({0}) | Collapsed ({0}) |", se.name);
    sep += "--:|--:|--:|";
    if (has_test(se)) {
      s += fmt::format(" Test nDCG@10 ({}) |", se.name);
      sep += "--:|";
    }
  }
  s += "\n" + sep + "\n";
  int max_round = -1;
  for (const auto& se : series)
    for (const auto& r : se.rounds) max_round = std::max(max_round, r.round);
  for (int round = 0; round <= max_round; ++round) {
    s += fmt::format("| {} |", round + 1);
    for (const auto& se : series) {
      const RoundStats* rs = nullptr;
      for (const auto& r : se.rounds)
        if (r.round == round) rs = &r;
      if (rs == nullptr) {
        s += has_test(se) ? " | | | |" : " | | |";
        continue;
      }
      s += std::isnan(rs->similarity) ? std::string(" – |") : fmt::format(" {:.4f} |", rs->similarity);
      s += fmt::format(" {:.4f} | {:.2f} |", rs->ndcg10, rs->collapse_rate);
      if (has_test(se))
        s += std::isnan(rs->test_ndcg10) ? std::string(" – |") : fmt::format(" {:.4f} |", rs->test_ndcg10);
    }
    s += "\n";
  }
  // Over all rounds that can collapse (the memory's rows, so a resumed run counts them too).
  for (const auto& se : series) {
    double n = 0, collapsed = 0, perturbed = 0;
    for (const auto& r : se.rounds) {
      if (r.round == 0) continue;
      n += static_cast<double>(r.n);
      collapsed += r.collapse_rate * static_cast<double>(r.n);
      perturbed += r.perturbed_rate * static_cast<double>(r.n);
    }
    if (n > 0)
      s += fmt::format(
          "\n{}: collapse declared in {:.0f} of {:.0f} rows of rounds 2+ ({:.1f}%); {:.1f}% of these rows were scored "
          "with a P.",
          se.name, collapsed, n, 100.0 * collapsed / n, 100.0 * perturbed / n);
  }
  if (!series.empty()) s += "\n";
  return s;
}

bool plot_collapse(std::span<const Series> series, const std::filesystem::path& png, std::string& error) {
  auto base = png;
  base.replace_extension();
  const auto dat = base.string() + ".dat";
  const auto gp = base.string() + ".gp";
  {
    std::ofstream d(dat);
    for (const auto& se : series) {
      d << "# " << se.name << "\n";
      for (const auto& r : se.rounds)
        d << (r.round + 1) << ' '
          << (std::isnan(r.similarity) ? std::string("NaN") : fmt::format("{:.6f}", r.similarity)) << ' '
          << fmt::format("{:.6f}", r.ndcg10) << ' '
          << (std::isnan(r.test_ndcg10) ? std::string("NaN") : fmt::format("{:.6f}", r.test_ndcg10)) << "\n";
      d << "\n\n";
    }
    if (!d) {
      error = "cannot write " + dat;
      return false;
    }
  }
  {
    std::ofstream g(gp);
    g << "set terminal pngcairo noenhanced size 1000,420 font ',11'\n"  // '@' in nDCG@10 is markup otherwise
      << "set output " << gnuplot_quote(png.string()) << "\n"
      << "set multiplot layout 1,2 title 'Demonstration collapse (paper Fig. 9)'\n"
      << "set xlabel 'round'\nset grid\nset key bottom right\nset xtics 1\nset datafile missing 'NaN'\n"
      << "set title 'similarity of consecutive demonstrations'\nset ylabel 'token Jaccard'\n"
      << "plot ";
    for (std::size_t i = 0; i < series.size(); ++i)
      g << (i ? ", " : "") << gnuplot_quote(dat) << " index " << i << " using 1:2 with linespoints lw 2 title "
        << gnuplot_quote(series[i].name);
    bool any_test = false;
    for (const auto& se : series)
      for (const auto& r : se.rounds) any_test = any_test || !std::isnan(r.test_ndcg10);
    g << "\nset title '" << (any_test ? "nDCG@10 (validation; test dashed)" : "validation nDCG@10")
      << "'\nset ylabel 'nDCG@10'\nplot ";
    for (std::size_t i = 0; i < series.size(); ++i) {
      g << (i ? ", " : "") << gnuplot_quote(dat) << " index " << i << " using 1:3 with linespoints lw 2 lc " << i + 1
        << " title " << gnuplot_quote(series[i].name + (any_test ? " (validation)" : ""));
      if (any_test)
        g << ", " << gnuplot_quote(dat) << " index " << i << " using 1:4 with linespoints lw 2 dt 2 lc " << i + 1
          << " title " << gnuplot_quote(series[i].name + " (test)");
    }
    g << "\nunset multiplot\n";
  }
  const auto r = run_tool({"gnuplot", gp});
  if (!r.ok() || !std::filesystem::exists(png)) {
    std::filesystem::remove(png);
    error = ToolError("gnuplot", r, "plotting " + png.string()).what();
    return false;
  }
  return true;
}

}  // namespace lrgd::optim
