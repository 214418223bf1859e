// The rankers: ZSL / ICL through an LLM backend (prompt → generate and parse the list, or
// score each candidate as a continuation; the context overflow policy) and the baselines.
#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <string>

#include "lrgd/error.h"
#include "lrgd/item_model.h"
#include "lrgd/rec.h"
#include "lrgd/rng.h"

namespace lrgd::rec {

namespace {

using Clock = std::chrono::steady_clock;

class LlmRanker final : public Ranker {
 public:
  LlmRanker(const data::Dataset& dataset, llm::Backend& backend, const LlmRankerOptions& o)
      : dataset_(dataset), backend_(backend), opts_(o) {
    if (!needs_llm(o.method)) throw OptionError("--method", "not an LLM method: " + std::string(method_name(o.method)));
    if (o.list_length < 1) throw OptionError("--list-length", "must be >= 1");
    if (o.min_history < 1) throw OptionError("--min-history", "must be >= 1");
    with_demo_ = o.method == Method::Icl || o.method == Method::Lrgd;
    if (o.prompt_form == PromptForm::ItemTokens) {
      // No text and no template: the item-token layout is fixed by the model (lrgd/item_model.h).
      if (o.mode != RankMode::Score)
        throw OptionError("--mode", "an item-token model ranks in score mode only (it writes no text)");
    } else {
      const std::string name = o.template_name.empty()
                                   ? std::string(method_name(o.method == Method::Lrgd ? Method::Icl : o.method))
                                   : o.template_name;
      template_ = prompt::Template::resolve(name);
      if (with_demo_ && !template_.has_section("D"))
        throw OptionError("--template", "ICL needs a template with a D section: " + name);
    }
    opts_.parse.list_length = o.list_length;
    if (opts_.generation.max_tokens <= 0)
      opts_.generation.max_tokens = o.constrain ? 4 * o.list_length + 8 : 32 * o.list_length;
  }

  double model_seconds() const override { return model_s_; }

  std::vector<Ranked> rank(std::span<const Query> queries) override {
    std::vector<Ranked> out(queries.size());
    std::vector<std::size_t> pending(queries.size());
    std::iota(pending.begin(), pending.end(), std::size_t{0});
    // The overflow policy: a prompt that does not fit loses its oldest history item and is
    // sent again, until it fits or nothing more may be dropped.
    while (!pending.empty()) {
      std::map<std::uint32_t, std::vector<std::size_t>> by_trial;
      for (auto i : pending) by_trial[queries[i].trial].push_back(i);
      std::vector<std::size_t> retry;
      for (const auto& [trial, idx] : by_trial) {
        if (opts_.mode == RankMode::Generate)
          run_generate(queries, idx, trial, out, retry);
        else
          run_score(queries, idx, out, retry);
      }
      std::sort(retry.begin(), retry.end());
      pending = std::move(retry);
    }
    return out;
  }

 private:
  std::vector<std::string> candidate_titles(const Query& q) const {
    std::vector<std::string> t;
    t.reserve(q.candidates.size());
    for (auto c : q.candidates) t.push_back(item_text(dataset_, c));
    return t;
  }

  llm::Prompt render(const Query& q, Ranked& r) const {
    if (opts_.prompt_form == PromptForm::ItemTokens) {
      llm::Prompt p = llm::Prompt::ids(item_prompt_tokens(q, with_demo_, r.n_history_dropped, r.n_demo_dropped));
      r.prompt_hash = prompt_hash(p);
      return p;
    }
    const auto in = build_inputs(dataset_, q, with_demo_, opts_.list_length, opts_.regularisation, r.n_history_dropped,
                                 r.n_demo_dropped);
    llm::Prompt p = template_.render(in).prompt();
    r.prompt_hash = prompt_hash(p);
    return p;
  }

  // Drops one more history item if the policy allows; false when nothing is left to drop.
  bool drop_one(const Query& q, Ranked& r) const {
    const int n_query = static_cast<int>(q.history.size()) - r.n_history_dropped;
    const int n_demo = with_demo_ ? static_cast<int>(q.demo_history.size()) - r.n_demo_dropped : 0;
    const bool can_query = n_query > opts_.min_history;
    const bool can_demo = n_demo > opts_.min_history;
    if (can_demo && (!can_query || n_demo >= n_query)) {
      ++r.n_demo_dropped;
      return true;
    }
    if (can_query) {
      ++r.n_history_dropped;
      return true;
    }
    return false;
  }

  void run_generate(std::span<const Query> queries, const std::vector<std::size_t>& idx, std::uint32_t trial,
                    std::vector<Ranked>& out, std::vector<std::size_t>& retry) {
    std::vector<llm::Prompt> prompts;
    prompts.reserve(idx.size());
    for (auto i : idx) prompts.push_back(render(queries[i], out[i]));
    llm::GenerationParams params = opts_.generation;
    params.seed = Rng::derive(opts_.generation.seed, "generate", trial).next_u64();
    if (opts_.constrain) {
      const std::size_t n = queries[idx.front()].candidates.size();
      params.constraint.kind = llm::OutputConstraint::Kind::CandidateList;
      params.constraint.labels.clear();
      for (std::size_t k = 1; k <= n; ++k) params.constraint.labels.push_back(std::to_string(k));
      params.constraint.list_length = opts_.list_length;
      for (auto i : idx)
        if (queries[i].candidates.size() != n)
          throw std::invalid_argument("constrained batch with mixed candidate counts");
    }
    const auto t0 = Clock::now();
    auto gens = backend_.generate(prompts, params);
    model_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
    for (std::size_t k = 0; k < idx.size(); ++k) {
      const auto i = idx[k];
      Ranked& r = out[i];
      auto& g = gens[k];
      if (!g.ok() && g.context_overflow && drop_one(queries[i], r)) {
        retry.push_back(i);
        continue;
      }
      r.raw_answer = std::move(g.text);
      r.finish = llm::finish_name(g.finish);
      r.n_prompt_tokens = g.n_prompt_tokens;
      r.n_generated_tokens = g.n_generated_tokens;
      if (!g.ok()) {
        r.error = g.error.empty() ? "generation failed" : g.error;
        r.answer_format = "error";
        continue;
      }
      const auto titles = candidate_titles(queries[i]);
      const auto p = parse::parse_ranking(r.raw_answer, titles, opts_.parse);
      r.ranking = p.ranking;
      r.valid = p.valid;
      r.n_hallucinated = p.n_hallucinated;
      r.n_duplicates = p.n_duplicates;
      r.answer_format = std::string(parse::format_name(p.format));
    }
  }

  void run_score(std::span<const Query> queries, const std::vector<std::size_t>& idx, std::vector<Ranked>& out,
                 std::vector<std::size_t>& retry) {
    std::vector<llm::ScoreRequest> reqs;
    reqs.reserve(idx.size());
    for (auto i : idx) {
      llm::ScoreRequest req;
      req.context = render(queries[i], out[i]);
      const auto n = queries[i].candidates.size();
      if (opts_.prompt_form == PromptForm::ItemTokens) {
        req.token_continuations = item_model::candidate_continuations(queries[i].candidates);
      } else if (opts_.score_target == ScoreTarget::Title) {
        req.continuations = candidate_titles(queries[i]);
      } else {
        for (std::size_t k = 1; k <= n; ++k) req.continuations.push_back("[" + std::to_string(k) + "]");
      }
      reqs.push_back(std::move(req));
    }
    const auto t0 = Clock::now();
    const auto res = backend_.score(reqs);
    model_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
    for (std::size_t k = 0; k < idx.size(); ++k) {
      const auto i = idx[k];
      Ranked& r = out[i];
      const auto& s = res[k];
      if (!s.ok() && s.context_overflow && drop_one(queries[i], r)) {
        retry.push_back(i);
        continue;
      }
      r.answer_format = "score";
      if (!s.ok()) {
        r.error = s.error;
        r.finish = "error";
        r.answer_format = "error";
        continue;
      }
      std::vector<double> v = s.logprobs;
      r.n_prompt_tokens = s.n_context_tokens;
      for (std::size_t c = 0; c < v.size(); ++c) {
        if (opts_.score_norm == ScoreNorm::Mean && s.n_tokens[c] > 0) v[c] /= s.n_tokens[c];
        r.n_scored_tokens += s.n_tokens[c];
      }
      std::vector<int> order(v.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return v[static_cast<std::size_t>(a)] > v[static_cast<std::size_t>(b)]; });
      if (order.size() > static_cast<std::size_t>(opts_.list_length))
        order.resize(static_cast<std::size_t>(opts_.list_length));
      r.ranking = std::move(order);
      r.valid = !r.ranking.empty();
    }
  }

  const data::Dataset& dataset_;
  llm::Backend& backend_;
  LlmRankerOptions opts_;
  prompt::Template template_;
  bool with_demo_ = false;
  double model_s_ = 0;
};

class BaselineRanker final : public Ranker {
 public:
  BaselineRanker(const data::Dataset& dataset, Method method, const baselines::BaselineOptions& o, int list_length)
      : list_length_(list_length) {
    if (needs_llm(method)) throw OptionError("--method", std::string(method_name(method)) + " needs a model");
    if (method == Method::External) throw OptionError("--method", "external needs --scores (lrgd/external.h)");
    if (list_length < 1) throw OptionError("--list-length", "must be >= 1");
    model_ = baselines::make_baseline(method_name(method), dataset, o);
  }

  std::vector<Ranked> rank(std::span<const Query> queries) override {
    std::vector<Ranked> out(queries.size());
    for (std::size_t i = 0; i < queries.size(); ++i) {
      const Query& q = queries[i];
      baselines::Query bq{q.history, q.candidates, (static_cast<std::uint64_t>(q.user) << 32) | q.trial};
      Ranked& r = out[i];
      for (const std::size_t p : model_->rank_positions(bq, list_length_)) r.ranking.push_back(static_cast<int>(p));
      r.valid = true;
      r.answer_format = "baseline";
    }
    return out;
  }

 private:
  std::unique_ptr<baselines::Recommender> model_;
  int list_length_;
};

}  // namespace

std::unique_ptr<Ranker> make_llm_ranker(const data::Dataset& dataset, llm::Backend& backend,
                                        const LlmRankerOptions& options) {
  return std::make_unique<LlmRanker>(dataset, backend, options);
}

std::unique_ptr<Ranker> make_baseline_ranker(const data::Dataset& dataset, Method method,
                                             const baselines::BaselineOptions& options, int list_length) {
  return std::make_unique<BaselineRanker>(dataset, method, options, list_length);
}

}  // namespace lrgd::rec
