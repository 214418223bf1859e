// Shared between the run, summary and report parts of lrgd_eval (private).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lrgd/eval.h"
#include "lrgd/metrics.h"

namespace lrgd::eval::detail {

using ojson = nlohmann::ordered_json;

// What the summary and the report need from one results.jsonl line.
struct Record {
  std::uint32_t trial = 0;
  std::size_t draw = 0;  // the user's position in the protocol's draw order
  std::string user;      // user id
  int target_rank = metrics::kNotRanked;
  bool valid = false;
  bool failed = false;  // the backend gave up (error)
  int n_hallucinated = 0;
  int n_duplicates = 0;
  int n_prompt_tokens = 0;
  int n_scored_tokens = 0;
  int n_generated_tokens = 0;
  int n_history_dropped = 0;
  int n_demo_dropped = 0;
  std::string line;  // the JSON line, no trailing newline
};

// Parses one line of results.jsonl. Throws InputError(file, line_no, field).
Record parse_record(std::string line, const std::string& file, std::uint64_t line_no);

struct ResultsFile {
  std::vector<Record> records;
  std::uint64_t good_bytes = 0;  // length of the prefix made of complete, parseable lines
  bool torn = false;             // a partial last line was found (and left out)
};

// Reads results.jsonl. A last line without '\n' or that does not parse is torn (left out);
// any other bad line throws InputError. A missing file gives an empty result.
ResultsFile read_results(const std::filesystem::path& path);

// Appends lines to a file with write(2) (each call's lines in one go, so a kill leaves at
// most one torn line) and fsync(2) when asked.
class Appender {
 public:
  // Truncates the file to `keep_bytes` first (dropping a torn tail). Throws IoError.
  Appender(const std::filesystem::path& path, std::uint64_t keep_bytes);
  ~Appender();
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;
  void append(const std::string& bytes);
  void sync();

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// The config document (full) and the hash of its result-determining part.
ojson config_document(const EvalConfig& config, const data::Dataset& dataset, const std::string& model_id);

// Aggregates of a run's records (sorted by trial, draw).
struct RunStats {
  std::vector<metrics::MetricSpec> metrics;
  std::size_t n_records = 0;
  std::size_t n_users = 0;                      // distinct users
  std::vector<std::uint32_t> trials;            // distinct trials, ascending
  std::vector<metrics::UserMetrics> per_trial;  // metric values per trial (draw order)
  std::vector<metrics::Summary> summaries;      // per metric over the trials' means
  std::size_t n_valid = 0, n_failed = 0, n_hallucinated = 0, n_duplicates = 0;
  std::size_t n_with_hallucination = 0, n_truncated = 0, n_history_dropped = 0, n_demo_dropped = 0;
  std::uint64_t n_prompt_tokens = 0, n_scored_tokens = 0, n_generated_tokens = 0;
  double valid_output_rate() const {
    return n_records ? static_cast<double>(n_valid) / static_cast<double>(n_records) : 0;
  }
};

RunStats compute_stats(const std::vector<Record>& records, const std::vector<metrics::MetricSpec>& specs,
                       double confidence);

// "nDCG@10", "Recall@5", "MRR@10".
std::string metric_title(const metrics::MetricSpec& spec);

// One Markdown table row per run: label, then one cell per metric.
std::string markdown_table(const std::vector<metrics::MetricSpec>& specs, const std::vector<std::string>& labels,
                           const std::vector<std::vector<std::string>>& cells);

// "0.1234 ± 0.0056" (std over trials; no ± with one trial).
std::string mean_std_cell(const metrics::Summary& s);

// summary.json of a finished run (see docs/eval.md).
std::string summary_json(const EvalConfig& config, const ojson& config_doc, const RunStats& stats,
                         const RunResult& result, const llm::Usage& usage, bool torn, double setup_s);
// table.md of one run.
std::string run_table(const ojson& config_doc, const RunStats& stats);
// The row label of a run: "ZSL", "ICL (score)", "Pop", "Markov", "Random".
std::string run_label(const ojson& config_doc);

// JSON number or null for NaN/inf.
ojson number(double v);

}  // namespace lrgd::eval::detail
