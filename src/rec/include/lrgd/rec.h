// The recommender pipeline of one evaluation query: build the prompt (ZSL or ICL), ask the
// LLM (generate a ranked list, or score every candidate as a continuation), parse the
// answer, and the non-LLM baselines behind the same interface. No files are written here;
// the run directory lives in lrgd/eval.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lrgd/baselines.h"
#include "lrgd/dataset.h"
#include "lrgd/llm.h"
#include "lrgd/parse.h"
#include "lrgd/prompt.h"

namespace lrgd::rec {

using data::ItemIndex;

// Lrgd: optimised demonstrations (lrgd_optim supplies its ranker through
// eval::EvalConfig::ranker_factory; make_llm_ranker treats it as ICL with the query's demo).
// External: another tool's rankings read from a score file (lrgd/external.h).
enum class Method { Zsl, Icl, Random, Pop, Markov, Lrgd, External };
// "zsl" | "icl" | "random" | "pop" | "markov" | "lrgd" | "external". Throws OptionError("--method") otherwise.
Method parse_method(std::string_view name);
std::string_view method_name(Method method);
bool needs_llm(Method method);

// How an LLM ranks: writes the list (the paper's way) or scores each candidate.
enum class RankMode { Generate, Score };
RankMode parse_rank_mode(std::string_view name);  // "generate" | "score"; OptionError("--mode")
std::string_view rank_mode_name(RankMode mode);

// How a prompt is written: through a text template, or as item tokens for an item-token
// model (`lrgd model train`; layout in lrgd/item_model.h), which ranks in score mode only:
// each candidate's score is the log-probability of its item token after the prompt.
enum class PromptForm { Text, ItemTokens };
std::string_view prompt_form_name(PromptForm form);  // "text" | "item_tokens"

// Score mode: the continuation scored for candidate i (shown number i + 1).
enum class ScoreTarget { Title, Label };                // the item text | the label "[i+1]"
ScoreTarget parse_score_target(std::string_view name);  // "title" | "label"; OptionError("--score-on")
std::string_view score_target_name(ScoreTarget target);
// Score mode: sum of token log-probabilities, or their mean (length-normalised).
enum class ScoreNorm { Sum, Mean };
ScoreNorm parse_score_norm(std::string_view name);  // "sum" | "mean"; OptionError("--score-norm")
std::string_view score_norm_name(ScoreNorm norm);

// One user's query in one trial.
struct Query {
  data::UserIndex user = 0;
  std::uint32_t trial = 0;
  std::vector<ItemIndex> history;     // oldest first (already truncated to max_history)
  std::vector<ItemIndex> candidates;  // shown numbered 1..n in this order
  ItemIndex target = data::kNoItem;
  // ICL demonstration: an earlier window of the same user with its true next item
  // (by default valid_history -> valid_target). Empty history: none.
  std::vector<ItemIndex> demo_history;
  ItemIndex demo_target = data::kNoItem;
  std::string demo_explanation;  // optional preference statement shown with the demonstration
  // Perturbation P (LRGD): another demonstration of the same user next to D; empty: none.
  std::vector<ItemIndex> perturbation_history;
  ItemIndex perturbation_target = data::kNoItem;
  std::string perturbation_explanation;
};

// The outcome of one query. Rankings never contain a candidate twice.
struct Ranked {
  std::vector<int> ranking;   // 0-based candidate positions, best first, at most list_length
  bool valid = false;         // the answer named at least one candidate (a miss otherwise)
  std::string raw_answer;     // generate mode: the model's text; empty otherwise
  std::string answer_format;  // parse::format_name of the answer; "score"/"baseline" otherwise
  std::string prompt_hash;    // sha256 of the final prompt (after overflow drops); empty for baselines
  int n_hallucinated = 0;
  int n_duplicates = 0;
  int n_history_dropped = 0;  // oldest query-history items dropped to fit the context
  int n_demo_dropped = 0;     // oldest demonstration-history items dropped to fit the context
  int n_prompt_tokens = 0;
  int n_scored_tokens = 0;     // score mode: candidate continuation tokens decoded
  int n_generated_tokens = 0;  // generate mode
  std::string finish;          // "stop" | "length" | "error" ("" for baselines and score mode)
  std::string error;           // the backend's error after the overflow policy gave up
};

class Ranker {
 public:
  virtual ~Ranker() = default;
  // One result per query, in order. Backend failures come back as invalid results with
  // `error` set; only programmer errors and IO errors of a response cache throw.
  virtual std::vector<Ranked> rank(std::span<const Query> queries) = 0;
  // Wall seconds spent inside backend calls so far (0 for baselines).
  virtual double model_seconds() const { return 0; }
};

struct LlmRankerOptions {
  Method method = Method::Zsl;  // Zsl or Icl
  RankMode mode = RankMode::Generate;
  PromptForm prompt_form = PromptForm::Text;
  std::string template_name;  // built-in name or file; empty: "zsl" / "icl" by method (text form only)
  int list_length = 10;
  std::string regularisation;  // textual R; empty: none
  // Generate mode.
  bool constrain = false;            // OutputConstraint::CandidateList with labels "1".."n"
  llm::GenerationParams generation;  // max_tokens, temperature, ...; constraint is set here
  parse::ParseOptions parse;         // list_length is overwritten with list_length
  // Score mode.
  ScoreTarget score_target = ScoreTarget::Title;
  ScoreNorm score_norm = ScoreNorm::Sum;
  // Context overflow policy: drop the oldest history items (query first while it is the
  // longer one, else demonstration) one per retry until the prompt fits, never below
  // `min_history` items; the instruction is never cut.
  int min_history = 1;
};

// Text shown for an item: its title, or "Item <id>" when it has none.
std::string item_text(const data::Dataset& dataset, ItemIndex item);

// The prompt inputs of a query (titles via item_text), dropping the first
// `n_history_dropped` / `n_demo_dropped` items of the histories.
prompt::PromptInputs build_inputs(const data::Dataset& dataset, const Query& query, bool with_demo, int list_length,
                                  const std::string& regularisation, int n_history_dropped = 0, int n_demo_dropped = 0);

// The item-token prompt of a query: [<demo> D <next> y] [<demo> P <next> y] <query> H <next>,
// dropping the first `n_history_dropped` / `n_demo_dropped` items of the histories.
std::vector<std::int32_t> item_prompt_tokens(const Query& query, bool with_demo, int n_history_dropped = 0,
                                             int n_demo_dropped = 0);

// sha256 hex of a prompt's canonical bytes (roles and contents, or raw text, or token ids).
std::string prompt_hash(const llm::Prompt& prompt);

// Keeps references to `dataset` and `backend`. Throws OptionError for a non-LLM method,
// list_length < 1, or a template that cannot be resolved.
std::unique_ptr<Ranker> make_llm_ranker(const data::Dataset& dataset, llm::Backend& backend,
                                        const LlmRankerOptions& options);

// random | pop | markov over the same queries (key = (user << 32) | trial). Throws
// OptionError for an LLM method or external.
std::unique_ptr<Ranker> make_baseline_ranker(const data::Dataset& dataset, Method method,
                                             const baselines::BaselineOptions& options, int list_length);

}  // namespace lrgd::rec
