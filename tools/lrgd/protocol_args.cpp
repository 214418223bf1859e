// The protocol options shared by `lrgd data prepare` and `lrgd eval`: users, candidates and
// their scheme (docs/eval.md, "Candidate schemes").
#include <fmt/core.h>

#include "cli.h"
#include "lrgd/baselines.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"
#include "lrgd/hash.h"
#include "lrgd/llama_backend.h"
#include "lrgd/protocol.h"
#include "lrgd/rec.h"

namespace lrgd::cli {

namespace {

// A ranker that owns the backend it ranks with (the retriever outlives the command's scope).
class OwningRanker final : public rec::Ranker {
 public:
  OwningRanker(std::unique_ptr<llm::Backend> backend, const data::Dataset& ds, const rec::LlmRankerOptions& o)
      : backend_(std::move(backend)), ranker_(rec::make_llm_ranker(ds, *backend_, o)) {}
  std::vector<rec::Ranked> rank(std::span<const rec::Query> queries) override { return ranker_->rank(queries); }

 private:
  std::unique_ptr<llm::Backend> backend_;
  std::unique_ptr<rec::Ranker> ranker_;
};

}  // namespace

void add_protocol_options(CLI::App* cmd, ProtocolArgs& a) {
  cmd->add_option("--users", a.n_users, "Evaluation users to sample (0: all)")->capture_default_str();
  cmd->add_option("--users-file", a.users_file, "Evaluate exactly these users: a JSON array of ids or one id a line");
  cmd->add_option("--seed", a.seed, "Seed of users, candidates, baselines and sampling")->capture_default_str();
  cmd->add_option("--max-history", a.max_history, "Most recent history items shown (0: all)")->capture_default_str();
  cmd->add_option("--candidates", a.n_candidates, "Candidate set size (target + negatives)")->capture_default_str();
  cmd->add_option("--negatives", a.negatives, "uniform-unseen | uniform-all | popularity | retrieved")
      ->capture_default_str();
  cmd->add_option("--retriever", a.retriever,
                  "--negatives retrieved: the ranker whose top items are the negatives (pop, markov, or an "
                  "item-token model .gguf)");
  cmd->add_option("--candidates-per-trial", a.candidates_per_trial,
                  "redraw: new candidates every trial; fixed: trial 0's candidates in every trial")
      ->capture_default_str();
  cmd->add_option("--candidate-file", a.candidate_file,
                  "Fixed candidates: 'user<TAB>item item ...' per line (LLMRank's X.random) or MoRE's JSON");
}

protocol::ProtocolOptions protocol_options(const ProtocolArgs& a, const data::Dataset& ds, int n_threads) {
  protocol::ProtocolOptions o;
  o.seed = a.seed;
  o.n_users = a.n_users;
  o.max_history = a.max_history;
  o.n_candidates = a.n_candidates;
  o.negatives = protocol::parse_negatives(a.negatives);
  o.fixed_across_trials = protocol::parse_candidates_per_trial(a.candidates_per_trial);
  o.candidate_file = a.candidate_file;
  o.users_file = a.users_file;
  const bool retrieved = o.negatives == protocol::NegativeSampling::Retrieved;
  if (retrieved && a.retriever.empty())
    throw OptionError("--retriever", "--negatives retrieved needs a ranker (pop, markov or an item-token model)");
  if (!retrieved && !a.retriever.empty()) throw OptionError("--retriever", "only with --negatives retrieved");
  if (!retrieved) return o;
  protocol::validate(o, ds);
  const int k = static_cast<int>(o.n_candidates - 1);
  if (a.retriever == "pop" || a.retriever == "markov") {
    baselines::BaselineOptions bo;
    bo.seed = o.seed;
    o.retriever =
        eval::make_ranker_retriever(rec::make_baseline_ranker(ds, rec::parse_method(a.retriever), bo, k), a.retriever);
    return o;
  }
  if (!std::filesystem::is_regular_file(a.retriever))
    throw OptionError("--retriever", "'" + a.retriever + "' is neither pop, markov nor a model file");
  rec::LlmRankerOptions lo;
  configure_item_model(a.retriever, ds, "", lo);
  if (lo.prompt_form != rec::PromptForm::ItemTokens)
    throw OptionError("--retriever", a.retriever + " is not an item-token model (lrgd model train)");
  lo.method = rec::Method::Zsl;
  lo.list_length = k;
  llm::LlamaBackendOptions bo;
  bo.model = a.retriever;
  bo.n_threads = n_threads;
  o.retriever = eval::make_ranker_retriever(std::make_unique<OwningRanker>(llm::make_llama_backend(bo), ds, lo),
                                            "item-model:" + sha256_file(a.retriever).substr(0, 16));
  return o;
}

void with_protocol_files(const ProtocolArgs& a, const std::function<void()>& work) {
  try {
    work();
  } catch (const InputError& e) {
    if (!a.candidate_file.empty() && e.file() == a.candidate_file) throw OptionError("--candidate-file", e.what());
    if (!a.users_file.empty() && e.file() == a.users_file) throw OptionError("--users-file", e.what());
    throw;
  }
}

}  // namespace lrgd::cli
