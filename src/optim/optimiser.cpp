// Stage 2 and the K-path loop (Optimiser), the `--method lrgd` ranker and its cost report.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "lrgd/error.h"
#include "lrgd/metrics.h"
#include "lrgd/optim.h"
#include "lrgd/rng.h"

namespace lrgd::optim {

namespace {

std::uint64_t user_path_key(data::UserIndex user, int path) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(user)) << 8) | static_cast<std::uint64_t>(path);
}

int target_rank(const rec::Ranked& r, const std::vector<ItemIndex>& candidates, ItemIndex target) {
  const auto pos = std::find(candidates.begin(), candidates.end(), target) - candidates.begin();
  std::vector<std::int32_t> ranking(r.ranking.begin(), r.ranking.end());
  return metrics::rank_of(ranking, static_cast<std::int32_t>(pos));
}

void set_demo(rec::Query& q, const Demo& d) {
  q.demo_history = d.history;
  q.demo_target = d.target;
  q.demo_explanation = d.explanation;
}

void set_perturbation(rec::Query& q, const Demo& d) {
  q.perturbation_history = d.history;
  q.perturbation_target = d.target;
  q.perturbation_explanation = d.explanation;
}

void clear_demo(rec::Query& q) {
  q.demo_history.clear();
  q.demo_target = data::kNoItem;
  q.demo_explanation.clear();
}

// Queries with a demonstration go to `icl`, the others (users without any window) to
// `zsl`; the answers come back in the queries' order.
std::vector<rec::Ranked> rank_with_or_without_demo(rec::Ranker& icl, rec::Ranker& zsl,
                                                   std::vector<rec::Query> queries) {
  std::vector<rec::Query> with_demo, without;
  std::vector<std::size_t> with_idx, without_idx;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    const bool has_demo = !queries[i].demo_history.empty() && queries[i].demo_target != data::kNoItem;
    (has_demo ? with_demo : without).push_back(std::move(queries[i]));
    (has_demo ? with_idx : without_idx).push_back(i);
  }
  std::vector<rec::Ranked> out(queries.size());
  if (!with_demo.empty()) {
    auto r = icl.rank(with_demo);
    for (std::size_t k = 0; k < r.size(); ++k) out[with_idx[k]] = std::move(r[k]);
  }
  if (!without.empty()) {
    auto r = zsl.rank(without);
    for (std::size_t k = 0; k < r.size(); ++k) out[without_idx[k]] = std::move(r[k]);
  }
  return out;
}

}  // namespace

std::uint64_t generation_seed(std::uint64_t seed, data::UserIndex user, int path, int round) {
  return Rng::derive(seed, "lrgd/generate/" + std::to_string(round), user_path_key(user, path)).next_u64();
}

bool Optimiser::stall(const std::vector<std::optional<memory::Entry>>& path_rows, int round, double score) const {
  // The window opens after the path's last collapse (a collapse answered by P, or just
  // noted without P), so one stall is not declared again every following round.
  int start = 0;
  for (int q = round - 1; q >= 0; --q)
    if (path_rows[static_cast<std::size_t>(q)]->collapsed) {
      start = q + 1;
      break;
    }
  const int w = opts_.collapse_window;
  if (round - start < w) return false;
  double best_before = 0, best_now = score;
  for (int q = start; q < round; ++q) {
    const double sq = path_rows[static_cast<std::size_t>(q)]->score;
    if (q <= round - w) best_before = std::max(best_before, sq);
    best_now = std::max(best_now, sq);
  }
  return best_now < 1.0 && best_now - best_before < opts_.collapse_margin;
}

Optimiser::Optimiser(const data::Dataset& ds, rec::Ranker& recommender, Generator& generator, memory::Store& store,
                     Options options, std::string dataset_key, std::string variant, std::string model_id,
                     llm::Backend* backend)
    : ds_(ds),
      recommender_(recommender),
      generator_(generator),
      store_(store),
      opts_(std::move(options)),
      dataset_key_(std::move(dataset_key)),
      variant_(std::move(variant)),
      model_id_(std::move(model_id)),
      backend_(backend),
      item_ids_(data::index_item_ids(ds)) {
  if (opts_.paths < 1) throw OptionError("--paths", "must be >= 1");
  if (opts_.rounds < 1) throw OptionError("--rounds", "must be >= 1");
  if (opts_.paths > 255) throw OptionError("--paths", "must be <= 255");
  if (opts_.budget < 0) throw OptionError("--budget", "must be >= 0");
  if (opts_.budget > 0 && opts_.budget < opts_.paths)
    throw OptionError("--budget", "must give every path a round (>= --paths)");
  if (opts_.collapse_window < 1) throw OptionError("--collapse-window", "must be >= 1");
  if (!(opts_.collapse_margin >= 0)) throw OptionError("--collapse-margin", "must be >= 0");
}

std::vector<memory::Entry> Optimiser::optimise(std::span<const protocol::PreparedUser* const> users) {
  const int K = opts_.paths;
  const int R = opts_.max_rounds();
  const auto usage0 = backend_ != nullptr ? backend_->usage() : llm::Usage{};
  const auto t0 = std::chrono::steady_clock::now();
  struct State {
    const protocol::PreparedUser* u = nullptr;
    std::vector<std::vector<std::optional<memory::Entry>>> rows;  // [path][round]
    std::vector<std::vector<Demo>> demos;
  };
  std::vector<State> st(users.size());
  for (std::size_t i = 0; i < users.size(); ++i) {
    auto& s = st[i];
    s.u = users[i];
    s.rows.assign(static_cast<std::size_t>(K), std::vector<std::optional<memory::Entry>>(static_cast<std::size_t>(R)));
    s.demos.assign(static_cast<std::size_t>(K), std::vector<Demo>(static_cast<std::size_t>(R)));
    memory::Filter f;
    f.dataset = dataset_key_;
    f.variant = variant_;
    f.user = s.u->user_id;
    const bool first_time = seen_users_.insert(s.u->user_id).second;
    for (auto& e : store_.list(f)) {
      if (e.path >= K || e.round >= opts_.rounds_of(e.path)) continue;
      const auto p = static_cast<std::size_t>(e.path), r = static_cast<std::size_t>(e.round);
      s.demos[p][r] = demo_from_json(item_ids_, e.demo);
      s.rows[p][r] = std::move(e);
      if (first_time) ++cost_.n_rounds_resumed;
    }
    if (first_time) ++cost_.n_users;
  }
  for (int r = 0; r < R; ++r) {
    struct Pending {
      std::size_t ui;
      int path;
      int pert_path = -1;
      int pert_round = -1;
    };
    std::vector<Pending> pending;
    std::vector<GenerationRequest> reqs;
    for (std::size_t ui = 0; ui < st.size(); ++ui) {
      auto& s = st[ui];
      for (int p = 0; p < K; ++p) {
        const auto pu = static_cast<std::size_t>(p), ru = static_cast<std::size_t>(r);
        if (r >= opts_.rounds_of(p) || s.rows[pu][ru]) continue;
        if (r > 0 && !s.rows[pu][ru - 1]) throw Error("lrgd: memory rows out of order for user " + s.u->user_id);
        GenerationRequest g;
        g.user = s.u;
        g.path = p;
        g.round = r;
        g.seed = generation_seed(opts_.seed, s.u->user, p, r);
        std::vector<int> eff;
        for (int q = 0; q < r; ++q)
          if (s.rows[pu][static_cast<std::size_t>(q)]->effective) eff.push_back(q);
        std::stable_sort(eff.begin(), eff.end(), [&](int a, int b) {
          return s.rows[pu][static_cast<std::size_t>(a)]->score > s.rows[pu][static_cast<std::size_t>(b)]->score;
        });
        for (int q : eff) {
          g.path_memory.push_back(s.demos[pu][static_cast<std::size_t>(q)]);
          g.path_memory_scores.push_back(s.rows[pu][static_cast<std::size_t>(q)]->score);
        }
        if (r > 0) {
          g.previous = &s.demos[pu][ru - 1];
          g.previous_score = s.rows[pu][ru - 1]->score;
        }
        Pending pe{ui, p};
        if (opts_.perturbation && K > 1 && r > 0) {
          const auto& prev = *s.rows[pu][ru - 1];
          if (prev.collapsed) {
            auto rng = Rng::derive(opts_.seed, "lrgd/perturb/" + std::to_string(r), user_path_key(s.u->user, p));
            int j = static_cast<int>(rng.uniform(static_cast<std::uint64_t>(K - 1)));
            if (j >= p) ++j;
            pe.pert_path = j;
            pe.pert_round = r - 1;
            // A fresh P reaches stage 1 too (the generator is told to move away from it).
            g.perturbation = &s.demos[static_cast<std::size_t>(j)][ru - 1];
          } else if (prev.perturbation_path >= 0) {
            // The path keeps its P until the next collapse (section 3.6: P joins the path's prompts).
            pe.pert_path = prev.perturbation_path;
            pe.pert_round = prev.perturbation_round;
          }
        }
        pending.push_back(pe);
        reqs.push_back(std::move(g));
      }
    }
    if (pending.empty()) continue;
    const auto gens = generator_.generate(reqs);
    std::vector<rec::Query> queries;
    std::vector<std::size_t> asked;
    for (std::size_t k = 0; k < pending.size(); ++k) {
      const auto& pe = pending[k];
      const auto& s = st[pe.ui];
      if (gens[k].demo.empty()) continue;
      rec::Query q;
      q.user = s.u->user;
      q.trial = 0;
      q.history = s.u->valid_history;
      q.candidates = s.u->valid_candidates;
      q.target = s.u->valid_target;
      set_demo(q, gens[k].demo);
      if (pe.pert_path >= 0)
        set_perturbation(q, s.demos[static_cast<std::size_t>(pe.pert_path)][static_cast<std::size_t>(pe.pert_round)]);
      queries.push_back(std::move(q));
      asked.push_back(k);
    }
    const auto ranked = queries.empty() ? std::vector<rec::Ranked>{} : recommender_.rank(queries);
    std::vector<memory::Entry> fresh(pending.size());
    std::vector<const rec::Ranked*> by_pending(pending.size(), nullptr);
    for (std::size_t a = 0; a < asked.size(); ++a) by_pending[asked[a]] = &ranked[a];
    for (std::size_t k = 0; k < pending.size(); ++k) {
      const auto& pe = pending[k];
      auto& s = st[pe.ui];
      const auto pu = static_cast<std::size_t>(pe.path), ru = static_cast<std::size_t>(r);
      auto& e = fresh[k];
      e.dataset = dataset_key_;
      e.variant = variant_;
      e.user = s.u->user_id;
      e.path = pe.path;
      e.round = r;
      e.text = demo_text(ds_, gens[k].demo);
      e.demo = demo_json(ds_, gens[k].demo);
      e.model = model_id_;
      e.generator_tokens = gens[k].n_tokens;
      cost_.generator_tokens += gens[k].n_tokens;
      cost_.generator_attempts += static_cast<std::uint64_t>(gens[k].n_attempts);
      cost_.generator_invalid += static_cast<std::uint64_t>(gens[k].n_invalid);
      if (gens[k].n_attempts > 0 && gens[k].demo.empty()) ++cost_.generator_failed;
      if (const auto* rk = by_pending[k]) {
        e.target_rank = target_rank(*rk, s.u->valid_candidates, s.u->valid_target);
        e.recommender_tokens =
            static_cast<std::uint64_t>(rk->n_prompt_tokens + rk->n_scored_tokens + rk->n_generated_tokens);
        cost_.validation_tokens += e.recommender_tokens;
      }
      e.score = demonstration_quality(e.target_rank, opts_.quality);
      e.effective = e.target_rank > 0;
      if (pe.pert_path >= 0) {
        e.perturbation_path = pe.pert_path;
        e.perturbation_round = pe.pert_round;
        ++cost_.n_perturbed;
      }
      if (r > 0) {
        const auto& prev = *s.rows[pu][ru - 1];
        e.similarity = token_jaccard(e.text, prev.text);
        const bool similar = e.similarity > opts_.collapse_threshold;
        const bool stalled = stall(s.rows[pu], r, e.score);
        e.collapsed = opts_.collapse == CollapseRule::Similarity ? similar
                      : opts_.collapse == CollapseRule::Stall    ? stalled
                                                                 : (similar || stalled);
        ++cost_.n_collapse_checks;
        if (e.collapsed) ++cost_.n_collapses;
        if (similar) ++cost_.n_collapses_similar;
        if (stalled) ++cost_.n_collapses_stall;
      }
      s.demos[pu][ru] = gens[k].demo;
    }
    store_.put(fresh);  // one transaction per round: a kill loses at most this round
    // Only slow optimisations report (a text model's round takes minutes; an item-token
    // model's batch of 64 users a second).
    const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress_ && elapsed_s >= 2.0) {
      double sum_s = 0;
      std::size_t n_effective = 0, n_collapsed = 0;
      for (const auto& e : fresh) {
        sum_s += e.score;
        n_effective += e.effective ? 1 : 0;
        n_collapsed += e.collapsed ? 1 : 0;
      }
      fmt::print(stderr,
                 "lrgd: round {}/{}: {} demonstrations ({} users x {} paths), mean S {:.3f}, effective {}, "
                 "collapsed {}, {:.1f}s\n",
                 r + 1, R, fresh.size(), st.size(), K, sum_s / static_cast<double>(fresh.size()), n_effective,
                 n_collapsed, elapsed_s);
    }
    for (std::size_t k = 0; k < pending.size(); ++k) {
      auto& s = st[pending[k].ui];
      s.rows[static_cast<std::size_t>(pending[k].path)][static_cast<std::size_t>(r)] = std::move(fresh[k]);
      ++cost_.n_rounds_computed;
    }
  }
  if (backend_ != nullptr) cost_.optimisation_usage += backend_->usage() - usage0;
  std::vector<memory::Entry> out;
  for (auto& s : st)
    for (auto& path : s.rows)
      for (auto& e : path)
        if (e) out.push_back(std::move(*e));
  return out;
}

namespace {

// The stage-1 generator by name; OptionError("--generator") for an unknown one.
std::unique_ptr<Generator> make_generator(const data::Dataset& ds, llm::Backend& backend, const std::string& name,
                                          const std::string& llm_template, std::uint64_t seed) {
  if (name == "template") return make_template_generator(ds);
  if (name == "llm") return make_llm_generator(ds, backend, {.template_text = llm_template, .seed = seed});
  throw OptionError("--generator", "unknown generator '" + name + "' (template, llm)");
}

// The recommender with a demonstration (ICL prompt) and without one (zero-shot), for the
// users whose history leaves no window.
std::unique_ptr<rec::Ranker> make_icl(const data::Dataset& ds, llm::Backend& backend, rec::LlmRankerOptions o) {
  o.method = rec::Method::Icl;
  return rec::make_llm_ranker(ds, backend, o);
}
std::unique_ptr<rec::Ranker> make_zsl(const data::Dataset& ds, llm::Backend& backend, rec::LlmRankerOptions o) {
  o.method = rec::Method::Zsl;
  o.template_name = "zsl";
  return rec::make_llm_ranker(ds, backend, o);
}

class LrgdRanker final : public rec::Ranker {
 public:
  LrgdRanker(const data::Dataset& ds, llm::Backend& backend, const rec::LlmRankerOptions& icl,
             const protocol::ProtocolOptions& protocol, const LrgdRankerOptions& o)
      : ds_(ds), backend_(backend), opts_(o), store_(o.memory_path), item_ids_(data::index_item_ids(ds)) {
    ranker_ = make_icl(ds, backend, icl);
    zsl_ = make_zsl(ds, backend, icl);
    generator_ = make_generator(ds, backend, o.optim.generator, o.generator_template, o.optim.seed);
    protocol::ProtocolOptions po = protocol;
    po.trial = 0;  // optimised once per user, on trial 0's validation candidates
    split_ = protocol::prepare_split(ds, po);
    for (std::size_t i = 0; i < split_.users.size(); ++i) by_user_[split_.users[i].user] = i;
    optimiser_ = std::make_unique<Optimiser>(ds, *ranker_, *generator_, store_, o.optim, dataset_key(ds), o.variant,
                                             backend.model_id(), &backend);
    optimiser_->set_progress(o.progress);
  }

  double model_seconds() const override { return ranker_->model_seconds() + zsl_->model_seconds(); }

  std::vector<rec::Ranked> rank(std::span<const rec::Query> queries) override {
    std::vector<const protocol::PreparedUser*> users;
    for (const auto& q : queries) {
      const auto it = by_user_.find(q.user);
      if (it == by_user_.end())
        throw Error("lrgd: user " + ds_.user_ids.at(static_cast<std::size_t>(q.user)) +
                    " is not in the protocol's draw");
      const auto* u = &split_.users[it->second];
      if (std::find(users.begin(), users.end(), u) == users.end()) users.push_back(u);
    }
    const auto rows = optimiser_->optimise(users);
    std::map<std::string, std::vector<memory::Entry>> by_id;
    for (const auto& e : rows)
      if (opts_.test_rounds <= 0 || e.round < opts_.test_rounds) by_id[e.user].push_back(e);
    const auto usage0 = backend_.usage();
    std::vector<rec::Query> prepared(queries.begin(), queries.end());
    for (auto& q : prepared) {
      const auto& urows = by_id[ds_.user_ids.at(static_cast<std::size_t>(q.user))];
      const auto* best = best_entry(urows);
      const Demo d = best != nullptr ? demo_from_json(item_ids_, best->demo) : Demo{};
      if (d.empty()) {
        clear_demo(q);
        continue;
      }
      set_demo(q, d);
      if (best->perturbation_path >= 0) {
        for (const auto& e : urows)
          if (e.path == best->perturbation_path && e.round == best->perturbation_round)
            set_perturbation(q, demo_from_json(item_ids_, e.demo));
      }
    }
    auto out = rank_with_or_without_demo(*ranker_, *zsl_, std::move(prepared));
    Cost c = optimiser_->cost();
    test_usage_ += backend_.usage() - usage0;
    for (const auto& r : out)
      test_tokens_ += static_cast<std::uint64_t>(r.n_prompt_tokens + r.n_scored_tokens + r.n_generated_tokens);
    c.test_usage = test_usage_;
    c.test_tokens = test_tokens_;
    if (opts_.cost_out) *opts_.cost_out = c;
    return out;
  }

 private:
  const data::Dataset& ds_;
  llm::Backend& backend_;
  LrgdRankerOptions opts_;
  memory::Store store_;
  data::IdIndex item_ids_;
  std::unique_ptr<rec::Ranker> ranker_, zsl_;
  std::unique_ptr<Generator> generator_;
  protocol::PreparedSplit split_;
  std::map<data::UserIndex, std::size_t> by_user_;
  std::unique_ptr<Optimiser> optimiser_;
  llm::Usage test_usage_;
  std::uint64_t test_tokens_ = 0;
};

// ICL with LRGD's round-0 demonstration of path 0 (the generator's first draw, before any
// feedback), so that LRGD - ICL measures the optimisation alone.
class FirstRoundIclRanker final : public rec::Ranker {
 public:
  FirstRoundIclRanker(const data::Dataset& ds, llm::Backend& backend, const rec::LlmRankerOptions& icl,
                      const protocol::ProtocolOptions& protocol, const FirstRoundIclOptions& o)
      : ds_(ds), opts_(o) {
    icl_ = make_icl(ds, backend, icl);
    zsl_ = make_zsl(ds, backend, icl);
    generator_ = make_generator(ds, backend, o.generator, o.generator_template, o.seed);
    protocol::ProtocolOptions po = protocol;
    po.trial = 0;  // as LRGD: demonstrations come from trial 0's validation split
    split_ = protocol::prepare_split(ds, po);
    for (std::size_t i = 0; i < split_.users.size(); ++i) by_user_[split_.users[i].user] = i;
  }

  double model_seconds() const override { return icl_->model_seconds() + zsl_->model_seconds(); }

  std::vector<rec::Ranked> rank(std::span<const rec::Query> queries) override {
    // Generate the demonstrations this batch still lacks (once per user, whatever the trial).
    std::vector<GenerationRequest> reqs;
    std::vector<data::UserIndex> req_users;
    for (const auto& q : queries) {
      if (demos_.contains(q.user) || std::find(req_users.begin(), req_users.end(), q.user) != req_users.end()) continue;
      const auto it = by_user_.find(q.user);
      if (it == by_user_.end())
        throw Error("icl: user " + ds_.user_ids.at(static_cast<std::size_t>(q.user)) +
                    " is not in the protocol's draw");
      GenerationRequest g;
      g.user = &split_.users[it->second];
      g.seed = generation_seed(opts_.seed, q.user, 0, 0);
      reqs.push_back(std::move(g));
      req_users.push_back(q.user);
    }
    if (!reqs.empty()) {
      auto gens = generator_->generate(reqs);
      for (std::size_t k = 0; k < gens.size(); ++k) demos_[req_users[k]] = std::move(gens[k].demo);
    }
    std::vector<rec::Query> prepared(queries.begin(), queries.end());
    for (auto& q : prepared) {
      const Demo& d = demos_.at(q.user);
      if (d.empty())
        clear_demo(q);
      else
        set_demo(q, d);
    }
    return rank_with_or_without_demo(*icl_, *zsl_, std::move(prepared));
  }

 private:
  const data::Dataset& ds_;
  FirstRoundIclOptions opts_;
  std::unique_ptr<rec::Ranker> icl_, zsl_;
  std::unique_ptr<Generator> generator_;
  protocol::PreparedSplit split_;
  std::map<data::UserIndex, std::size_t> by_user_;
  std::map<data::UserIndex, Demo> demos_;
};

nlohmann::ordered_json usage_json(const llm::Usage& u) {
  return {{"n_requests", u.n_requests},           {"n_cache_hits", u.n_cache_hits},
          {"n_prompt_tokens", u.n_prompt_tokens}, {"n_reused_tokens", u.n_reused_tokens},
          {"n_scored_tokens", u.n_scored_tokens}, {"n_generated_tokens", u.n_generated_tokens}};
}

}  // namespace

std::unique_ptr<rec::Ranker> make_lrgd_ranker(const data::Dataset& ds, llm::Backend& backend,
                                              const rec::LlmRankerOptions& icl,
                                              const protocol::ProtocolOptions& protocol,
                                              const LrgdRankerOptions& options) {
  return std::make_unique<LrgdRanker>(ds, backend, icl, protocol, options);
}

std::unique_ptr<rec::Ranker> make_first_round_icl_ranker(const data::Dataset& ds, llm::Backend& backend,
                                                         const rec::LlmRankerOptions& icl,
                                                         const protocol::ProtocolOptions& protocol,
                                                         const FirstRoundIclOptions& options) {
  return std::make_unique<FirstRoundIclRanker>(ds, backend, icl, protocol, options);
}

std::string cost_json(const Cost& c) {
  nlohmann::ordered_json j;
  const double n = c.n_users > 0 ? static_cast<double>(c.n_users) : 1.0;
  j["n_users"] = c.n_users;
  j["n_rounds_computed"] = c.n_rounds_computed;
  j["n_rounds_resumed"] = c.n_rounds_resumed;
  j["n_collapse_checks"] = c.n_collapse_checks;
  j["n_collapses"] = c.n_collapses;
  j["n_collapses_similar"] = c.n_collapses_similar;
  j["n_collapses_stall"] = c.n_collapses_stall;
  j["collapse_rate"] =
      c.n_collapse_checks > 0 ? static_cast<double>(c.n_collapses) / static_cast<double>(c.n_collapse_checks) : 0.0;
  j["n_perturbed"] = c.n_perturbed;
  j["generator_answers"] = {
      {"attempts", c.generator_attempts}, {"invalid", c.generator_invalid}, {"failed", c.generator_failed}};
  j["tokens"] = {{"generator", c.generator_tokens}, {"validation", c.validation_tokens}, {"test", c.test_tokens}};
  j["tokens_per_user"] = {{"generator", static_cast<double>(c.generator_tokens) / n},
                          {"validation", static_cast<double>(c.validation_tokens) / n},
                          {"test", static_cast<double>(c.test_tokens) / n}};
  j["backend"] = {{"optimisation", usage_json(c.optimisation_usage)}, {"test", usage_json(c.test_usage)}};
  const auto reused = c.optimisation_usage.n_reused_tokens + c.test_usage.n_reused_tokens;
  const auto prompt = c.optimisation_usage.n_prompt_tokens + c.test_usage.n_prompt_tokens;
  const auto hits = c.optimisation_usage.n_cache_hits + c.test_usage.n_cache_hits;
  const auto reqs = c.optimisation_usage.n_requests + c.test_usage.n_requests;
  j["saved"] = {{"prefix_reuse_tokens", reused},
                {"prefix_reuse_fraction", prompt > 0 ? static_cast<double>(reused) / static_cast<double>(prompt) : 0.0},
                {"response_cache_hits", hits},
                {"response_cache_hit_rate", reqs > 0 ? static_cast<double>(hits) / static_cast<double>(reqs) : 0.0}};
  return j.dump();
}

}  // namespace lrgd::optim
