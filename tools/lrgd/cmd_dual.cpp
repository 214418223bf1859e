// lrgd dual: the dual-model analyser (docs/dual.md).
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli.h"
#include "lrgd/data.h"
#include "lrgd/dual.h"
#include "lrgd/error.h"
#include "lrgd/file.h"
#include "lrgd/llama_capture.h"
#include "lrgd/llama_model.h"
#include "lrgd/memory.h"
#include "lrgd/optim.h"

namespace lrgd::cli {

namespace {

struct DualCliOptions {
  std::string model;
  std::string prompt_file;
  std::string prompt_text;
  std::string spans;
  std::string data;
  std::string user;
  std::string bad_demo_user = "random";
  std::string demos_from;  // an LRGD memory: good = the user's highest-S row, bad = lowest
  std::string template_name = "icl";
  std::size_t max_history = 20;
  std::size_t n_candidates = 50;
  int kcore = -1;
  std::string target;
  std::vector<int> features = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  int round_features = 1024;
  bool orthogonal = false;
  std::uint64_t seed = 42;
  int n_generate = 10;
  std::vector<int> layers;
  int n_threads = 0;
  double alpha = 0.5;
  double lambda = 0.1;
  std::string out = "dual.json";
  bool no_plots = false;
  int ffn_layer = -2;
  std::string chain = "on";
  int chain_features = -1;
};

// The rows of `user` in an LRGD memory with a demonstration: the one LRGD uses at test time
// (optim::best_entry: highest S, ties by earlier round, lower path) and the lowest S (ties:
// later round, higher path).
std::pair<analysis::UserPromptOptions::Demo, analysis::UserPromptOptions::Demo> memory_extremes(
    const std::string& path, const std::string& user) {
  if (!std::filesystem::is_regular_file(path)) throw IoError("--demos-from: no memory file " + path);
  memory::Store store(path);
  memory::Filter f;
  f.user = user;
  std::vector<memory::Entry> rows;
  std::vector<analysis::UserPromptOptions::Demo> demos;
  for (auto& e : store.list(f)) {
    const auto j = nlohmann::json::parse(e.demo);
    analysis::UserPromptOptions::Demo d;
    d.target = j.at("target").get<std::string>();
    if (d.target.empty()) continue;  // the generator gave up on this row: no demonstration
    d.history = j.at("history").get<std::vector<std::string>>();
    d.explanation = j.at("explanation").get<std::string>();
    rows.push_back(std::move(e));
    demos.push_back(std::move(d));
  }
  if (rows.size() < 2)
    throw OptionError("--demos-from", path + " has " + std::to_string(rows.size()) + " demonstration(s) for user " +
                                          user + "; two are needed (run lrgd eval --method lrgd first)");
  const auto best = static_cast<std::size_t>(optim::best_entry(rows) - rows.data());
  const auto worst = static_cast<std::size_t>(std::min_element(rows.begin(), rows.end(),
                                                               [](const memory::Entry& a, const memory::Entry& b) {
                                                                 if (a.score != b.score) return a.score < b.score;
                                                                 if (a.round != b.round) return a.round > b.round;
                                                                 return a.path > b.path;
                                                               }) -
                                              rows.begin());
  const auto label = [&](std::size_t i, const char* what) {
    auto d = demos[i];
    d.label = fmt::format("LRGD {}, path {} round {}, S = {:.3f}", what, rows[i].path, rows[i].round, rows[i].score);
    return d;
  };
  if (rows[best].score == rows[worst].score)
    fmt::print("note: every demonstration of user {} has S = {:.3f}; good and bad differ only by round\n", user,
               rows[best].score);
  return {label(best, "best"), label(worst, "worst")};
}

int run_dual_cmd(const DualCliOptions& o) {
  using namespace analysis;
  const int n_modes = (!o.prompt_file.empty() ? 1 : 0) + (!o.prompt_text.empty() ? 1 : 0) + (!o.data.empty() ? 1 : 0);
  if (n_modes != 1) throw OptionError("--prompt-file", "give exactly one of --prompt-file, --prompt-text, --data");

  RunOptions ro;
  ro.capture.n_generate = o.n_generate;
  ro.capture.n_threads = o.n_threads;
  ro.dual.features = o.features;
  ro.dual.round_features = o.round_features;
  ro.dual.orthogonal = o.orthogonal;
  ro.dual.seed = o.seed;
  ro.dual.layers = o.layers;
  ro.dual.n_threads = o.n_threads;
  if (o.ffn_layer < -2) throw OptionError("--ffn-layer", "a layer index, -1 (none) or -2 (the middle layer)");
  ro.dual.ffn_layer = o.ffn_layer;
  if (o.chain != "on" && o.chain != "off") throw OptionError("--chain", "on or off, not '" + o.chain + "'");
  ro.dual.chain = o.chain == "on";
  if (o.chain_features < -1)
    throw OptionError("--chain-features", "M >= 0 (0: exact softmax) or -1 (--round-features)");
  ro.dual.chain_features = o.chain_features;
  ro.alpha = o.alpha;
  ro.lambda = o.lambda;
  if (!o.data.empty() && o.user.empty()) throw OptionError("--user", "--data needs --user");
  // Opened once: the tokenisers and every capture (main, knob check, chained run, the bad
  // demonstration's) share it.
  const auto handle = llm::Model::open(o.model);
  const llm::Model& model = *handle;

  std::vector<std::pair<std::string, TokenizedPrompt>> prompts;  // label, prompt
  std::vector<std::string> sources;  // with --data: where each prompt's demonstration came from
  std::string target = o.target;
  if (!o.data.empty()) {
    UserPromptOptions uo;
    uo.seed = o.seed;
    uo.max_history = o.max_history;
    uo.n_candidates = o.n_candidates;
    uo.template_name = o.template_name;
    uo.kcore = o.kcore;
    // An item-token model (`lrgd model train`) reads the query as item tokens, not as text.
    const bool items = llm::read_item_model_meta(model.path()).layout != 0;
    data::LoadOptions lo;
    lo.kcore = o.kcore;
    const data::Dataset ds = data::load_dataset(o.data, lo);
    // The user by either id; the memory keys rows by the internal one.
    const std::int32_t u = data::find_user(ds, o.user);
    const std::string user = u < 0 ? o.user : ds.user_ids[static_cast<std::size_t>(u)];
    // With an LRGD memory: the demonstration LRGD scored highest for this user against the
    // one it scored lowest (the same user's own windows), instead of another user's.
    std::optional<UserPromptOptions::Demo> worst;
    if (!o.demos_from.empty()) {
      auto [best, low] = memory_extremes(o.demos_from, user);
      uo.demo = std::move(best);
      worst = std::move(low);
    }
    const UserPrompt good = build_user_prompt(ds, user, uo);
    if (items) {
      if (!o.target.empty()) throw OptionError("--target", "an item-token model's target is the test item's token");
      ro.capture.target_tokens = {good.item_target_token};
    } else if (target.empty()) {
      target = good.target_title;
    }
    fmt::print("user {}: target '{}' (candidate {}), demonstration from user {}\n", good.user_id, good.target_title,
               good.target_number, good.demo_user_id);
    const bool compare = worst.has_value() || o.bad_demo_user != "none";
    prompts.emplace_back(compare ? "good" : "main", items ? good.item_prompt : tokenize_chat(model, good.chat));
    sources.push_back("demonstration from user " + good.demo_user_id);
    if (worst) {
      uo.demo = std::move(worst);
      const UserPrompt bad = build_user_prompt(ds, user, uo);
      fmt::print("bad demonstration: {}\n", bad.demo_user_id);
      prompts.emplace_back("bad", items ? bad.item_prompt : tokenize_chat(model, bad.chat));
      sources.push_back("demonstration from user " + bad.demo_user_id);
    } else if (o.bad_demo_user != "none") {
      uo.demo_user = o.bad_demo_user;
      const UserPrompt bad = build_user_prompt(ds, user, uo);
      fmt::print("bad demonstration from user {}\n", bad.demo_user_id);
      prompts.emplace_back("bad", items ? bad.item_prompt : tokenize_chat(model, bad.chat));
      sources.push_back("demonstration from user " + bad.demo_user_id);
    }
  } else if (!o.prompt_text.empty()) {
    prompts.emplace_back("main", tokenize_marked_text(model, o.prompt_text));
  } else if (!o.spans.empty()) {
    TokenizedPrompt p;
    p.text = read_file(o.prompt_file);
    p.tokens = model.tokenize(p.text);
    p.spans = parse_spans(o.spans);
    for (const auto& s : p.spans)
      if (s.end > static_cast<int>(p.tokens.size()))
        throw OptionError(
            "--spans", fmt::format("span {} ends at {} but the prompt has {} tokens", s.label, s.end, p.tokens.size()));
    prompts.emplace_back("main", std::move(p));
  } else {
    prompts.emplace_back("main", tokenize_marked_text(model, read_file(o.prompt_file)));
  }
  if (!target.empty()) {
    ro.capture.target_tokens = model.tokenize(target, /*plain=*/true);
    if (ro.capture.target_tokens.empty()) throw OptionError("--target", "the target text has no tokens");
  } else if (ro.capture.target_tokens.empty()) {
    fmt::print(stderr,
               "lrgd: note: no --target: the distances to the target item (dist_* columns, the distance plot) are "
               "not computed; give the item's text with --target TEXT\n");
  }

  std::vector<DualReport> reports;
  for (const auto& [label, prompt] : prompts) {
    fmt::print(stderr, "[{}] analysing {} tokens...\n", label, prompt.tokens.size());
    reports.push_back(run_dual(model, prompt, ro, label));
    if (reports.size() <= sources.size()) reports.back().demonstration = sources[reports.size() - 1];
    fmt::print("{}\n", summary_table(reports.back()));
  }
  write_json(reports, o.out);
  fmt::print("wrote {}\n", o.out);
  if (!o.no_plots) {
    std::string warning;
    const auto files = write_plots(reports, o.out, warning);
    if (!warning.empty()) fmt::print(stderr, "lrgd: warning: {}\n", warning);
    for (const auto& f : files) fmt::print("wrote {}\n", f.string());
  }
  return 0;
}

}  // namespace

void add_dual_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<DualCliOptions>();
  auto* cmd = app.add_subcommand("dual", "Attention as one gradient step of a dual linear model (docs/dual.md)");
  cmd->add_option("--model,-m", o->model, "GGUF model file or pulled model name")->required()->transform(model_arg());
  cmd->add_option("--prompt-file", o->prompt_file,
                  "Raw prompt text; with --spans as token ranges, else with [[T]]..[[/T]] markers");
  cmd->add_option("--spans", o->spans, "Token spans, e.g. T:0-120,D:120-300,Q:300-600 (D and P form dW)");
  cmd->add_option("--prompt-text", o->prompt_text, "Raw prompt with span markers [[T]]..[[/T]] [[D]]..[[/D]]");
  cmd->add_option("--data", o->data, "Dataset folder (builds the ICL prompt of --user as the recommender does)");
  cmd->add_option("--user", o->user, "User id in --data");
  cmd->add_option("--bad-demo-user", o->bad_demo_user,
                  "Second run with the demonstration of this user ('random': seeded draw; 'none': skip)")
      ->capture_default_str();
  cmd->add_option("--demos-from", o->demos_from,
                  "LRGD memory (memory.sqlite of an lrgd eval run): good = the user's highest-S demonstration, "
                  "bad = its lowest (replaces --bad-demo-user)");
  cmd->add_option("--template", o->template_name, "Prompt template (built-in name or file)")->capture_default_str();
  cmd->add_option("--max-history", o->max_history, "History items in the prompt")->capture_default_str();
  cmd->add_option("--candidates", o->n_candidates, "Candidate set size")->capture_default_str();
  cmd->add_option("--kcore", o->kcore, "k-core filter of the loader (-1: its default)")->capture_default_str();
  cmd->add_option("--target", o->target, "Target item text (its first token's values; --data: the test target)");
  cmd->add_option("--features", o->features, "Random feature counts M to sweep")->delimiter(',')->capture_default_str();
  cmd->add_option("--round-features", o->round_features, "M for per-token rounds and the knob check")
      ->capture_default_str();
  cmd->add_flag("--orthogonal", o->orthogonal, "Orthogonal random features (blockwise Gram-Schmidt, chi norms)");
  cmd->add_option("--seed", o->seed, "Seed (features, candidates, bad demonstration)")->capture_default_str();
  cmd->add_option("--generate,-n", o->n_generate, "Greedy tokens (rounds) to follow")->capture_default_str();
  cmd->add_option("--layers", o->layers, "Layers to analyse (default: all)")->delimiter(',');
  cmd->add_option("--threads,-t", o->n_threads, "CPU threads (0: all)")->capture_default_str();
  cmd->add_option("--alpha", o->alpha, "Knob check: demonstration value scale (step size); 1 with lambda 0: skip")
      ->capture_default_str();
  cmd->add_option("--lambda", o->lambda, "Knob check: instruction values scaled by 1-lambda (weight decay)")
      ->capture_default_str();
  cmd->add_option("--ffn-layer", o->ffn_layer,
                  "FFN dual (Eq. 12-14) of this layer; -2: the middle layer, -1: none (it must be among --layers)")
      ->capture_default_str();
  cmd->add_option("--chain", o->chain,
                  "Chained multi-layer dual (App. C): a teacher-forced second run with every layer's attention "
                  "replaced by its dual (on|off)")
      ->capture_default_str();
  cmd->add_option("--chain-features", o->chain_features,
                  "M of the chained run; -1: --round-features, 0: exact softmax (reproduces the real run)")
      ->capture_default_str();
  cmd->add_option("--out,-o", o->out, "Output JSON (plots and gnuplot script beside it)")->capture_default_str();
  cmd->add_flag("--no-plots", o->no_plots, "Skip the gnuplot plots");
  cmd->callback([&action, o] { action = [o] { return run_dual_cmd(*o); }; });
}

}  // namespace lrgd::cli
