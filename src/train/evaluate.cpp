// A small evaluation harness for item models: the protocol's candidate sets, the model's
// next-token log-probabilities through the embedded backend, and the baselines alongside.
#include <algorithm>
#include <chrono>
#include <numeric>

#include "lrgd/baselines.h"
#include "lrgd/error.h"
#include "lrgd/item_model.h"
#include "lrgd/llama_backend.h"
#include "lrgd/metrics.h"
#include "lrgd/protocol.h"
#include "lrgd/train.h"

namespace lrgd::train {

namespace {

struct Acc {
  std::string name;
  double ndcg10 = 0, recall10 = 0, ndcg1 = 0, mrr10 = 0;
  void add(int rank) {
    ndcg10 += metrics::ndcg_at(rank, 10);
    recall10 += metrics::recall_at(rank, 10);
    ndcg1 += metrics::ndcg_at(rank, 1);
    mrr10 += metrics::mrr_at(rank, 10);
  }
  RankerScores done(std::size_t n) const {
    const double d = n > 0 ? static_cast<double>(n) : 1.0;
    return RankerScores{name, ndcg10 / d, recall10 / d, ndcg1 / d, mrr10 / d};
  }
};

}  // namespace

ItemEvalReport evaluate_item_model(const data::Dataset& dataset, const std::filesystem::path& model,
                                   const ItemEvalOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  protocol::ProtocolOptions po;
  po.seed = o.seed;
  po.trial = o.trial;
  po.n_users = o.n_users;
  po.max_history = o.max_history;
  const auto split = protocol::prepare_split(dataset, po);

  llm::LlamaBackendOptions bo;
  bo.model = model;
  bo.n_threads = o.n_threads;
  bo.n_parallel = 1;
  bo.kv_f32 = true;
  auto backend = llm::make_llama_backend(bo);

  baselines::BaselineOptions bopt;
  bopt.seed = o.seed;
  const auto pop = baselines::make_baseline("pop", dataset, bopt);
  const auto markov = baselines::make_baseline("markov", dataset, bopt);
  const auto rnd = baselines::make_baseline("random", dataset, bopt);
  Acc acc_model{"item_model"}, acc_pop{"pop"}, acc_markov{"markov"}, acc_rnd{"random"};

  item_model::LayoutOptions layout;
  layout.max_history = o.max_history;
  layout.max_demo_history = o.max_history;
  constexpr std::size_t kChunk = 64;
  for (std::size_t start = 0; start < split.users.size(); start += kChunk) {
    const std::size_t end = std::min(split.users.size(), start + kChunk);
    std::vector<llm::ScoreRequest> reqs;
    for (std::size_t i = start; i < end; ++i) {
      const auto& u = split.users[i];
      const auto& hist = o.test ? u.test_history : u.valid_history;
      const auto& cands = o.test ? u.test_candidates : u.valid_candidates;
      std::vector<item_model::Demonstration> demos;
      if (o.demonstration) {
        auto d = item_model::last_step_demonstration(hist, o.max_history);
        if (d.next != data::kNoItem) demos.push_back(std::move(d));
      }
      llm::ScoreRequest r;
      r.context = llm::Prompt::ids(item_model::prompt_tokens(hist, demos, layout));
      r.token_continuations = item_model::candidate_continuations(cands);
      reqs.push_back(std::move(r));
    }
    const auto results = backend->score(reqs);
    for (std::size_t i = start; i < end; ++i) {
      const auto& u = split.users[i];
      const auto& hist = o.test ? u.test_history : u.valid_history;
      const auto& cands = o.test ? u.test_candidates : u.valid_candidates;
      const auto target = o.test ? u.test_target : u.valid_target;
      const auto& res = results[i - start];
      if (!res.ok()) throw Error("scoring failed for user " + u.user_id + ": " + res.error);
      std::vector<std::size_t> idx(cands.size());
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(),
                       [&](std::size_t a, std::size_t b) { return res.logprobs[a] > res.logprobs[b]; });
      std::vector<std::int32_t> ranking;
      for (auto k : idx) ranking.push_back(cands[k]);
      acc_model.add(metrics::rank_of(ranking, target));
      baselines::Query q{hist, cands, (static_cast<std::uint64_t>(u.user) << 32) | o.trial};
      acc_pop.add(metrics::rank_of(pop->rank(q, 10), target));
      acc_markov.add(metrics::rank_of(markov->rank(q, 10), target));
      acc_rnd.add(metrics::rank_of(rnd->rank(q, 10), target));
    }
  }
  ItemEvalReport rep;
  rep.n_users = split.users.size();
  for (const auto* a : {&acc_model, &acc_pop, &acc_markov, &acc_rnd}) rep.rankers.push_back(a->done(rep.n_users));
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace lrgd::train
