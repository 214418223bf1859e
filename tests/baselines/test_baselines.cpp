#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "lrgd/baselines.h"
#include "lrgd/error.h"

namespace b = lrgd::baselines;
using lrgd::data::ItemIndex;

namespace {

// Training parts (holdout 2): [0,1,2] [1,2,3] [2,3,1] [5,2,3]. Items 4 and 6 occur only
// as validation/test targets, so they must count zero.
lrgd::data::Dataset toy() {
  lrgd::data::Dataset d;
  d.name = "toy";
  d.items.resize(7);
  d.user_ids = {"a", "b", "c", "d"};
  d.sequences = {{0, 1, 2, 3, 4}, {1, 2, 3, 5, 6}, {2, 3, 1, 4, 0}, {5, 2, 3, 6, 1}};
  return d;
}

TEST(Baselines, PopularityCountsTrainingOnly) {
  const auto d = toy();
  const auto pop = b::make_baseline("pop", d);
  EXPECT_EQ(pop->name(), "pop");
  const std::vector<std::uint32_t> expected = {1, 3, 4, 3, 0, 1, 0};
  for (ItemIndex i = 0; i < 7; ++i) EXPECT_EQ(pop->popularity(i), expected[static_cast<std::size_t>(i)]) << i;
  // Ties (3 vs 1, 4 vs 6) keep the candidates' order.
  const std::vector<ItemIndex> candidates = {4, 3, 2, 6, 1};
  EXPECT_EQ(pop->rank({{}, candidates, 0}, 0), (std::vector<ItemIndex>{2, 3, 1, 4, 6}));
  EXPECT_EQ(pop->rank({{}, candidates, 0}, 2), (std::vector<ItemIndex>{2, 3}));
  EXPECT_EQ(pop->rank_positions({{}, candidates, 0}, 0), (std::vector<std::size_t>{2, 1, 4, 0, 3}));
  // A repeated candidate (--negatives uniform-all): both copies ranked, at distinct positions.
  const std::vector<ItemIndex> repeated = {4, 2, 6, 2};
  EXPECT_EQ(pop->rank_positions({{}, repeated, 0}, 0), (std::vector<std::size_t>{1, 3, 0, 2}));
  EXPECT_EQ(pop->rank({{}, repeated, 0}, 3), (std::vector<ItemIndex>{2, 2, 4}));
  b::BaselineOptions all;
  all.holdout = 0;
  EXPECT_EQ(b::make_baseline("pop", d, all)->popularity(4), 2u);
}

TEST(Baselines, MarkovUsesLastItemThenPopularity) {
  const auto d = toy();
  const auto m = b::MarkovRecommender(d, b::BaselineOptions{});
  // Transitions: 0→1, 1→2 (x2), 2→3 (x3), 3→1, 5→2.
  EXPECT_DOUBLE_EQ(m.transition_probability(2, 3), 1.0);
  EXPECT_DOUBLE_EQ(m.transition_probability(1, 2), 1.0);
  EXPECT_DOUBLE_EQ(m.transition_probability(3, 4), 0.0);  // 3→4 is a held-out transition
  const std::vector<ItemIndex> history = {0, 2};
  const std::vector<ItemIndex> candidates = {1, 5, 3, 0};
  // 3 is reached from 2; the rest tie at 0 and fall back to popularity (1: 3, then 5 and 0 at 1).
  EXPECT_EQ(m.rank({history, candidates, 0}, 10), (std::vector<ItemIndex>{3, 1, 5, 0}));
}

TEST(Baselines, MarkovWindowDecaysEarlierItems) {
  const auto d = toy();
  b::BaselineOptions o;
  o.markov_window = 2;
  o.markov_decay = 0.5;
  const b::MarkovRecommender m(d, o);
  const std::vector<ItemIndex> history = {3, 5};  // last 5 → 2; before it 3 → 1
  const std::vector<ItemIndex> candidates = {0, 1, 2};
  const auto s = m.score({history, candidates, 0});
  EXPECT_EQ(s, (std::vector<double>{0.0, 0.5, 1.0}));
  EXPECT_EQ(m.rank({history, candidates, 0}, 3), (std::vector<ItemIndex>{2, 1, 0}));
}

TEST(Baselines, RandomIsSeededPerQuery) {
  const auto d = toy();
  const auto r1 = b::make_baseline("random", d);
  const auto r2 = b::make_baseline("random", d);
  std::vector<ItemIndex> candidates = {0, 1, 2, 3, 4, 5, 6};
  const auto a = r1->rank({{}, candidates, 7}, 0);
  EXPECT_EQ(a, r2->rank({{}, candidates, 7}, 0));  // same seed and key
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, candidates);  // a permutation
  bool differs = false;
  for (std::uint64_t key = 8; key < 20 && !differs; ++key) differs = r1->rank({{}, candidates, key}, 0) != a;
  EXPECT_TRUE(differs);
  b::BaselineOptions other;
  other.seed = 43;
  EXPECT_NE(b::make_baseline("random", d, other)->rank({{}, candidates, 7}, 0), a);
}

TEST(Baselines, RandomHitRateIsUniform) {
  // Over many queries the target (candidate 0 of 50) lands in the top 10 about 20% of the time.
  const auto d = toy();
  const auto r = b::make_baseline("random", d);
  std::vector<ItemIndex> candidates(50);
  for (std::size_t i = 0; i < 50; ++i) candidates[i] = static_cast<ItemIndex>(i % 7);
  int hits = 0;
  for (std::uint64_t key = 0; key < 4000; ++key) {
    const auto s = r->score({{}, candidates, key});
    const auto better = std::count_if(s.begin(), s.end(), [&](double v) { return v > s[0]; });
    hits += better < 10 ? 1 : 0;
  }
  EXPECT_NEAR(hits / 4000.0, 0.2, 0.03);
}

TEST(Baselines, ErrorsAndNames) {
  const auto d = toy();
  EXPECT_EQ(b::baseline_names(), (std::vector<std::string>{"random", "pop", "markov"}));
  EXPECT_THROW(b::make_baseline("sasrec", d), lrgd::OptionError);
  b::BaselineOptions bad;
  bad.markov_window = 0;
  EXPECT_THROW(b::make_baseline("markov", d, bad), lrgd::OptionError);
  bad = {};
  bad.markov_decay = 1.5;
  EXPECT_THROW(b::make_baseline("markov", d, bad), lrgd::OptionError);
  const std::vector<ItemIndex> outside = {9};
  EXPECT_THROW(b::make_baseline("pop", d)->rank({{}, outside, 0}), std::invalid_argument);
}

}  // namespace
