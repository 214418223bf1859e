// lrgd eval | report
#include <fmt/core.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "cli.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/file.h"
#include "lrgd/llama_backend.h"
#include "lrgd/openai_backend.h"
#include "lrgd/prompt.h"
#include "lrgd/response_cache.h"

namespace lrgd::cli {

namespace {

struct EvalArgs {
  std::shared_ptr<LrgdArgs> lrgd;  // --method lrgd and icl's demonstration (cmd_lrgd.cpp)
  // Data and protocol.
  std::string data;
  DataLoadArgs load;  // --format, --kcore, --repeats
  std::string method;
  ProtocolArgs protocol;
  std::uint32_t n_trials = 10;
  int list_length = 10;
  // Model.
  std::string model;
  std::vector<std::string> endpoints;
  std::string api_model;
  std::string model_id;
  std::string cache;
  bool no_cache = false;
  int n_threads = 0;
  int n_parallel = 8;
  int n_ctx = 0;
  bool kv_unified = false;
  bool flash_attn = false;
  bool no_prefix_reuse = false;
  int max_in_flight = 4;
  // Ranking.
  std::string mode;  // empty: score for an item-token model, generate otherwise
  std::string template_name;
  bool constrain = false;
  int max_tokens = 0;
  float temperature = 0;
  float top_p = 1;
  int top_k = 0;
  bool no_regularisation = false;
  std::string regularisation_template;
  std::string score_on = "title";
  std::string score_norm = "sum";
  int min_history = 1;
  // Baselines.
  std::size_t markov_window = 1;
  double markov_decay = 0.5;
  // External rankings.
  std::string scores;
  std::string label;
  // Output.
  std::string metrics;
  double confidence = 0.95;
  std::string out;
  bool resume = false;
  bool overwrite = false;
  std::size_t batch = 16;
  bool no_progress = false;
  double fsync_interval = 1.0;
};

struct ReportArgs {
  std::vector<std::string> runs;
  bool json = false;
  std::string metrics;
  double alpha = 0.05;
  std::string test = "t";
  std::string unit = "user";
  bool holm = false;
  std::string ours;
};

using Clock = std::chrono::steady_clock;

// R from the regularisation template ({n}: the list length).
std::string regularisation_text(const std::string& file, int list_length) {
  return file.empty() ? prompt::default_regularisation(list_length)
                      : prompt::regularisation_from(read_file(file), list_length);
}

std::unique_ptr<llm::Backend> make_backend(const EvalArgs& a, eval::EvalConfig& c) {
  std::unique_ptr<llm::Backend> backend;
  std::string cache = a.cache;
  if (!a.model.empty()) {
    llm::LlamaBackendOptions o;
    o.model = a.model;
    o.n_threads = a.n_threads;
    o.n_parallel = a.n_parallel;
    o.n_ctx_seq = a.n_ctx;
    o.kv_unified = a.kv_unified;
    o.flash_attn = a.flash_attn;
    o.prefix_reuse = !a.no_prefix_reuse;
    backend = llm::make_llama_backend(o);
    c.model_path = a.model;
    c.runtime["threads"] = std::to_string(a.n_threads);
    c.runtime["parallel"] = std::to_string(a.n_parallel);
    c.runtime["ctx"] = std::to_string(a.n_ctx);
    c.runtime["kv_unified"] = a.kv_unified ? "true" : "false";
    c.runtime["flash_attn"] = a.flash_attn ? "true" : "false";
    c.runtime["prefix_reuse"] = a.no_prefix_reuse ? "false" : "true";
  } else {
    llm::OpenAiConfig o;
    o.endpoints = a.endpoints;
    o.model = a.api_model;
    o.max_in_flight = a.max_in_flight;
    o.seed = a.protocol.seed;
    o.model_id = a.model_id;
    // --constrain promises distinct candidate numbers: over a server that takes one grammar
    // per answer line (docs/backends.md).
    o.distinct_candidates = a.constrain;
    backend = llm::make_openai_backend(o);
    for (const auto& e : a.endpoints) c.endpoint += (c.endpoint.empty() ? "" : ",") + e;
    c.runtime["max_in_flight"] = std::to_string(a.max_in_flight);
    // Remote calls cost money and time: cache them beside the run unless told otherwise.
    if (cache.empty()) cache = (std::filesystem::path(a.out) / "responses.sqlite").string();
  }
  if (!cache.empty() && !a.no_cache) {
    backend = llm::make_cached_backend(std::move(backend), cache);
    c.runtime["cache"] = cache;
  }
  return backend;
}

int run_eval_command(const EvalArgs& a) {
  const auto t0 = Clock::now();
  eval::EvalConfig c;
  c.method = rec::parse_method(a.method);
  const bool llm_method = rec::needs_llm(c.method);
  if (llm_method && a.model.empty() && a.endpoints.empty())
    throw OptionError("--model", "method " + a.method + " needs --model FILE.gguf or --endpoint URL");
  if (!a.model.empty() && !a.endpoints.empty()) throw OptionError("--endpoint", "give --model or --endpoint, not both");
  if (c.method == rec::Method::External && a.scores.empty())
    throw OptionError("--scores", "--method external needs --scores FILE (docs/formats.md, \"Score files\")");
  if (c.method != rec::Method::External && !a.scores.empty())
    throw OptionError("--scores", "only with --method external");
  if (c.method != rec::Method::External && !a.label.empty())
    throw OptionError("--label", "only with --method external (other methods have fixed labels)");
  const data::LoadOptions lo = load_options(a.load);
  c.n_trials = a.n_trials;
  c.list_length = a.list_length;
  c.llm.mode = rec::parse_rank_mode(a.mode.empty() ? "generate" : a.mode);
  c.llm.template_name = a.template_name;
  c.llm.constrain = a.constrain;
  c.llm.generation.max_tokens = a.max_tokens;
  c.llm.generation.temperature = a.temperature;
  c.llm.generation.top_p = a.top_p;
  c.llm.generation.top_k = a.top_k;
  c.llm.generation.seed = a.protocol.seed;
  c.llm.score_target = rec::parse_score_target(a.score_on);
  c.llm.score_norm = rec::parse_score_norm(a.score_norm);
  c.llm.min_history = a.min_history;
  c.baseline.markov_window = a.markov_window;
  c.baseline.markov_decay = a.markov_decay;
  c.scores_path = a.scores;
  c.label = a.label;
  if (!a.metrics.empty()) c.metrics = metrics::parse_metrics(a.metrics);
  if (!(a.confidence > 0 && a.confidence < 1)) throw OptionError("--confidence", "must be in (0, 1)");
  c.confidence = a.confidence;
  c.data_path = a.data;
  c.runtime["batch"] = std::to_string(a.batch);

  const auto ds = data::load_dataset(a.data, lo);
  c.protocol = protocol_options(a.protocol, ds, a.n_threads);
  if (llm_method && !a.model.empty()) configure_item_model(a.model, ds, a.mode, c.llm);
  // R goes to every text method alike (an item-token prompt has no text to put it in).
  if (llm_method && c.llm.prompt_form != rec::PromptForm::ItemTokens && !a.no_regularisation)
    c.llm.regularisation = regularisation_text(a.regularisation_template, c.list_length);
  std::unique_ptr<llm::Backend> backend;
  if (llm_method) backend = make_backend(a, c);
  std::function<void()> after;  // --method lrgd: the optimiser's hook (cmd_lrgd.cpp)
  if (c.method == rec::Method::Lrgd) after = configure_lrgd_eval(*a.lrgd, c, ds, *backend, a.out, !a.no_progress);
  if (c.method == rec::Method::Icl) configure_icl_eval(*a.lrgd, c);

  eval::RunOptions ro;
  ro.out = a.out;
  ro.resume = a.resume;
  ro.overwrite = a.overwrite;
  ro.batch_size = a.batch;
  ro.progress = !a.no_progress;
  ro.fsync_interval_s = a.fsync_interval;
  ro.setup_s = std::chrono::duration<double>(Clock::now() - t0).count();
  eval::RunResult r;
  with_protocol_files(a.protocol, [&] {
    try {
      r = eval::run_eval(c, ds, backend.get(), ro);
    } catch (const InputError& e) {
      // A score file that does not fit the run is a usage error (exit 2), like a bad option.
      if (!a.scores.empty() && e.file() == c.scores_path) throw OptionError("--scores", e.what());
      throw;
    }
  });
  if (after) after();

  fmt::print(stderr, "lrgd: {} records ({} computed, {} resumed) in {:.2f} s (model {:.2f} s, outside {:.2f} s)\n",
             r.n_records, r.n_computed, r.n_resumed, r.wall_s, r.time_in_model_s, r.time_outside_model_s);
  fmt::print("{}", read_file(std::filesystem::path(a.out) / "table.md"));
  return 0;
}

int run_report_command(const ReportArgs& a) {
  eval::ReportOptions o;
  if (!a.metrics.empty()) o.metrics = metrics::parse_metrics(a.metrics);
  if (!(a.alpha > 0 && a.alpha < 1)) throw OptionError("--alpha", "must be in (0, 1)");
  o.alpha = a.alpha;
  if (a.test == "t")
    o.test = eval::SignificanceTest::T;
  else if (a.test == "wilcoxon")
    o.test = eval::SignificanceTest::Wilcoxon;
  else
    throw OptionError("--test", "t or wilcoxon");
  o.unit = eval::parse_significance_unit(a.unit);
  o.holm = a.holm;
  o.ours = a.ours;
  std::vector<std::filesystem::path> dirs(a.runs.begin(), a.runs.end());
  const auto rep = eval::report_runs(dirs, o);
  fmt::print("{}", a.json ? rep.json : rep.markdown);
  return 0;
}

}  // namespace

void add_eval_commands(CLI::App& app, Action& action) {
  auto a = std::make_shared<EvalArgs>();
  auto* ev = app.add_subcommand(
      "eval", "Evaluate a method (zsl, icl, lrgd, pop, markov, random, external) and write a run directory");
  ev->add_option("--data,-d", a->data, "Dataset folder or file")->required();
  add_data_load_options(ev, a->load);
  ev->add_option("--method", a->method, "zsl | icl | lrgd | pop | markov | random | external")->required();
  ev->add_option("--out,-o", a->out, "Run directory")->required();
  ev->add_flag("--resume", a->resume, "Continue the run in --out (same configuration required)");
  ev->add_flag("--overwrite", a->overwrite, "Replace a run already in --out");
  ev->add_option("--trials", a->n_trials, "Trials (candidate draws)")->capture_default_str();
  add_protocol_options(ev, a->protocol);
  ev->add_option("--list-length", a->list_length, "Length of the ranked list")->capture_default_str();
  ev->add_option("--model,-m", a->model, "GGUF model or pulled model name (embedded libllama)")->transform(model_arg());
  ev->add_option("--endpoint", a->endpoints, "OpenAI-compatible server URL (repeat for several)");
  ev->add_option("--api-model", a->api_model, "Model name sent to the server (default: its first)");
  ev->add_option("--cache", a->cache, "Response cache file (SQLite; default for --endpoint: RUN_DIR/responses.sqlite)");
  ev->add_flag("--no-cache", a->no_cache, "No response cache");
  ev->add_option("--threads,-t", a->n_threads, "CPU threads (0: all)")->capture_default_str();
  ev->add_option("--parallel", a->n_parallel, "Sequences decoded together")->capture_default_str();
  ev->add_option("--ctx", a->n_ctx, "Context per sequence (0: min(model, 4096))")->capture_default_str();
  ev->add_flag("--kv-unified", a->kv_unified, "One KV buffer for all sequences");
  ev->add_flag("--flash-attn", a->flash_attn,
               "Fused attention (faster on long prompts; logits differ from the plain path in the last digits)");
  ev->add_flag("--no-prefix-reuse", a->no_prefix_reuse, "Decode every prompt from scratch");
  ev->add_option("--model-id", a->model_id,
                 "--endpoint: the model's name in config.json and the response cache (default: openai:<served "
                 "model's file name>)");
  ev->add_option("--max-in-flight", a->max_in_flight, "Concurrent requests (--endpoint)")->capture_default_str();
  ev->add_option("--mode", a->mode,
                 "generate (the model writes the list) | score (log-likelihood per candidate); default: score for an "
                 "item-token model, else generate")
      ->capture_default_str();
  ev->add_option("--template", a->template_name, "Prompt template: zsl | icl | icl_swap | FILE (default: by method)");
  ev->add_flag("--constrain", a->constrain, "Generate: restrict the answer to distinct candidate numbers");
  ev->add_option("--max-tokens", a->max_tokens, "Generate: answer budget (0: auto)")->capture_default_str();
  ev->add_option("--temperature", a->temperature, "Generate: 0 = greedy")->capture_default_str();
  ev->add_option("--top-p", a->top_p, "Generate: nucleus sampling")->capture_default_str();
  ev->add_option("--top-k", a->top_k, "Generate: top-k sampling (0: off)")->capture_default_str();
  ev->add_flag("--no-regularisation", a->no_regularisation,
               "No textual regularisation R (default: R in the instruction of zsl, icl and lrgd alike)");
  ev->add_option("--regularisation-template", a->regularisation_template,
                 "R text file ({n} = list length; default prompts/regularisation.txt)");
  ev->add_option("--score-on", a->score_on, "Score: title | label")->capture_default_str();
  ev->add_option("--score-norm", a->score_norm, "Score: sum | mean (per token)")->capture_default_str();
  ev->add_option("--min-history", a->min_history, "Context overflow: never drop history below this")
      ->capture_default_str();
  ev->add_option("--markov-window", a->markov_window, "markov: recent items that vote")->capture_default_str();
  ev->add_option("--markov-decay", a->markov_decay, "markov: weight decay per step back")->capture_default_str();
  ev->add_option("--scores", a->scores,
                 "external: another tool's rankings or scores for the run's candidates (JSON Lines or TSV; "
                 "docs/formats.md)");
  ev->add_option("--label", a->label, "external: the run's row label in tables and reports (default: External)");
  ev->add_option("--metrics", a->metrics, "Comma-separated metric keys (default: the report's seven)");
  ev->add_option("--confidence", a->confidence, "Confidence of the intervals")->capture_default_str();
  ev->add_option("--batch", a->batch, "Queries per backend call")->capture_default_str();
  ev->add_option("--fsync-interval", a->fsync_interval, "Seconds between fsyncs of results.jsonl")
      ->capture_default_str();
  ev->add_flag("--no-progress", a->no_progress, "No progress lines on stderr");
  a->lrgd = add_lrgd_eval_options(ev);
  ev->callback([&action, a] { action = [a] { return run_eval_command(*a); }; });

  auto r = std::make_shared<ReportArgs>();
  auto* rp = app.add_subcommand("report", "Compare run directories (Markdown table, significance vs the first run)");
  rp->add_option("runs", r->runs, "Run directories (the first is the reference)")->required();
  rp->add_flag("--json", r->json, "Print JSON instead of Markdown");
  rp->add_option("--metrics", r->metrics, "Comma-separated metric keys");
  rp->add_option("--alpha", r->alpha, "Significance level of the * marker")->capture_default_str();
  rp->add_option("--test", r->test, "t | wilcoxon: the test behind the * marker")->capture_default_str();
  rp->add_option("--unit", r->unit,
                 "user: tests over users, each user's trials averaged first | user-trial: over (user, trial) "
                 "records (anti-conservative: a user's trials are not independent)")
      ->capture_default_str();
  rp->add_flag("--holm", r->holm, "Holm-Bonferroni correction over all of the table's comparisons");
  rp->add_option("--ours", r->ours,
                 "Run of the Imp. row (improvement over the best other run): label, folder name or 1-based "
                 "position (default: the last run; none: no Imp. row)");
  rp->callback([&action, r] { action = [r] { return run_report_command(*r); }; });
}

}  // namespace lrgd::cli
