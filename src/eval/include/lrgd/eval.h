// End-to-end evaluation (`lrgd eval`, `lrgd report`): runs a method over the protocol's
// users and trials and writes a run directory (config.json, results.jsonl, summary.json,
// table.md); resumable after a crash at any moment; compares runs with paired
// significance tests. File formats and resume semantics: docs/eval.md. `evaluate` ranks the
// same queries with the same scoring in memory (`lrgd model eval-items`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lrgd/baselines.h"
#include "lrgd/dataset.h"
#include "lrgd/llm.h"
#include "lrgd/metrics.h"
#include "lrgd/protocol.h"
#include "lrgd/rec.h"

namespace lrgd::eval {

// Everything that determines the results (hashed into config.json's config_hash), plus
// descriptive fields that do not (paths, runtime knobs).
struct EvalConfig {
  rec::Method method = rec::Method::Zsl;
  // Protocol: seed, n_users, max_history, n_candidates, negatives, candidate_file. `trial`
  // is ignored: trial t of the run uses trial = t (same users, new candidate draws).
  protocol::ProtocolOptions protocol;
  std::uint32_t n_trials = 10;
  int list_length = 10;                 // the ranked list's length (the LLM's and the baselines')
  rec::LlmRankerOptions llm;            // zsl/icl only; method and list_length are taken from above
  baselines::BaselineOptions baseline;  // random/pop/markov only; seed = protocol.seed
  // external only: the score file (lrgd/external.h) and the row label of tables and reports
  // ("" = "External"). The file's sha256 is hashed into config_hash; its path and the label
  // are not.
  std::string scores_path;
  std::string label;
  std::vector<metrics::MetricSpec> metrics = metrics::default_metrics();
  double confidence = 0.95;
  // Descriptive (not hashed): where the data and the model came from.
  std::string data_path;
  std::string model_path;
  std::string endpoint;
  // Runtime knobs recorded under "runtime" in config.json (not hashed): threads, batch, ...
  std::map<std::string, std::string> runtime;
  // Extension point for methods implemented outside lrgd_eval (lrgd: lrgd_optim). When set,
  // it makes the ranker instead of make_llm_ranker; it gets the effective LLM options.
  std::function<std::unique_ptr<rec::Ranker>(const data::Dataset&, llm::Backend&, const rec::LlmRankerOptions&)>
      ranker_factory;
  std::string method_config;  // compact JSON object, hashed into config.json as "method_config"; empty: none
  // Called after the loop; a JSON object added to summary.json as "method_summary".
  std::function<std::string()> summary_extra;
};

struct RunOptions {
  std::filesystem::path out;      // the run directory (created)
  bool resume = false;            // continue the run in `out` (same config hash required)
  bool overwrite = false;         // discard a run already in `out`
  std::size_t batch_size = 16;    // queries per backend call
  bool progress = true;           // progress lines on stderr
  double fsync_interval_s = 1.0;  // results.jsonl is written after every batch, fsync'd at most this often
  double setup_s = 0;             // data and model loading time, recorded in summary.json
};

struct RunResult {
  std::size_t n_records = 0;                // user x trial records in results.jsonl
  std::size_t n_computed = 0;               // computed by this call
  std::size_t n_resumed = 0;                // taken over from an interrupted run
  std::vector<metrics::Summary> summaries;  // per config.metrics, over trials
  double valid_output_rate = 0;
  double wall_s = 0;           // the evaluation loop, result files included
  double time_in_model_s = 0;  // inside backend calls
  double time_outside_model_s = 0;
};

// The config.json document of a run (deterministic bytes, 2-space indented JSON, with
// "config_hash" = sha256 of the hashed fields) for `config` on `dataset` and model id.
std::string config_json(const EvalConfig& config, const data::Dataset& dataset, const std::string& model_id);

// The `retrieved` candidate scheme's ranker (protocol::Retriever) from any ranker built with
// list_length >= the negatives needed (n_candidates - 1); `name` goes into config.json.
// Retrievals are cached per (user, history), so trials share them.
std::shared_ptr<protocol::Retriever> make_ranker_retriever(std::unique_ptr<rec::Ranker> ranker, std::string name);

// ---- One query: built from the protocol, ranked, scored (run_eval and evaluate share these) ----

// Which of a prepared user's windows a query asks about. run_eval: Test.
enum class Phase { Test, Valid };
std::string_view phase_name(Phase phase);  // "test" | "valid"

// The demonstration a query carries (rec::Query::demo_history / demo_target).
enum class DemoSource {
  None,
  ValidWindow,  // the user's validation window and its target (ICL in run_eval; test phase)
  LastStep,     // the query history without its last item, followed by that item
                // (item_model::last_step_demonstration; `lrgd model eval-items --demo`)
};

// The query of one prepared user in one trial.
rec::Query make_query(const protocol::PreparedUser& user, std::uint32_t trial, Phase phase = Phase::Test,
                      DemoSource demo = DemoSource::None);

// 1-based position of the query's target in the ranking (metrics::kNotRanked when absent).
int target_rank(const rec::Query& query, const rec::Ranked& ranked);

// Runs the evaluation and writes the run directory. `backend` is required for zsl/icl and
// ignored for baselines and external. Throws OptionError for invalid options (a non-empty
// `out` without resume/overwrite, a missing backend), Error when resuming a run whose config
// hash differs or whose results file is corrupt (not just a torn last line), IoError on write
// failures. External: the score file is read and checked against every query of the run
// before anything is created or written; InputError (file, line) when it does not fit.
RunResult run_eval(const EvalConfig& config, const data::Dataset& dataset, llm::Backend* backend,
                   const RunOptions& options);

// ---- In memory: the same queries, rankers and metrics, without a run directory ----

struct NamedRanker {
  std::string name;
  rec::Ranker* ranker = nullptr;
};

struct MemoryEvalOptions {
  protocol::ProtocolOptions protocol;  // one trial: protocol.trial, as given
  Phase phase = Phase::Test;
  DemoSource demonstration = DemoSource::None;
  std::size_t batch_size = 16;  // queries per rank call
  std::vector<metrics::MetricSpec> metrics = metrics::default_metrics();
};

struct RankerOutcome {
  std::string name;
  std::vector<int> target_ranks;  // per user, in the protocol's draw order
  metrics::UserMetrics values;    // per metric (options.metrics) and user
  std::vector<double> means;      // per metric, over users (NaN without users)
  std::size_t n_valid = 0;
  std::size_t n_failed = 0;  // the backend gave up (a miss, as in run_eval)
  std::string first_error;   // the first failed query's error
  double model_s = 0;        // inside backend calls
};

struct MemoryEvalResult {
  std::vector<std::string> users;  // user ids, in the protocol's draw order
  std::vector<RankerOutcome> rankers;
  double wall_s = 0;
};

// Ranks the protocol's users (one trial) with each ranker on the same queries, in batches,
// and scores the rankings as run_eval does; writes nothing. Throws OptionError for invalid
// protocol options or batch_size < 1, std::invalid_argument for a null ranker.
MemoryEvalResult evaluate(const data::Dataset& dataset, std::span<const NamedRanker> rankers,
                          const MemoryEvalOptions& options);

enum class SignificanceTest { T, Wilcoxon };

// What one observation of a paired test is. User: each user's metric averaged over the
// trials both runs have for that user, tests over users (honest when a method's state, such
// as LRGD's demonstration, is fixed per user). UserTrial: every (user, trial) record is an
// observation; anti-conservative, since a user's trials are not independent.
enum class SignificanceUnit { User, UserTrial };
// "user" | "user-trial"; throws OptionError("--unit") otherwise.
SignificanceUnit parse_significance_unit(std::string_view text);

struct ReportOptions {
  std::vector<metrics::MetricSpec> metrics = metrics::default_metrics();
  double alpha = 0.05;
  SignificanceTest test = SignificanceTest::T;  // which test's p-value sets the "*" marker
  SignificanceUnit unit = SignificanceUnit::User;
  // Holm-Bonferroni over every comparison of the table (each run vs the first on each
  // metric, plus the Imp. comparisons); the markers then use the adjusted p-values.
  bool holm = false;
  // The run of the "Imp." row (improvement over the best other run, per metric): its
  // 1-based position, its label or its folder name (case-insensitive); "" = the last run;
  // "none" = no Imp. row. Throws OptionError("--ours") when nothing or several runs match.
  std::string ours;
};

struct Report {
  std::string markdown;  // Table 2 layout: rows = runs, columns = metrics
  std::string json;      // every number of the table plus both tests' p-values
};

// Compares run directories side by side. Significance: paired over the (user, trial)
// records the first run shares with each other run, two-sided, per `unit`. Throws IoError/InputError
// for a missing or malformed run directory, OptionError for an empty list.
Report report_runs(std::span<const std::filesystem::path> runs, const ReportOptions& options = {});

}  // namespace lrgd::eval
