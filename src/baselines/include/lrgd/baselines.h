// Non-LLM reference rankers over the same candidate sets as the LLM methods: random,
// popularity and a first-order Markov (item-to-item transition) model. Fitted once on the
// training part of every sequence: each user's last `holdout` items (validation and test
// targets) are never counted, so no target leaks into the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lrgd/dataset.h"

namespace lrgd::baselines {

using data::ItemIndex;

struct Query {
  std::span<const ItemIndex> history;     // oldest first
  std::span<const ItemIndex> candidates;  // in the order shown
  std::uint64_t key = 0;                  // identifies the query for seeded rankers, e.g. (user << 32) | trial
};

struct BaselineOptions {
  std::size_t holdout = 2;        // trailing items per user left out of fitting
  std::uint64_t seed = 42;        // random: stream Rng::derive(seed, "baseline/random", query.key)
  std::size_t markov_window = 1;  // markov: how many recent history items vote
  double markov_decay = 0.5;      // markov: weight of the t-th most recent item is decay^t (t = 0: last)
};

class Recommender {
 public:
  virtual ~Recommender() = default;
  virtual std::string_view name() const = 0;
  // One score per candidate, higher is better, in query.candidates order. Throws
  // std::invalid_argument for an item index outside the fitted dataset.
  virtual std::vector<double> score(const Query& query) const = 0;
  // The top k candidates (k <= 0: all), best first: by score, ties by training popularity,
  // then by position in query.candidates (shuffled per user by the protocol).
  std::vector<ItemIndex> rank(const Query& query, int k = 10) const;
  // The same order as positions in query.candidates (distinct even where an item repeats).
  std::vector<std::size_t> rank_positions(const Query& query, int k = 10) const;
  // Training interactions of `item` (0 for unknown items).
  std::uint32_t popularity(ItemIndex item) const;

 protected:
  Recommender(const data::Dataset& dataset, std::size_t holdout);
  void check(const Query& query) const;
  std::vector<std::uint32_t> popularity_;  // by ItemIndex
};

// Uniformly random order, reproducible per (seed, query.key).
class RandomRecommender : public Recommender {
 public:
  RandomRecommender(const data::Dataset& dataset, const BaselineOptions& options);
  std::string_view name() const override { return "random"; }
  std::vector<double> score(const Query& query) const override;

 private:
  std::uint64_t seed_;
};

// Most interacted-with training items first.
class PopularityRecommender : public Recommender {
 public:
  PopularityRecommender(const data::Dataset& dataset, const BaselineOptions& options);
  std::string_view name() const override { return "pop"; }
  std::vector<double> score(const Query& query) const override;
};

// score(c) = sum over the last `window` history items h_t (t = 0 most recent) of
// decay^t * P(c | h_t), with P(j | i) = count(i → j) / count(i → any) over consecutive
// pairs of the training sequences. Candidates never reached fall back to popularity.
class MarkovRecommender : public Recommender {
 public:
  MarkovRecommender(const data::Dataset& dataset, const BaselineOptions& options);
  std::string_view name() const override { return "markov"; }
  std::vector<double> score(const Query& query) const override;
  double transition_probability(ItemIndex from, ItemIndex to) const;

 private:
  std::vector<std::unordered_map<ItemIndex, std::uint32_t>> next_;  // by source item
  std::vector<std::uint32_t> out_;                                  // transitions leaving each item
  std::size_t window_;
  double decay_;
};

// "random" | "pop" | "markov". Throws OptionError("--baseline") for an unknown name and
// OptionError for invalid options (markov_window 0, markov_decay outside [0, 1]).
std::unique_ptr<Recommender> make_baseline(std::string_view name, const data::Dataset& dataset,
                                           const BaselineOptions& options = {});
std::vector<std::string> baseline_names();

}  // namespace lrgd::baselines
