// LRGD's practical two-stage optimisation (docs/lrgd.md, method.md section 4): per user,
// K independent paths over R rounds; stage 1 generates a demonstration (template or LLM),
// stage 2 runs the ICL recommender on the VALIDATION target and scores S(D); effective
// demonstrations enter the memory (lrgd/memory.h); collapse detection per path triggers a
// perturbation P taken from another path. The best demonstration per user is used once on
// the test target (make_lrgd_ranker plugs this into `lrgd eval --method lrgd`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lrgd/data.h"
#include "lrgd/dataset.h"
#include "lrgd/llm.h"
#include "lrgd/memory.h"
#include "lrgd/protocol.h"
#include "lrgd/rec.h"

namespace lrgd::optim {

using data::ItemIndex;

// S(D) from the target's 1-based position p in the answer: 1/log2(p+1) (default) or 1/p;
// 0 when absent (p == 0).
enum class Quality { InvLog2, Inverse };
Quality parse_quality(std::string_view name);  // "log2" | "inverse"; OptionError("--quality")
std::string_view quality_name(Quality q);
double demonstration_quality(int rank, Quality q = Quality::InvLog2);

// Collapse: consecutive demonstrations too similar, or S stopped improving, or either.
enum class CollapseRule { Similarity, Stall, Both };
CollapseRule parse_collapse_rule(std::string_view name);  // "similarity" | "stall" | "both"; OptionError("--collapse")
std::string_view collapse_rule_name(CollapseRule r);

// Token Jaccard similarity of two texts (parse::normalize_title tokens); 1 when both empty.
double token_jaccard(std::string_view a, std::string_view b);

// One demonstration: an earlier window of the user's history, its true next item and a
// short statement of the user's preferences.
struct Demo {
  std::vector<ItemIndex> history;  // oldest first
  ItemIndex target = data::kNoItem;
  std::string explanation;
  std::string strategy;  // how it was built ("recent w=5 j=7", "memory+diverse ...", "llm ...")
  bool empty() const { return history.empty() || target == data::kNoItem; }
};
std::string demo_text(const data::Dataset& ds, const Demo& d);  // as stored and compared
std::string demo_json(const data::Dataset& ds, const Demo& d);  // item ids, explanation, strategy
// Throws InputError when the JSON is malformed or names an unknown item.
Demo demo_from_json(const data::Dataset& ds, std::string_view json);
Demo demo_from_json(const data::IdIndex& item_ids, std::string_view json);  // faster for many rows

// What stage 1 sees for one (user, path, round).
struct GenerationRequest {
  const protocol::PreparedUser* user = nullptr;
  int path = 0;
  int round = 0;
  std::uint64_t seed = 0;                  // Rng::derive(seed, "lrgd/generate/<round>", user << 8 | path)
  std::vector<Demo> path_memory;           // this path's effective demonstrations so far, best first
  std::vector<double> path_memory_scores;  // their S, same order
  const Demo* previous = nullptr;          // this path's demonstration of the previous round
  double previous_score = 0;               // its S
  const Demo* perturbation = nullptr;      // after a collapse: P, another path's demonstration
};

struct GeneratedDemo {
  Demo demo;                   // empty when the generator gave up (see error)
  std::uint64_t n_tokens = 0;  // LLM prompt + generated tokens (0 for the template generator)
  int n_attempts = 0;          // LLM answers asked for (0 for the template generator)
  int n_invalid = 0;           // of them, rejected by validation
  std::string error;           // why the last rejected answer was rejected
};

// Parses and validates a stage-1 answer against the user's history `items` (oldest first,
// numbered from 1): "History: 3, 4, 5\nNext: 6\nReason: ...". The numbers must exist,
// the history must be distinct and oldest first, the next item must come after all of
// them, and the reason must contain a word (letters). Returns false with `why` otherwise.
bool parse_generated_demo(std::string_view answer, const std::vector<ItemIndex>& items, Demo& out, std::string& why);

class Generator {
 public:
  virtual ~Generator() = default;
  // One demonstration per request, in order. Never uses the validation or test target.
  virtual std::vector<GeneratedDemo> generate(std::span<const GenerationRequest> requests) = 0;
  virtual std::string_view name() const = 0;  // "template" | "llm"
};

// Builds demonstrations from the behaviour alone: windows of valid_history ending before
// the validation target, recency or diversity selection, a category (or brand, or title
// keyword) summary, or a variation of the path's best effective demonstration. Seeded.
std::unique_ptr<Generator> make_template_generator(const data::Dataset& ds);
// Stage 1 as the paper has it: an instruction-following model sees the user's history
// (numbered), a profile, the path's memory of effective demonstrations with their S, the
// path's previous demonstration with its S and, after a collapse, the perturbation P; it
// writes a whole demonstration (which history items, the next item, the reason) under a
// grammar over the history's numbers. Answers are validated (parse_generated_demo); an
// invalid one is counted and asked again with the reason, up to `max_attempts`, then the
// demonstration is left empty and its strategy says why (never replaced by a template).
// `template_text` has the slots {history} {profile} {memory} {previous} {perturbation}
// {max_items} (prompts/generator.txt by default).
struct LlmGeneratorOptions {
  std::string template_text;  // empty: prompts/generator.txt
  int max_tokens = 160;
  int max_attempts = 3;
  int min_items = 3;         // fewest history items (fewer when the history is shorter)
  int max_items = 12;        // most history items in one demonstration
  float temperature = 0.8f;  // K paths from one prompt need different samples
  std::uint64_t seed = 42;   // the optimisation's seed
};
std::unique_ptr<Generator> make_llm_generator(const data::Dataset& ds, llm::Backend& backend,
                                              LlmGeneratorOptions options = {});

struct Options {
  int paths = 3;   // K
  int rounds = 3;  // R (with a budget: the longest path's rounds, see rounds_of)
  // Demonstrations tried per user (validation prompts); 0: paths x rounds. Set, the budget
  // is shared out over the paths (the first budget % paths paths get one round more), so
  // variants with different K try equally many demonstrations.
  int budget = 0;
  Quality quality = Quality::InvLog2;
  CollapseRule collapse = CollapseRule::Both;
  double collapse_threshold = 0.8;  // similarity: token Jaccard of consecutive demonstrations above this
  // Stall: over the last `collapse_window` rounds the path's best S rose by less than
  // `collapse_margin` (and is below 1). The window starts after the path's last P.
  double collapse_margin = 0.01;
  int collapse_window = 2;
  bool perturbation = true;  // P on collapse (kept by the path until its next collapse)
  std::string generator = "template";
  std::uint64_t seed = 42;

  int total_budget() const { return budget > 0 ? budget : paths * rounds; }
  int max_rounds() const { return (total_budget() + paths - 1) / paths; }
  int rounds_of(int path) const { return total_budget() / paths + (path < total_budget() % paths ? 1 : 0); }
};
// Compact JSON of the options (hashed into config.json and the memory variant).
std::string options_json(const Options& o);

// Token and call accounting of the optimisation (this process's work).
struct Cost {
  std::size_t n_users = 0;              // users whose optimisation was looked at
  std::size_t n_rounds_computed = 0;    // (user, path, round) rows computed
  std::size_t n_rounds_resumed = 0;     // rows taken from the memory
  std::size_t n_collapse_checks = 0;    // rows that could collapse (round >= 1)
  std::size_t n_collapses = 0;          // of them, collapsed (either rule)
  std::size_t n_collapses_similar = 0;  // by the similarity rule
  std::size_t n_collapses_stall = 0;    // by the stall rule
  std::size_t n_perturbed = 0;          // rows evaluated with a P
  std::uint64_t generator_tokens = 0;
  std::uint64_t generator_attempts = 0;  // LLM generator answers asked for
  std::uint64_t generator_invalid = 0;   // of them, rejected by validation
  std::uint64_t generator_failed = 0;    // demonstrations given up after every attempt
  std::uint64_t validation_tokens = 0;
  std::uint64_t test_tokens = 0;
  llm::Usage optimisation_usage;  // backend usage deltas in stage 1 + 2
  llm::Usage test_usage;
};

class Optimiser {
 public:
  // `recommender` is an ICL ranker (with D and P); `backend` (may be null) only for usage.
  Optimiser(const data::Dataset& ds, rec::Ranker& recommender, Generator& generator, memory::Store& store,
            Options options, std::string dataset_key, std::string variant, std::string model_id,
            llm::Backend* backend = nullptr);
  // Completes the optimisation of every user (rows already in the store are reused, so an
  // interrupted run continues from each path's last stored round) and returns every row
  // of these users, ordered by user (as given), path, round.
  std::vector<memory::Entry> optimise(std::span<const protocol::PreparedUser* const> users);
  const Cost& cost() const { return cost_; }
  // true: a line on stderr after each round (rows, mean S, effective, collapses, time).
  void set_progress(bool on) { progress_ = on; }

 private:
  // The stall rule for a row of `round` with S = `score` on a path's earlier rows.
  bool stall(const std::vector<std::optional<memory::Entry>>& path_rows, int round, double score) const;

  const data::Dataset& ds_;
  rec::Ranker& recommender_;
  Generator& generator_;
  memory::Store& store_;
  Options opts_;
  std::string dataset_key_, variant_, model_id_;
  llm::Backend* backend_;
  data::IdIndex item_ids_;
  std::set<std::string> seen_users_;
  Cost cost_;
  bool progress_ = false;
};

// The best row of one user's rows (highest S, ties by earlier round, then lower path).
const memory::Entry* best_entry(std::span<const memory::Entry> rows);

// Memory keys.
std::string dataset_key(const data::Dataset& ds);  // name + ":" + 12 hex of the content hash

// `lrgd eval --method lrgd`: a ranker that optimises each user's demonstrations on the
// validation split of trial 0 (once per user, stored in `memory_path`), then answers each
// test query with the user's best demonstration (and the P it was scored with). `icl` are
// the recommender options (template, R, mode, ...); `protocol` the run's protocol options.
struct LrgdRankerOptions {
  Options optim;
  std::filesystem::path memory_path;
  std::string variant;             // memory key of these settings
  std::string generator_template;  // llm generator: template text (empty: built-in)
  std::shared_ptr<Cost> cost_out;  // filled as the ranker works (for summary.json)
  bool progress = false;           // Optimiser::set_progress
  // > 0: the test uses the best demonstration of the first `test_rounds` rounds only (the
  // test curve of Fig. 9); every round is still optimised and stored.
  int test_rounds = 0;
};
std::unique_ptr<rec::Ranker> make_lrgd_ranker(const data::Dataset& ds, llm::Backend& backend,
                                              const rec::LlmRankerOptions& icl,
                                              const protocol::ProtocolOptions& protocol,
                                              const LrgdRankerOptions& options);

// Stage 1's seed of (user, path, round): Rng::derive(seed, "lrgd/generate/<round>", user << 8 | path).
std::uint64_t generation_seed(std::uint64_t seed, data::UserIndex user, int path, int round);

// `lrgd eval --method icl` (default `--icl-demo first-round`): ICL whose demonstration is
// the one LRGD's generator draws for path 0 in round 0 (same generator, seed and trial-0
// split), so LRGD - ICL measures the optimisation alone. Users without a possible window
// are answered zero-shot, as LRGD answers them.
struct FirstRoundIclOptions {
  std::string generator = "template";
  std::string generator_template;  // llm generator: template text (empty: built-in)
  std::uint64_t seed = 42;
};
std::unique_ptr<rec::Ranker> make_first_round_icl_ranker(const data::Dataset& ds, llm::Backend& backend,
                                                         const rec::LlmRankerOptions& icl,
                                                         const protocol::ProtocolOptions& protocol,
                                                         const FirstRoundIclOptions& options);

// The cost section of summary.json ("method_summary"): tokens per user per stage, prefix
// reuse and response-cache savings.
std::string cost_json(const Cost& cost);

// Collapse analysis (paper Fig. 9): per round, mean similarity of consecutive
// demonstrations (rounds >= 1) and mean validation nDCG@10 over (user, path).
struct RoundStats {
  int round = 0;
  std::size_t n = 0;
  double similarity = 0;  // NaN in round 0
  double ndcg10 = 0;
  double mean_score = 0;
  double collapse_rate = 0;
  double perturbed_rate = 0;
  // Test nDCG@10 with the best demonstration of rounds 1..round+1 (NaN: not measured).
  double test_ndcg10 = std::numeric_limits<double>::quiet_NaN();
};
std::vector<RoundStats> round_stats(std::span<const memory::Entry> rows);
struct Series {
  std::string name;  // "with P", "without P"
  std::vector<RoundStats> rounds;
};
std::string collapse_markdown(std::span<const Series> series);
// Test nDCG@10 columns appear where a series has them (lrgd ablate --test-per-round).
// Writes `png` with gnuplot (two panels: similarity and nDCG@10 per round), keeping the
// .dat and .gp files beside it. Returns false (and `error`) when gnuplot is missing or fails.
bool plot_collapse(std::span<const Series> series, const std::filesystem::path& png, std::string& error);

}  // namespace lrgd::optim
