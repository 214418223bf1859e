#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "lrgd/rng.h"

namespace {

TEST(Rng, SameSeedSameStream) {
  lrgd::Rng a(7), b(7), c(8);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    EXPECT_NE(x, c.next_u64());
  }
}

TEST(Rng, KnownFirstValuesAreStableAcrossPlatforms) {
  // Golden values: a change here changes every sampled protocol; do not update lightly.
  // Computed independently (a Python splitmix64 + xoshiro256** + Lemire reference), not by
  // this code.
  lrgd::Rng r(42);
  EXPECT_EQ(r.next_u64(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(r.next_u64(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(r.next_u64(), 0xae17533239e499a1ULL);
  lrgd::Rng u(7);
  std::vector<std::uint64_t> draws;
  for (int i = 0; i < 5; ++i) draws.push_back(u.uniform(50));
  EXPECT_EQ(draws, (std::vector<std::uint64_t>{35, 13, 41, 49, 49}));
  EXPECT_EQ(lrgd::hash64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(lrgd::hash64("a"), 0xaf63dc4c8601ec8cULL);
}

TEST(Rng, UniformIsInRangeAndRoughlyFlat) {
  lrgd::Rng r(1);
  std::vector<int> counts(10, 0);
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const auto v = r.uniform(10);
    ASSERT_LT(v, 10u);
    ++counts[v];
  }
  for (int c : counts) EXPECT_NEAR(c, n / 10, 600);  // ~6 sigma
}

TEST(Rng, NormalHasUnitMoments) {
  lrgd::Rng r(3);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal();
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
}

TEST(Rng, ShuffleIsAPermutationAndSeeded) {
  std::vector<int> a(50), b(50);
  std::iota(a.begin(), a.end(), 0);
  b = a;
  lrgd::Rng r1(5), r2(5);
  r1.shuffle(std::span<int>(a));
  r2.shuffle(std::span<int>(b));
  EXPECT_EQ(a, b);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i);
  EXPECT_NE(a, sorted);
}

TEST(Rng, DeriveSeparatesStreams) {
  auto a = lrgd::Rng::derive(1, "users");
  auto b = lrgd::Rng::derive(1, "candidates");
  auto c = lrgd::Rng::derive(1, "users", 1);
  const auto x = a.next_u64();
  EXPECT_NE(x, b.next_u64());
  EXPECT_NE(x, c.next_u64());
  EXPECT_EQ(x, lrgd::Rng::derive(1, "users").next_u64());
}

}  // namespace
