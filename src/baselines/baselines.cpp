#include "lrgd/baselines.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "lrgd/error.h"
#include "lrgd/rng.h"

namespace lrgd::baselines {
namespace {

// The fitted part of one sequence: everything but the last `holdout` items.
std::span<const ItemIndex> training_part(const std::vector<ItemIndex>& sequence, std::size_t holdout) {
  const std::size_t n = sequence.size() > holdout ? sequence.size() - holdout : 0;
  return std::span<const ItemIndex>(sequence).first(n);
}

}  // namespace

Recommender::Recommender(const data::Dataset& dataset, std::size_t holdout) : popularity_(dataset.n_items(), 0) {
  for (const auto& seq : dataset.sequences) {
    for (ItemIndex item : training_part(seq, holdout)) ++popularity_.at(static_cast<std::size_t>(item));
  }
}

std::uint32_t Recommender::popularity(ItemIndex item) const {
  const auto i = static_cast<std::size_t>(item);
  return item >= 0 && i < popularity_.size() ? popularity_[i] : 0;
}

void Recommender::check(const Query& query) const {
  auto bad = [&](ItemIndex i) { return i < 0 || static_cast<std::size_t>(i) >= popularity_.size(); };
  if (std::any_of(query.candidates.begin(), query.candidates.end(), bad) ||
      std::any_of(query.history.begin(), query.history.end(), bad)) {
    throw std::invalid_argument("baseline query refers to an item outside the fitted dataset");
  }
}

std::vector<ItemIndex> Recommender::rank(const Query& query, int k) const {
  std::vector<ItemIndex> out;
  for (const std::size_t p : rank_positions(query, k)) out.push_back(query.candidates[p]);
  return out;
}

std::vector<std::size_t> Recommender::rank_positions(const Query& query, int k) const {
  const auto scores = score(query);
  std::vector<std::size_t> order(query.candidates.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return popularity(query.candidates[a]) > popularity(query.candidates[b]);
  });
  if (k > 0 && order.size() > static_cast<std::size_t>(k)) order.resize(static_cast<std::size_t>(k));
  return order;
}

RandomRecommender::RandomRecommender(const data::Dataset& dataset, const BaselineOptions& options)
    : Recommender(dataset, options.holdout), seed_(options.seed) {}

std::vector<double> RandomRecommender::score(const Query& query) const {
  check(query);
  Rng rng = Rng::derive(seed_, "baseline/random", query.key);
  std::vector<double> out;
  out.reserve(query.candidates.size());
  for (std::size_t i = 0; i < query.candidates.size(); ++i) out.push_back(rng.uniform01());
  return out;
}

PopularityRecommender::PopularityRecommender(const data::Dataset& dataset, const BaselineOptions& options)
    : Recommender(dataset, options.holdout) {}

std::vector<double> PopularityRecommender::score(const Query& query) const {
  check(query);
  std::vector<double> out;
  for (ItemIndex c : query.candidates) out.push_back(static_cast<double>(popularity(c)));
  return out;
}

MarkovRecommender::MarkovRecommender(const data::Dataset& dataset, const BaselineOptions& options)
    : Recommender(dataset, options.holdout),
      next_(dataset.n_items()),
      out_(dataset.n_items(), 0),
      window_(options.markov_window),
      decay_(options.markov_decay) {
  for (const auto& seq : dataset.sequences) {
    const auto train = training_part(seq, options.holdout);
    for (std::size_t t = 1; t < train.size(); ++t) {
      const auto from = static_cast<std::size_t>(train[t - 1]);
      ++next_.at(from)[train[t]];
      ++out_[from];
    }
  }
}

double MarkovRecommender::transition_probability(ItemIndex from, ItemIndex to) const {
  const auto f = static_cast<std::size_t>(from);
  if (from < 0 || f >= next_.size() || out_[f] == 0) return 0.0;
  const auto it = next_[f].find(to);
  return it == next_[f].end() ? 0.0 : static_cast<double>(it->second) / static_cast<double>(out_[f]);
}

std::vector<double> MarkovRecommender::score(const Query& query) const {
  check(query);
  std::vector<double> out(query.candidates.size(), 0.0);
  const std::size_t n = std::min(window_, query.history.size());
  double weight = 1.0;
  for (std::size_t t = 0; t < n; ++t, weight *= decay_) {
    const ItemIndex from = query.history[query.history.size() - 1 - t];
    for (std::size_t c = 0; c < out.size(); ++c) out[c] += weight * transition_probability(from, query.candidates[c]);
  }
  return out;
}

std::vector<std::string> baseline_names() { return {"random", "pop", "markov"}; }

std::unique_ptr<Recommender> make_baseline(std::string_view name, const data::Dataset& dataset,
                                           const BaselineOptions& options) {
  if (options.markov_window < 1) throw OptionError("--markov-window", "must be at least 1");
  if (!(options.markov_decay >= 0.0 && options.markov_decay <= 1.0)) {
    throw OptionError("--markov-decay", "must be in [0, 1]");
  }
  if (name == "random") return std::make_unique<RandomRecommender>(dataset, options);
  if (name == "pop") return std::make_unique<PopularityRecommender>(dataset, options);
  if (name == "markov") return std::make_unique<MarkovRecommender>(dataset, options);
  throw OptionError("--baseline", "unknown baseline '" + std::string(name) + "' (random, pop, markov)");
}

}  // namespace lrgd::baselines
