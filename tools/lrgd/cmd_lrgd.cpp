// `lrgd eval --method lrgd` options, `lrgd memory` (list, best, export) and `lrgd ablate`
// (paper Table 5 and Fig. 9). docs/lrgd.md.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/file.h"
#include "lrgd/hash.h"
#include "lrgd/llama_model.h"
#include "lrgd/memory.h"
#include "lrgd/optim.h"
#include "lrgd/progress.h"
#include "lrgd/prompt.h"

namespace lrgd::cli {

struct LrgdArgs {
  int paths = 3;
  int rounds = 3;
  int budget = 0;
  std::string quality = "log2";
  std::string collapse = "both";
  double collapse_threshold = 0.8;
  double collapse_margin = 0.01;
  int collapse_window = 2;
  bool no_perturbation = false;
  bool swap = false;
  std::string icl_demo = "first-round";
  int test_rounds = 0;
  std::string generator = "template";
  std::string generator_template;
  std::string memory;
  bool no_plot = false;
};

namespace {

using ojson = nlohmann::ordered_json;

// Users of a run directory's results (trial 0, draw order).
std::set<std::string> run_users(const std::filesystem::path& run) {
  std::set<std::string> users;
  std::ifstream in(run / "results.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    users.insert(nlohmann::json::parse(line).at("user").get<std::string>());
  }
  return users;
}

std::vector<memory::Entry> run_rows(const std::filesystem::path& memory_path, const std::string& dataset,
                                    const std::string& variant, const std::set<std::string>& users) {
  memory::Store store(memory_path);
  memory::Filter f;
  f.dataset = dataset;
  f.variant = variant;
  std::vector<memory::Entry> out;
  for (auto& e : store.list(f))
    if (users.contains(e.user)) out.push_back(std::move(e));
  return out;
}

void write_collapse(std::span<const optim::Series> series, const std::filesystem::path& dir, bool plot) {
  write_file_atomic(dir / "collapse.md", optim::collapse_markdown(series));
  if (!plot) return;
  std::string error;
  if (!optim::plot_collapse(series, dir / "collapse.png", error))
    fmt::print(stderr, "lrgd: warning: no collapse plot: {}\n", error);
}

}  // namespace

std::shared_ptr<LrgdArgs> add_lrgd_eval_options(CLI::App* ev) {
  auto a = std::make_shared<LrgdArgs>();
  const std::string g = "LRGD (--method lrgd; the generator also makes icl's demonstration)";
  ev->add_option("--paths", a->paths, "lrgd: optimisation paths K (K-PDO)")->capture_default_str()->group(g);
  ev->add_option("--rounds", a->rounds, "lrgd: optimisation rounds R")->capture_default_str()->group(g);
  ev->add_option("--budget", a->budget,
                 "lrgd: demonstrations tried per user, shared out over the paths (0: paths x rounds; set, it "
                 "replaces --rounds)")
      ->capture_default_str()
      ->group(g);
  ev->add_option("--quality", a->quality, "lrgd: S(D) = log2 (1/log2(p+1)) | inverse (1/p)")
      ->capture_default_str()
      ->group(g);
  ev->add_option("--collapse", a->collapse, "lrgd: collapse rule similarity | stall | both")
      ->capture_default_str()
      ->group(g);
  ev->add_option("--collapse-threshold", a->collapse_threshold, "lrgd: token-Jaccard threshold of collapse")
      ->capture_default_str()
      ->group(g);
  ev->add_option("--collapse-margin", a->collapse_margin,
                 "lrgd: stall = the path's best S rose by less than this over --collapse-window rounds")
      ->capture_default_str()
      ->group(g);
  ev->add_option("--collapse-window", a->collapse_window, "lrgd: rounds of the stall rule's window")
      ->capture_default_str()
      ->group(g);
  ev->add_flag("--no-perturbation", a->no_perturbation, "lrgd: no perturbation P on collapse")->group(g);
  ev->add_flag("--swap", a->swap, "lrgd: swap T and D (template icl_swap)")->group(g);
  ev->add_option("--icl-demo", a->icl_demo,
                 "icl: first-round (LRGD's round-0 demonstration of path 0, from the same generator) | validation "
                 "(the user's validation window and target, no reason line)")
      ->capture_default_str()
      ->group(g);
  ev->add_option("--generator", a->generator, "lrgd, icl: stage-1 generator template | llm")
      ->capture_default_str()
      ->group(g);
  ev->add_option("--generator-template", a->generator_template, "lrgd: llm generator prompt file")->group(g);
  ev->add_option("--memory", a->memory, "lrgd: memory database (default RUN_DIR/memory.sqlite)")->group(g);
  ev->add_flag("--no-plot", a->no_plot, "lrgd: no collapse.png")->group(g);
  ev->add_option("--test-rounds", a->test_rounds,
                 "lrgd: test with the best demonstration of the first N rounds (0: all; the memory is the same)")
      ->capture_default_str()
      ->group(g);
  return a;
}

std::function<void()> configure_lrgd_eval(const LrgdArgs& a, eval::EvalConfig& c, const data::Dataset& ds,
                                          llm::Backend& backend, const std::string& out, bool progress) {
  optim::Options o;
  o.paths = a.paths;
  o.rounds = a.rounds;
  if (o.paths < 1 || o.paths > 255) throw OptionError("--paths", "must be in 1..255");
  if (o.rounds < 1) throw OptionError("--rounds", "must be >= 1");
  if (a.budget < 0) throw OptionError("--budget", "must be >= 0");
  if (a.budget > 0 && a.budget < o.paths) throw OptionError("--budget", "must give every path a round (>= --paths)");
  o.budget = a.budget;
  if (o.budget > 0) o.rounds = o.max_rounds();
  if (a.collapse_window < 1) throw OptionError("--collapse-window", "must be >= 1");
  if (!(a.collapse_margin >= 0)) throw OptionError("--collapse-margin", "must be >= 0");
  o.collapse_margin = a.collapse_margin;
  o.collapse_window = a.collapse_window;
  o.quality = optim::parse_quality(a.quality);
  o.collapse = optim::parse_collapse_rule(a.collapse);
  o.collapse_threshold = a.collapse_threshold;
  o.perturbation = !a.no_perturbation;
  if (a.generator != "template" && a.generator != "llm")
    throw OptionError("--generator", "template or llm, not '" + a.generator + "'");
  o.generator = a.generator;
  o.seed = c.protocol.seed;
  if (c.llm.prompt_form == rec::PromptForm::ItemTokens) {
    // An item-token prompt has no text: no instruction T to swap, no textual R, and the
    // generator must be the template one (an llm generator writes text).
    if (o.generator != "template") throw OptionError("--generator", "an item-token model needs --generator template");
    if (a.swap) throw OptionError("--swap", "an item-token prompt has no instruction T to swap with D");
  } else if (c.llm.template_name.empty()) {
    c.llm.template_name = a.swap ? "icl_swap" : "icl";
  }
  std::string gen_template;
  auto mc = ojson::parse(optim::options_json(o));
  if (o.generator == "llm") {
    gen_template = a.generator_template.empty() ? std::string(prompt::Template::builtin_text("generator"))
                                                : read_file(a.generator_template);
    mc["generator_template_sha256"] = sha256_hex(gen_template);
  }
  c.method_config = mc.dump();
  // The memory variant: everything that changes a row (not the number of users or trials).
  auto doc = ojson::parse(eval::config_json(c, ds, backend.model_id()));
  for (const char* k : {"runtime", "config_hash", "lrgd_version", "trials", "metrics", "confidence"}) doc.erase(k);
  doc["protocol"].erase("n_users");
  doc["seeds"].erase("generation_per_trial");
  doc["dataset"].erase("path");
  doc["model"].erase("path");
  doc["model"].erase("endpoint");
  const std::string variant = sha256_hex(doc.dump()).substr(0, 16);
  // Which rounds the test may draw on changes the results, not the rows: hashed into the
  // run's config, not into the memory variant.
  if (a.test_rounds < 0) throw OptionError("--test-rounds", "must be >= 0");
  if (a.test_rounds > 0) {
    mc["test_rounds"] = a.test_rounds;
    c.method_config = mc.dump();
  }
  const std::filesystem::path memory_path =
      a.memory.empty() ? std::filesystem::path(out) / "memory.sqlite" : std::filesystem::path(a.memory);
  c.runtime["memory"] = memory_path.string();
  auto cost = std::make_shared<optim::Cost>();
  optim::LrgdRankerOptions lo;
  lo.optim = o;
  lo.memory_path = memory_path;
  lo.variant = variant;
  lo.generator_template = gen_template;
  lo.cost_out = cost;
  lo.progress = progress;
  lo.test_rounds = a.test_rounds;
  const auto protocol = c.protocol;
  c.ranker_factory = [lo, protocol](const data::Dataset& d, llm::Backend& b, const rec::LlmRankerOptions& icl) {
    return optim::make_lrgd_ranker(d, b, icl, protocol, lo);
  };
  const std::string dkey = optim::dataset_key(ds);
  c.summary_extra = [cost, variant, memory_path, dkey, out] {
    auto j = ojson::parse(optim::cost_json(*cost));
    j["variant"] = variant;
    j["memory"] = memory_path.string();
    // The cost counts this process's work; the collapse statistics of the run's users come
    // from the memory, so a resumed run reports them whole.
    std::size_t n_rows = 0, n_checks = 0, n_collapses = 0, n_perturbed = 0;
    for (const auto& e : run_rows(memory_path, dkey, variant, run_users(out))) {
      ++n_rows;
      if (e.round > 0) {
        ++n_checks;
        n_collapses += e.collapsed ? 1 : 0;
      }
      n_perturbed += e.perturbation_path >= 0 ? 1 : 0;
    }
    j["memory_rows"] = {
        {"n_rows", n_rows},
        {"n_collapse_checks", n_checks},
        {"n_collapses", n_collapses},
        {"collapse_rate", n_checks > 0 ? static_cast<double>(n_collapses) / static_cast<double>(n_checks) : 0.0},
        {"n_perturbed", n_perturbed}};
    return j.dump();
  };
  const bool plot = !a.no_plot;
  const bool with_p = o.perturbation && o.paths > 1;
  return [out, memory_path, dkey, variant, plot, with_p] {
    const auto rows = run_rows(memory_path, dkey, variant, run_users(out));
    const std::vector<optim::Series> series{{with_p ? "with P" : "without P", optim::round_stats(rows)}};
    write_collapse(series, out, plot);
  };
}

void configure_icl_eval(const LrgdArgs& a, eval::EvalConfig& c) {
  if (a.icl_demo == "validation") return;  // run_eval's own: the validation window and target
  if (a.icl_demo != "first-round")
    throw OptionError("--icl-demo", "first-round or validation, not '" + a.icl_demo + "'");
  if (a.generator != "template" && a.generator != "llm")
    throw OptionError("--generator", "template or llm, not '" + a.generator + "'");
  if (c.llm.prompt_form == rec::PromptForm::ItemTokens && a.generator != "template")
    throw OptionError("--generator", "an item-token model needs --generator template");
  optim::FirstRoundIclOptions o;
  o.generator = a.generator;
  o.seed = c.protocol.seed;
  ojson mc;
  mc["demonstration"] = "first-round";
  mc["generator"] = o.generator;
  mc["seed"] = o.seed;
  if (o.generator == "llm") {
    o.generator_template = a.generator_template.empty() ? std::string(prompt::Template::builtin_text("generator"))
                                                        : read_file(a.generator_template);
    mc["generator_template_sha256"] = sha256_hex(o.generator_template);
  }
  c.method_config = mc.dump();
  const auto protocol = c.protocol;
  c.ranker_factory = [o, protocol](const data::Dataset& d, llm::Backend& b, const rec::LlmRankerOptions& icl) {
    return optim::make_first_round_icl_ranker(d, b, icl, protocol, o);
  };
}

namespace {

struct MemoryArgs {
  std::string memory;
  std::string dataset, variant, user;
  bool effective = false;
  std::string out;
};

int run_memory(const std::string& what, const MemoryArgs& a) {
  if (!std::filesystem::exists(a.memory)) throw OptionError("--memory", "no memory database at " + a.memory);
  memory::Store store(a.memory);
  memory::Filter f{a.dataset, a.variant, a.user, a.effective};
  const auto rows = what == "best" ? store.best_per_user(f) : store.list(f);
  if (rows.empty() && (!a.dataset.empty() || !a.variant.empty() || !a.user.empty())) {
    // Say what the filter could have matched.
    std::set<std::string> datasets, variants;
    for (const auto& e : store.list({})) {
      datasets.insert(e.dataset);
      variants.insert(e.variant);
    }
    fmt::print(stderr, "lrgd: no row matches; {} holds datasets {{{}}} and variants {{{}}}\n", a.memory,
               fmt::join(datasets, ", "), fmt::join(variants, ", "));
  }
  if (what == "export") {
    std::string text;
    for (const auto& e : rows) text += memory::to_json(e) + "\n";
    if (a.out.empty())
      fmt::print("{}", text);
    else
      write_file_atomic(a.out, text);
    fmt::print(stderr, "lrgd: {} rows exported\n", rows.size());
    return 0;
  }
  fmt::print(
      "| dataset | variant | user | path | round | S | rank | effective | similarity | collapsed | P | demonstration "
      "|\n"
      "|:--|:--|:--|--:|--:|--:|--:|:--|--:|:--|:--|:--|\n");
  for (const auto& e : rows) {
    std::string text = e.text;
    for (auto& ch : text)
      if (ch == '\n' || ch == '|') ch = ' ';
    if (text.size() > 120) text = text.substr(0, 117) + "...";
    fmt::print(
        "| {} | {} | {} | {} | {} | {:.4f} | {} | {} | {:.3f} | {} | {} | {} |\n", e.dataset, e.variant, e.user, e.path,
        e.round, e.score, e.target_rank == 0 ? std::string("-") : std::to_string(e.target_rank),
        e.effective ? "yes" : "no", e.similarity, e.collapsed ? "yes" : "no",
        e.perturbation_path < 0 ? std::string("-") : fmt::format("{}:{}", e.perturbation_path, e.perturbation_round),
        text);
  }
  fmt::print(stderr, "lrgd: {} rows\n", rows.size());
  return 0;
}

struct AblateArgs {
  std::string out;
  std::string variants = "lrgd,k2,k1,no_p,no_r,no_pr,swap";
  bool no_collapse = false;
  bool resume = false;
  bool no_plot = false;
  bool overwrite = false;
  bool test_per_round = false;
};

struct Variant {
  std::string name;
  std::string column;
  std::vector<std::string> flags;
};

const std::vector<Variant>& all_variants() {
  static const std::vector<Variant> v{
      {"lrgd", "LRGD (3-PDO)", {"--paths", "3"}},
      {"k2", "2-PDO", {"--paths", "2"}},
      {"k1", "1-PDO", {"--paths", "1"}},
      {"no_p", "w/o P", {"--paths", "3", "--no-perturbation"}},
      {"no_r", "w/o R", {"--paths", "3", "--no-regularisation"}},
      {"no_pr", "w/o P, R", {"--paths", "3", "--no-perturbation", "--no-regularisation"}},
      {"swap", "T/D swapped", {"--paths", "3", "--swap"}},
  };
  return v;
}

// The value of `--name V` or `--name=V` among the eval options; empty when absent.
std::string option_value(const std::vector<std::string>& extras, const std::string& name) {
  for (std::size_t i = 0; i < extras.size(); ++i) {
    if (extras[i] == name && i + 1 < extras.size()) return extras[i + 1];
    if (extras[i].starts_with(name + "=")) return extras[i].substr(name.size() + 1);
  }
  return "";
}

// test_rounds > 0: the test of the first test_rounds rounds into DIR/per-round/<variant>-r<N>.
int run_variant(const Variant& v, const AblateArgs& a, const std::vector<std::string>& extras, int test_rounds = 0) {
  const auto dir = test_rounds > 0
                       ? std::filesystem::path(a.out) / "per-round" / (v.name + "-r" + std::to_string(test_rounds))
                       : std::filesystem::path(a.out) / v.name;
  std::vector<std::string> args{"lrgd", "eval"};
  args.insert(args.end(), extras.begin(), extras.end());
  args.insert(args.end(), {"--method", "lrgd"});
  args.insert(args.end(), v.flags.begin(), v.flags.end());
  // One factor at a time: K = 2 and 1 try as many demonstrations per user as LRGD's 3 paths
  // (the budget 3 x rounds is shared out over their paths).
  if (option_value(extras, "--budget").empty()) {
    const std::string rounds = option_value(extras, "--rounds");
    int r = 3;
    try {
      if (!rounds.empty()) r = std::stoi(rounds);
    } catch (const std::exception&) {
      throw OptionError("--rounds", "not a number: '" + rounds + "'");
    }
    args.insert(args.end(), {"--budget", std::to_string(3 * r)});
  }
  args.insert(args.end(), {"--out", dir.string(), "--memory", (std::filesystem::path(a.out) / "memory.sqlite").string(),
                           "--no-plot"});
  if (test_rounds > 0) args.insert(args.end(), {"--test-rounds", std::to_string(test_rounds)});
  if (a.resume && std::filesystem::exists(dir / "config.json")) args.push_back("--resume");
  if (a.overwrite) args.push_back("--overwrite");
  const std::string round_note = test_rounds > 0 ? fmt::format(", test with rounds 1..{}", test_rounds) : "";
  fmt::print(stderr, "lrgd ablate: {} ({}{})\n", v.name, v.column, round_note);
  // Each variant's eval prints its own table: say on stdout which column it is.
  fmt::print("\n## Variant {} ({}{})\n\n", v.name, v.column, round_note);
  std::fflush(stdout);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  return run(static_cast<int>(argv.size()), argv.data());
}

int run_ablate(const AblateArgs& a, std::vector<std::string> extras) {
  std::erase(extras, std::string("--"));
  for (const auto& e : extras) {
    if (e == "--out" || e == "-o" || e == "--method" || e == "--memory" || e == "--paths")
      throw OptionError("ablate", e + " is set by ablate itself");
    if (e == "--resume" || e == "--overwrite" || e == "--test-per-round" || e == "--no-collapse" || e == "--variants" ||
        e.starts_with("--variants="))
      throw OptionError("ablate",
                        e + " is an option of ablate: put it before the eval options (lrgd ablate " + e + " ...)");
  }
  if (a.resume && a.overwrite) throw OptionError("ablate", "--resume and --overwrite exclude each other");
  std::vector<Variant> chosen;
  {
    std::istringstream in(a.variants);
    std::string name;
    while (std::getline(in, name, ',')) {
      const auto& all = all_variants();
      const auto it = std::find_if(all.begin(), all.end(), [&](const Variant& v) { return v.name == name; });
      if (it == all.end())
        throw OptionError("--variants", "unknown variant '" + name + "' (lrgd, k2, k1, no_p, no_r, no_pr, swap)");
      chosen.push_back(*it);
    }
  }
  // An item-token model has no text instruction: the T/D swap does not exist for it.
  for (std::size_t i = 0; i < extras.size(); ++i) {
    std::string model;
    if ((extras[i] == "--model" || extras[i] == "-m") && i + 1 < extras.size())
      model = extras[i + 1];
    else if (extras[i].starts_with("--model="))
      model = extras[i].substr(8);
    if (!model.empty() && std::filesystem::is_regular_file(model) && llm::read_item_model_meta(model).layout != 0) {
      // Nor is there a textual R to take away: no_r would repeat lrgd, no_pr no_p.
      for (const char* skip : {"swap", "no_r", "no_pr"}) {
        const auto n = chosen.size();
        std::erase_if(chosen, [&](const Variant& v) { return v.name == skip; });
        if (chosen.size() != n)
          fmt::print(stderr, "lrgd ablate: skipping {} (an item-token prompt has no text instruction)\n", skip);
      }
    }
  }
  const bool collapse = !a.no_collapse;
  if (collapse) {
    for (const char* n : {"lrgd", "no_p"}) {
      if (std::none_of(chosen.begin(), chosen.end(), [&](const Variant& v) { return v.name == n; }))
        chosen.push_back(
            *std::find_if(all_variants().begin(), all_variants().end(), [&](const Variant& v) { return v.name == n; }));
    }
  }
  std::filesystem::create_directories(a.out);
  // The variants share one memory: starting over means starting it over too.
  if (a.overwrite)
    for (const char* f : {"memory.sqlite", "memory.sqlite-wal", "memory.sqlite-shm"})
      std::filesystem::remove(std::filesystem::path(a.out) / f);
  for (const auto& v : chosen) {
    const int rc = run_variant(v, a, extras);
    if (rc != 0) return rc;
  }
  // Table 5: rows = metrics, columns = variants (in the order given; no_p only for Fig. 9).
  const std::vector<std::pair<std::string, std::string>> metrics{
      {"ndcg@1", "nDCG@1"}, {"ndcg@10", "nDCG@10"}, {"recall@10", "Recall@10"}};
  std::string md = "# Ablation (paper Table 5)\n\n| Metric |";
  std::string sep = "|:--|";
  ojson js = ojson::object();
  std::vector<std::pair<Variant, ojson>> summaries;
  std::istringstream in(a.variants);
  std::string name;
  while (std::getline(in, name, ',')) {
    const auto it = std::find_if(chosen.begin(), chosen.end(), [&](const Variant& x) { return x.name == name; });
    if (it == chosen.end()) continue;  // skipped above
    const auto& v = *it;
    summaries.emplace_back(v, ojson::parse(read_file(std::filesystem::path(a.out) / v.name / "summary.json")));
    md += " " + v.column + " |";
    sep += "--:|";
  }
  md += "\n" + sep + "\n";
  for (const auto& [key, title] : metrics) {
    md += "| " + title + " |";
    for (const auto& [v, s] : summaries) {
      const auto& m = s["metrics"][key];
      const double mean = m["mean"].get<double>();
      const double sd = m["std"].get<double>();
      md += s["n_trials"].get<int>() > 1 ? fmt::format(" {:.4f} ± {:.4f} |", mean, sd) : fmt::format(" {:.4f} |", mean);
      js[v.name]["column"] = v.column;
      js[v.name][key] = {{"mean", mean}, {"std", sd}};
    }
    md += "\n";
  }
  if (!summaries.empty()) {
    const auto& s0 = summaries.front().second;
    md += fmt::format("\n{} x {}, dataset {}, model {}. Columns: run directories {}/<variant>.\n",
                      count_of(s0["n_users"].get<std::size_t>(), "user"),
                      count_of(s0["n_trials"].get<std::size_t>(), "trial"), s0["dataset"].get<std::string>(),
                      s0["model_id"].get<std::string>(), a.out);
  }
  // Each variant against LRGD, paired by user (eval::report_runs: LRGD first).
  if (summaries.size() > 1 && summaries.front().first.name == "lrgd") {
    std::vector<std::filesystem::path> dirs;
    for (const auto& [v, s] : summaries) dirs.push_back(std::filesystem::path(a.out) / v.name);
    eval::ReportOptions ro;
    ro.ours = "1";  // Imp.: LRGD against its best variant
    md += "\nEach variant against LRGD (paired tests):\n\n" + eval::report_runs(dirs, ro).markdown;
  }
  write_file_atomic(std::filesystem::path(a.out) / "table5.md", md);
  write_file_atomic(std::filesystem::path(a.out) / "table5.json", js.dump(2) + "\n");
  fmt::print("{}", md);
  if (collapse) {
    std::vector<optim::Series> series;
    for (const auto& [n, label] :
         std::vector<std::pair<std::string, std::string>>{{"lrgd", "with P"}, {"no_p", "without P"}}) {
      const auto dir = std::filesystem::path(a.out) / n;
      const auto s = ojson::parse(read_file(dir / "summary.json"));
      const auto cfg = ojson::parse(read_file(dir / "config.json"));
      const std::string dkey =
          cfg["dataset"]["name"].get<std::string>() + ":" + cfg["dataset"]["hash"].get<std::string>().substr(0, 12);
      const auto rows = run_rows(s["method_summary"]["memory"].get<std::string>(), dkey,
                                 s["method_summary"]["variant"].get<std::string>(), run_users(dir));
      auto stats = optim::round_stats(rows);
      if (a.test_per_round) {
        // Fig. 9's test curve: the test with the best demonstration of rounds 1..r (rows reused).
        const auto& v =
            *std::find_if(all_variants().begin(), all_variants().end(), [&](const Variant& x) { return x.name == n; });
        for (auto& rs : stats) {
          const int r = rs.round + 1;
          if (r == static_cast<int>(stats.size())) {
            rs.test_ndcg10 = s["metrics"]["ndcg@10"]["mean"].get<double>();  // the variant's own run
            continue;
          }
          const int rc = run_variant(v, a, extras, r);
          if (rc != 0) return rc;
          const auto rd = std::filesystem::path(a.out) / "per-round" / (n + "-r" + std::to_string(r));
          rs.test_ndcg10 = ojson::parse(read_file(rd / "summary.json"))["metrics"]["ndcg@10"]["mean"].get<double>();
        }
      }
      series.push_back({label, std::move(stats)});
    }
    write_collapse(series, a.out, !a.no_plot);
    fmt::print("\n{}", read_file(std::filesystem::path(a.out) / "collapse.md"));
  }
  return 0;
}

}  // namespace

void add_lrgd_commands(CLI::App& app, Action& action) {
  auto* mem = app.add_subcommand("memory", "Inspect an LRGD demonstration memory (list, best, export)");
  mem->require_subcommand(1);
  for (const char* what : {"list", "best", "export"}) {
    auto a = std::make_shared<MemoryArgs>();
    const std::string w = what;
    auto* sc = mem->add_subcommand(what, w == "list"   ? "Every round's row"
                                         : w == "best" ? "The best demonstration per user (highest S)"
                                                       : "Rows as JSON lines");
    sc->add_option("--memory", a->memory, "Memory database (RUN_DIR/memory.sqlite)")->required();
    sc->add_option("--dataset", a->dataset, "Only this dataset: its name (every version) or a key name:hash");
    sc->add_option("--variant", a->variant, "Only this variant");
    sc->add_option("--user", a->user, "Only this user id");
    sc->add_flag("--effective", a->effective, "Only demonstrations that recovered the validation target");
    if (w == "export") sc->add_option("--out,-o", a->out, "Output file (default stdout)");
    sc->callback([&action, a, w] { action = [a, w] { return run_memory(w, *a); }; });
  }

  auto ab = std::make_shared<AblateArgs>();
  auto* abl = app.add_subcommand(
      "ablate",
      "LRGD ablations (paper Table 5) and collapse analysis (Fig. 9): lrgd ablate --out DIR [--] EVAL OPTIONS; every "
      "option ablate does not know itself goes to each variant's lrgd eval");
  abl->add_option("--out,-o", ab->out, "Ablation directory (one run directory per variant)")->required();
  abl->add_option("--variants", ab->variants, "Table 5 columns: lrgd,k2,k1,no_p,no_r,no_pr,swap")
      ->capture_default_str();
  abl->add_flag("--no-collapse", ab->no_collapse, "Skip the collapse analysis (and its no_p run)");
  abl->add_flag("--resume", ab->resume, "Resume variants already started");
  abl->add_flag("--overwrite", ab->overwrite, "Start every variant (and the shared memory) over");
  abl->add_flag("--no-plot", ab->no_plot, "No collapse.png");
  abl->add_flag("--test-per-round", ab->test_per_round,
                "Fig. 9's test curve: test lrgd and no_p with the best demonstration of rounds 1..r for every r "
                "(one test run per round and variant, optimisation rows reused)");
  // From the first option ablate does not know (or "--"), the rest are the lrgd eval options
  // shared by every variant, in order.
  abl->prefix_command();
  abl->callback([&action, ab, abl] {
    std::vector<std::string> extras = abl->remaining();
    action = [ab, extras] { return run_ablate(*ab, extras); };
  });
}

}  // namespace lrgd::cli
