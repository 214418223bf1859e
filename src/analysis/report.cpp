// Output of the dual-model analyser: JSON with every number, a summary table, gnuplot plots.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lrgd/dual.h"
#include "lrgd/error.h"
#include "lrgd/process.h"

namespace lrgd::analysis {

namespace {

using nlohmann::json;

json num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

struct Agg {
  double sum = 0, max = 0;
  std::size_t n = 0;
  void add(double x) {
    if (!std::isfinite(x)) return;
    sum += x;
    max = std::max(max, x);
    ++n;
  }
  double mean() const { return n ? sum / static_cast<double>(n) : std::nan(""); }
};

json head_json(const HeadResult& h) {
  json j = {{"layer", h.layer},
            {"head", h.head},
            {"kv_head", h.kv_head},
            {"weight_d", num(h.weight_d)},
            {"split_rel_err", num(h.split_rel_err)},
            {"ref_probs_max_abs", num(h.ref_probs_max_abs)},
            {"ref_out_rel_err", num(h.ref_out_rel_err)},
            {"dual_rel_err_round", num(h.dual_rel_err_round)},
            {"dist_before_exact", num(h.dist_before_exact)},
            {"dist_after_exact", num(h.dist_after_exact)},
            {"dist_before", num(h.dist_before)},
            {"dist_after", num(h.dist_after)},
            {"cos_dual", num(h.cos_dual)},
            {"cos_exact", num(h.cos_exact)}};
  if (!h.dual_rel_err.empty()) {
    json e = json::array();
    for (double x : h.dual_rel_err) e.push_back(num(x));
    j["dual_rel_err"] = e;
  }
  return j;
}

json ffn_json(const FfnResult& f) {
  return {{"layer", f.layer},
          {"frozen_rel_err", num(f.frozen_rel_err)},
          {"resid_rel_err", num(f.resid_rel_err)},
          {"attn_share", num(f.attn_share)},
          {"exact_rel_err", num(f.exact_rel_err)},
          {"dual_rel_err", num(f.dual_rel_err)},
          {"exact_rel_attn", num(f.exact_rel_attn)},
          {"dual_rel_attn", num(f.dual_rel_attn)},
          {"dual_cos_attn", num(f.dual_cos_attn)}};
}

json chain_json(const ChainResult& c) {
  json steps = json::array();
  for (const auto& s : c.steps) {
    json le = json::array();
    for (double x : s.layer_rel_err) le.push_back(num(x));
    steps.push_back({{"pos", s.pos},
                     {"real_token", s.real_token},
                     {"chain_token", s.chain_token},
                     {"agrees", s.real_token == s.chain_token},
                     {"hidden_cos", num(s.hidden_cos)},
                     {"hidden_rel_err", num(s.hidden_rel_err)},
                     {"logits_cos", num(s.logits_cos)},
                     {"layer_rel_err", le}});
  }
  return {{"features", c.features}, {"token_agreement", num(c.token_agreement)}, {"steps", steps}};
}

// Mean over layers and heads of the per-token cosines of one step (Fig. 8's comparison).
struct StepCos {
  Agg dual, exact;
};
StepCos step_cosines(const StepResult& st) {
  StepCos c;
  for (const auto& h : st.heads) {
    c.dual.add(h.cos_dual);
    c.exact.add(1.0 - h.cos_exact);  // as a deviation, so max is the worst head
  }
  return c;
}

// Mean (and max) over all heads of step s, per M of the sweep.
std::vector<Agg> sweep_aggregate(const DualReport& r) {
  std::vector<Agg> a(r.options.features.size());
  if (r.steps.empty()) return a;
  for (const auto& h : r.steps[0].heads)
    for (std::size_t k = 0; k < h.dual_rel_err.size() && k < a.size(); ++k) a[k].add(h.dual_rel_err[k]);
  return a;
}

json summary_json(const DualReport& r) {
  json s;
  if (r.steps.empty()) return s;
  Agg split, ref, probs, wd;
  for (const auto& h : r.steps[0].heads) {
    split.add(h.split_rel_err);
    ref.add(h.ref_out_rel_err);
    probs.add(h.ref_probs_max_abs);
    wd.add(h.weight_d);
  }
  s["split_rel_err_max"] = num(split.max);
  s["ref_out_rel_err_max"] = num(ref.max);
  s["ref_probs_max_abs"] = num(probs.max);
  s["weight_d_mean"] = num(wd.mean());
  json sw = json::array();
  const auto a = sweep_aggregate(r);
  for (std::size_t k = 0; k < a.size(); ++k)
    sw.push_back({{"M", r.options.features[k]}, {"mean", num(a[k].mean())}, {"max", num(a[k].max)}});
  s["dual_rel_err_by_M"] = sw;
  json steps = json::array();
  for (const auto& st : r.steps) {
    Agg e, b, af, be, ae, sp;
    for (const auto& h : st.heads) {
      e.add(h.dual_rel_err_round);
      b.add(h.dist_before);
      af.add(h.dist_after);
      be.add(h.dist_before_exact);
      ae.add(h.dist_after_exact);
      sp.add(h.split_rel_err);
    }
    const StepCos sc = step_cosines(st);
    json round = {{"pos", st.pos},
                  {"n_gen", st.n_gen},
                  {"cos_dual_mean", num(sc.dual.mean())},
                  {"cos_exact_min", num(1.0 - sc.exact.max)},
                  {"split_rel_err_max", num(sp.max)},
                  {"dual_rel_err_mean", num(e.mean())},
                  {"dist_before_mean", num(b.mean())},
                  {"dist_after_mean", num(af.mean())},
                  {"dist_before_exact_mean", num(be.mean())},
                  {"dist_after_exact_mean", num(ae.mean())}};
    if (st.ffn) round["ffn"] = ffn_json(*st.ffn);
    steps.push_back(round);
  }
  s["rounds"] = steps;
  if (r.chain) {
    double hc = 0;
    for (const auto& c : r.chain->steps) hc += c.hidden_cos;
    s["chain"] = {{"features", r.chain->features},
                  {"token_agreement", num(r.chain->token_agreement)},
                  {"hidden_cos_mean",
                   num(r.chain->steps.empty() ? std::nan("") : hc / static_cast<double>(r.chain->steps.size()))}};
  }
  if (r.knob) {
    Agg ex, du, ch;
    for (const auto& h : r.knob->heads) {
      ex.add(h.exact_rel_err);
      du.add(h.dual_rel_err);
      ch.add(h.change_rel);
    }
    s["knob"] = {{"alpha", r.knob->alpha},
                 {"lambda", r.knob->lambda},
                 {"exact_rel_err_max", num(ex.max)},
                 {"dual_rel_err_mean", num(du.mean())},
                 {"change_rel_mean", num(ch.mean())}};
  }
  return s;
}

json report_json(const DualReport& r) {
  json j;
  j["label"] = r.label;
  if (!r.demonstration.empty()) j["demonstration"] = r.demonstration;
  j["model"] = r.model;
  j["arch"] = r.arch;
  j["n_layer"] = r.n_layer;
  j["n_head"] = r.n_head;
  j["n_head_kv"] = r.n_head_kv;
  j["head_dim"] = r.head_dim;
  j["n_prompt"] = r.n_prompt;
  json spans = json::array();
  for (const auto& s : r.spans) spans.push_back({{"label", s.label}, {"begin", s.begin}, {"end", s.end}});
  j["spans"] = spans;
  j["generated"] = r.generated;
  j["target_token"] = r.target_token;
  j["options"] = {{"features", r.options.features},     {"round_features", r.options.round_features},
                  {"orthogonal", r.options.orthogonal}, {"seed", r.options.seed},
                  {"layers", r.options.layers},         {"ffn_layer", r.options.ffn_layer},
                  {"chain", r.options.chain},           {"chain_features", r.options.chain_features}};
  j["timing_ms"] = {{"context", r.timing.context_ms},
                    {"prompt_decode_capture", r.timing.prompt_ms},
                    {"generate_capture", r.timing.generate_ms},
                    {"features_cpu", r.timing.features_ms},
                    {"dual_cpu", r.timing.dual_ms},
                    {"exact_cpu", r.timing.exact_ms},
                    {"knob_capture", r.timing.knob_capture_ms},
                    {"knob_analysis", r.timing.knob_ms},
                    {"chain", r.timing.chain_ms},
                    {"total", r.timing.total_ms}};
  j["summary"] = summary_json(r);
  json steps = json::array();
  for (const auto& st : r.steps) {
    json hs = json::array();
    for (const auto& h : st.heads) hs.push_back(head_json(h));
    json step = {{"pos", st.pos}, {"n_gen", st.n_gen}, {"next_token", st.next_token}, {"heads", hs}};
    if (st.ffn) step["ffn"] = ffn_json(*st.ffn);
    steps.push_back(step);
  }
  j["steps"] = steps;
  if (r.chain) j["chain"] = chain_json(*r.chain);
  if (!r.ffn_unavailable.empty()) j["ffn_unavailable"] = r.ffn_unavailable;
  if (r.knob) {
    json hs = json::array();
    for (const auto& h : r.knob->heads)
      hs.push_back({{"layer", h.layer},
                    {"head", h.head},
                    {"exact_rel_err", num(h.exact_rel_err)},
                    {"dual_rel_err", num(h.dual_rel_err)},
                    {"change_rel", num(h.change_rel)}});
    j["knob"] = {{"alpha", r.knob->alpha}, {"lambda", r.knob->lambda}, {"heads", hs}};
  }
  return j;
}

}  // namespace

std::vector<TokenSpan> parse_spans(const std::string& text) {
  std::vector<TokenSpan> spans;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto colon = item.find(':');
    const auto dash = item.find('-', colon == std::string::npos ? 0 : colon);
    if (colon == std::string::npos || colon == 0 || dash == std::string::npos)
      throw OptionError("--spans", "expected LABEL:BEGIN-END, got '" + item + "'");
    TokenSpan s;
    s.label = item.substr(0, colon);
    try {
      std::size_t used = 0;
      s.begin = std::stoi(item.substr(colon + 1, dash - colon - 1), &used);
      s.end = std::stoi(item.substr(dash + 1), &used);
    } catch (const std::exception&) {
      throw OptionError("--spans", "bad token index in '" + item + "'");
    }
    if (s.begin < 0 || s.end < s.begin) throw OptionError("--spans", "bad range in '" + item + "'");
    spans.push_back(s);
  }
  auto sorted = spans;
  std::sort(sorted.begin(), sorted.end(), [](const TokenSpan& a, const TokenSpan& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].begin < sorted[i - 1].end)
      throw OptionError("--spans", "spans " + sorted[i - 1].label + " and " + sorted[i].label + " overlap");
  return spans;
}

std::string format_spans(const std::vector<TokenSpan>& spans) {
  std::string s;
  for (const auto& sp : spans) s += (s.empty() ? "" : ",") + fmt::format("{}:{}-{}", sp.label, sp.begin, sp.end);
  return s;
}

void write_json(const std::vector<DualReport>& reports, const std::filesystem::path& path) {
  json j;
  j["format"] = "lrgd-dual-1";
  j["reports"] = json::array();
  for (const auto& r : reports) j["reports"].push_back(report_json(r));
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path);
  if (!out) throw IoError("cannot write " + path.string());
  out << j.dump(1) << "\n";
  if (!out) throw IoError("cannot write " + path.string());
}

std::string summary_table(const DualReport& r) {
  std::string s =
      fmt::format("[{}] {} arch={} layers={} heads={} (kv {}) head_dim={} prompt={} tokens, spans {}\n", r.label,
                  r.model, r.arch, r.n_layer, r.n_head, r.n_head_kv, r.head_dim, r.n_prompt, format_spans(r.spans));
  if (r.steps.empty()) return s;
  // Per layer at the last prompt token.
  std::map<int, std::vector<const HeadResult*>> by_layer;
  for (const auto& h : r.steps[0].heads) by_layer[h.layer].push_back(&h);
  s += fmt::format("{:>5} {:>7} {:>10} {:>10} {:>10}", "layer", "w_D", "split_err", "ref_err", "probs_err");
  for (int m : r.options.features) s += fmt::format(" {:>9}", fmt::format("M={}", m));
  s += "\n";
  for (const auto& [layer, heads] : by_layer) {
    Agg wd, sp, rf, pr;
    std::vector<Agg> du(r.options.features.size());
    for (const auto* h : heads) {
      wd.add(h->weight_d);
      sp.add(h->split_rel_err);
      rf.add(h->ref_out_rel_err);
      pr.add(h->ref_probs_max_abs);
      for (std::size_t k = 0; k < h->dual_rel_err.size() && k < du.size(); ++k) du[k].add(h->dual_rel_err[k]);
    }
    s += fmt::format("{:>5} {:>7.4f} {:>10.2e} {:>10.2e} {:>10.2e}", layer, wd.mean(), sp.max, rf.max, pr.max);
    for (const auto& a : du) s += fmt::format(" {:>9.4f}", a.mean());
    s += "\n";
  }
  s += "(w_D: attention mass on D+P, mean over heads; *_err: max over heads; M=...: mean relative error of the dual "
       "output)\n";
  s += fmt::format("per-token rounds (M={}; means over layers and heads; dist = |o - v_target| / |v_target|):\n",
                   r.options.round_features);
  s += fmt::format("{:>5} {:>5} {:>8} {:>10} {:>9} {:>10} {:>10} {:>10} {:>11} {:>11}\n", "n_gen", "pos", "token",
                   "dual_err", "cos_dual", "cos_exact", "dist_W0", "dist_W1", "exact_T", "exact_all");
  for (const auto& st : r.steps) {
    Agg e, b, a, be, ae;
    for (const auto& h : st.heads) {
      e.add(h.dual_rel_err_round);
      b.add(h.dist_before);
      a.add(h.dist_after);
      be.add(h.dist_before_exact);
      ae.add(h.dist_after_exact);
    }
    // Without a target the distances do not exist: "-" rather than nan.
    const auto dist = [&](const Agg& x, int width) {
      return r.target_token < 0 ? fmt::format("{:>{}}", "-", width) : fmt::format("{:>{}.4f}", x.mean(), width);
    };
    const StepCos sc = step_cosines(st);
    s +=
        fmt::format("{:>5} {:>5} {:>8} {:>10.4f} {:>9.4f} {:>10.7f} {} {} {} {}\n", st.n_gen, st.pos, st.next_token,
                    e.mean(), sc.dual.mean(), 1.0 - sc.exact.max, dist(b, 10), dist(a, 10), dist(be, 11), dist(ae, 11));
  }
  s += "(cos_dual: cosine of the dual output and the head output, mean over layers and heads; cos_exact: of the "
       "exact split, min)\n";
  if (!r.steps.empty() && r.steps[0].ffn) {
    s += fmt::format(
        "FFN dual, layer {} (frozen activation and norm scales; errors relative to |y|, and to the attention part "
        "|A o|):\n",
        r.steps[0].ffn->layer);
    s += fmt::format("{:>5} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10} {:>10} {:>9}\n", "n_gen", "frozen", "resid",
                     "|Ao|/|y|", "exact/y", "dual/y", "exact/Ao", "dual/Ao", "cos(Ao)");
    for (const auto& st : r.steps) {
      if (!st.ffn) continue;
      const FfnResult& f = *st.ffn;
      s += fmt::format("{:>5} {:>10.2e} {:>10.2e} {:>8.4f} {:>10.2e} {:>10.4f} {:>10.2e} {:>10.4f} {:>9.4f}\n",
                       st.n_gen, f.frozen_rel_err, f.resid_rel_err, f.attn_share, f.exact_rel_err, f.dual_rel_err,
                       f.exact_rel_attn, f.dual_rel_attn, f.dual_cos_attn);
    }
  }
  if (!r.ffn_unavailable.empty()) s += "no FFN dual: " + r.ffn_unavailable + "\n";
  if (r.chain) {
    s += fmt::format(
        "chained dual (App. C), every layer's attention replaced by its dual at M={} ({}), teacher "
        "forced; greedy tokens agree on {:.0f}% of steps:\n",
        r.chain->features, r.chain->features == 0 ? "exact softmax" : "random features",
        100 * r.chain->token_agreement);
    s += fmt::format("{:>5} {:>8} {:>8} {:>10} {:>10} {:>10}  {}\n", "step", "real", "chain", "hidden_cos",
                     "hidden_err", "logit_cos", "l_out rel err per layer");
    for (std::size_t i = 0; i < r.chain->steps.size(); ++i) {
      const ChainStep& c = r.chain->steps[i];
      std::string layers;
      for (double e : c.layer_rel_err) layers += fmt::format(" {:.2g}", e);
      s += fmt::format("{:>5} {:>8} {:>8} {:>10.4f} {:>10.4f} {:>10.4f} {}\n", i, c.real_token, c.chain_token,
                       c.hidden_cos, c.hidden_rel_err, c.logits_cos, layers);
    }
  }
  if (r.knob) {
    Agg ex, du, ch;
    for (const auto& h : r.knob->heads) {
      ex.add(h.exact_rel_err);
      du.add(h.dual_rel_err);
      ch.add(h.change_rel);
    }
    s += fmt::format(
        "knobs alpha={} lambda={}: predicted (1-lambda) o_T + alpha o_D vs intervened output: max rel err {:.2e}; "
        "dual ((1-lambda) W0 + alpha dW) phi(q)/Z: mean rel err {:.4f}; output moved by {:.4f} (mean rel)\n",
        r.knob->alpha, r.knob->lambda, ex.max, du.mean(), ch.mean());
  }
  s += fmt::format(
      "time: context {:.0f} ms, prompt+capture {:.0f} ms, generate+capture {:.0f} ms, features {:.0f} ms, "
      "dual {:.0f} ms, exact {:.0f} ms (cpu-summed), knob {:.0f}+{:.0f} ms, chain {:.0f} ms, total {:.0f} ms\n",
      r.timing.context_ms, r.timing.prompt_ms, r.timing.generate_ms, r.timing.features_ms, r.timing.dual_ms,
      r.timing.exact_ms, r.timing.knob_capture_ms, r.timing.knob_ms, r.timing.chain_ms, r.timing.total_ms);
  return s;
}

std::vector<std::filesystem::path> write_plots(const std::vector<DualReport>& reports,
                                               const std::filesystem::path& json_path, std::string& warning) {
  namespace fs = std::filesystem;
  warning.clear();
  if (!tool_available("gnuplot")) {
    warning = "gnuplot not found: plots skipped";
    return {};
  }
  const bool png = run_tool({"gnuplot", "-e", "set terminal pngcairo"}).ok();
  const std::string ext = png ? ".png" : ".svg";
  const std::string term = png ? "pngcairo size 900,600" : "svg size 900,600";
  const fs::path dir = json_path.has_parent_path() ? json_path.parent_path() : fs::path(".");
  const std::string stem = json_path.stem().string();
  const fs::path err_dat = dir / (stem + "_error_vs_m.dat");
  const fs::path dist_dat = dir / (stem + "_distances.dat");
  const fs::path err_png = dir / (stem + "_error_vs_m" + ext);
  const fs::path dist_png = dir / (stem + "_distances" + ext);
  const fs::path script = dir / (stem + "_plots.gp");
  const fs::path cos_dat = dir / (stem + "_cosine.dat");
  const fs::path cos_png = dir / (stem + "_cosine" + ext);
  const bool distances =
      std::any_of(reports.begin(), reports.end(), [](const DualReport& r) { return r.target_token >= 0; });
  {
    std::ofstream e(err_dat), d, cs(cos_dat);
    if (distances) d.open(dist_dat);
    for (const auto& r : reports) {
      cs << "# " << r.label << "\n# n_gen cos_dual_mean cos_exact_min\n";
      for (const auto& st : r.steps) {
        const StepCos sc = step_cosines(st);
        cs << st.n_gen << " " << sc.dual.mean() << " " << 1.0 - sc.exact.max << "\n";
      }
      cs << "\n\n";
      e << "# " << r.label << "\n# M mean max\n";
      const auto a = sweep_aggregate(r);
      for (std::size_t k = 0; k < a.size(); ++k)
        e << r.options.features[k] << " " << a[k].mean() << " " << a[k].max << "\n";
      e << "\n\n";
      if (!distances) continue;
      d << "# " << r.label << "\n# n_gen dist_W0 dist_W1 exact_T exact_all\n";
      for (const auto& st : r.steps) {
        Agg b, af, be, ae;
        for (const auto& h : st.heads) {
          b.add(h.dist_before);
          af.add(h.dist_after);
          be.add(h.dist_before_exact);
          ae.add(h.dist_after_exact);
        }
        d << st.n_gen << " " << b.mean() << " " << af.mean() << " " << be.mean() << " " << ae.mean() << "\n";
      }
      d << "\n\n";
    }
    if (!e || !cs || (distances && !d)) throw IoError("cannot write plot data next to " + json_path.string());
  }
  std::ofstream gp(script);
  gp << "set terminal " << term << "\n";
  gp << "set output " << gnuplot_quote(err_png.string()) << "\n";
  gp << "set logscale xy\nset xlabel 'random features M'\nset ylabel '|o_{dual} - o| / |o|'\n";
  gp << "set title 'Dual model vs captured attention output (mean over layers and heads)'\nset key top right\n";
  gp << "plot ";
  for (std::size_t i = 0; i < reports.size(); ++i)
    gp << (i ? ", " : "") << gnuplot_quote(err_dat.string()) << " index " << i << " using 1:2 with linespoints title "
       << gnuplot_quote(reports[i].label + " mean") << ", " << gnuplot_quote(err_dat.string()) << " index " << i
       << " using 1:3 with lines dashtype 2 title " << gnuplot_quote(reports[i].label + " max");
  gp << ", 1/sqrt(x) with lines lc rgb 'gray' title 'M^{-1/2}'\n";
  // Runs the script; a failed plot leaves no empty image behind.
  const auto draw = [&](std::vector<fs::path> images) -> std::vector<fs::path> {
    gp.close();
    if (!gp) throw IoError("cannot write " + script.string());
    const auto r = run_tool({"gnuplot", script.string()});
    if (!r.ok()) {
      for (const auto& f : images) fs::remove(f);
      warning = std::string(ToolError("gnuplot", r, "on " + script.string()).what()) + ": plots skipped";
      return {};
    }
    images.push_back(script);
    return images;
  };
  gp << "unset logscale\nset output " << gnuplot_quote(cos_png.string()) << "\n";
  // Headroom above 1, or the exact split's line (at 1) hides under the frame.
  gp << "set xlabel 'generated tokens in T (round)'\nset ylabel 'cos(o_{dual}, o)'\nset key bottom right\n"
     << "set offsets 0, 0, graph 0.1, graph 0.1\nset xtics 1\n";
  gp << "set title 'Dual model output vs real head output per generated token (mean over layers and heads)'\n";
  gp << "plot ";
  for (std::size_t i = 0; i < reports.size(); ++i)
    gp << (i ? ", " : "") << gnuplot_quote(cos_dat.string()) << " index " << i << " using 1:2 with linespoints title "
       << gnuplot_quote(reports[i].label + " random features") << ", " << gnuplot_quote(cos_dat.string()) << " index "
       << i << " using 1:3 with lines dashtype 2 title " << gnuplot_quote(reports[i].label + " exact split (min)");
  gp << "\n";
  if (!distances) return draw({err_png, cos_png});  // no target item: no distances to plot
  gp << "set offsets 0, 0, 0, 0\nset output " << gnuplot_quote(dist_png.string()) << "\n";
  gp << "set xlabel 'generated tokens in T (round)'\nset ylabel '|F(q) - v_{target}| / |v_{target}|'\n";
  gp << "set title 'Distance to the target item representation before (W0) and after (W1) the step'\n";
  gp << "plot ";
  for (std::size_t i = 0; i < reports.size(); ++i)
    gp << (i ? ", " : "") << gnuplot_quote(dist_dat.string()) << " index " << i
       << " using 1:2 with linespoints dashtype 2 title " << gnuplot_quote(reports[i].label + " W0 (before)") << ", "
       << gnuplot_quote(dist_dat.string()) << " index " << i << " using 1:3 with linespoints title "
       << gnuplot_quote(reports[i].label + " W1 (after)");
  gp << "\n";
  return draw({err_png, cos_png, dist_png});
}

}  // namespace lrgd::analysis
