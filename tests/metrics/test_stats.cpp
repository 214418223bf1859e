// Reference values: textbook t tables and scipy 1.10 (stats.t, special.betainc,
// stats.ttest_rel, stats.wilcoxon(correction=True)); exact Wilcoxon cases by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "lrgd/metrics.h"

namespace m = lrgd::metrics;

namespace {

TEST(Distributions, IncompleteBeta) {
  EXPECT_NEAR(m::regularized_incomplete_beta(2.5, 0.5, 0.3), 0.01892712407194565, 1e-13);
  EXPECT_NEAR(m::regularized_incomplete_beta(50, 50, 0.45), 0.15865219893709973, 1e-12);
  EXPECT_NEAR(m::regularized_incomplete_beta(0.5, 3, 0.9), 0.9996750253207289, 1e-13);
  EXPECT_NEAR(m::regularized_incomplete_beta(5000, 0.5, 0.999), 0.0015615791602887161, 1e-12);
  EXPECT_NEAR(m::regularized_incomplete_beta(1, 1, 0.37), 0.37, 1e-15);  // uniform
  EXPECT_EQ(m::regularized_incomplete_beta(2, 3, 0.0), 0.0);
  EXPECT_EQ(m::regularized_incomplete_beta(2, 3, 1.0), 1.0);
  EXPECT_THROW(m::regularized_incomplete_beta(0, 3, 0.5), std::invalid_argument);
}

TEST(Distributions, StudentTCdf) {
  EXPECT_NEAR(m::student_t_cdf(1.0, 1), 0.75, 1e-14);  // Cauchy
  EXPECT_NEAR(m::student_t_cdf(0.0, 7), 0.5, 1e-15);
  EXPECT_NEAR(m::student_t_cdf(2.0, 2), 0.908248290463863, 1e-13);  // 1/2 + t / (2 sqrt(2 + t^2))
  EXPECT_NEAR(m::student_t_cdf(-1.5, 5), 0.09695184012123657, 1e-13);
  EXPECT_NEAR(m::student_t_cdf(0.3, 100), 0.6176000598498482, 1e-12);
  EXPECT_NEAR(m::student_t_cdf(3.0, 1000), 0.9986166454778809, 1e-12);
  // Table: t_{0.975, 10} = 2.228, t_{0.95, 20} = 1.725.
  EXPECT_NEAR(m::student_t_cdf(2.228, 10), 0.975, 1e-4);
  EXPECT_NEAR(m::student_t_cdf(1.725, 20), 0.95, 1e-4);
}

TEST(Distributions, StudentTQuantile) {
  EXPECT_NEAR(m::student_t_quantile(0.975, 1), 12.706204736432095, 1e-9);
  EXPECT_NEAR(m::student_t_quantile(0.975, 10), 2.2281388519649385, 1e-10);
  EXPECT_NEAR(m::student_t_quantile(0.975, 30), 2.0422724563012373, 1e-10);
  EXPECT_NEAR(m::student_t_quantile(0.995, 4), 4.604094871415897, 1e-9);
  EXPECT_NEAR(m::student_t_quantile(0.975, 999), 1.9623414611334487, 1e-10);
  EXPECT_NEAR(m::student_t_quantile(0.025, 10), -2.2281388519649385, 1e-10);
}

TEST(Distributions, Normal) {
  EXPECT_NEAR(m::normal_cdf(1.0), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(m::normal_cdf(-2.5), 0.006209665325776132, 1e-15);
}

const std::vector<double> kA = {0.61, 0.43, 0.72, 0.55, 0.30, 0.88, 0.47, 0.51, 0.66, 0.39};
const std::vector<double> kB = {0.52, 0.41, 0.60, 0.58, 0.22, 0.70, 0.49, 0.40, 0.60, 0.31};

TEST(PairedT, MatchesScipy) {
  const auto two = m::paired_t_test(kA, kB);
  EXPECT_NEAR(two.statistic, 3.380746641314718, 1e-12);
  EXPECT_NEAR(two.p_value, 0.00811735540912591, 1e-12);
  EXPECT_EQ(two.n, 10u);
  EXPECT_NEAR(m::paired_t_test(kA, kB, m::Alternative::Greater).p_value, 0.004058677704562955, 1e-12);
  EXPECT_NEAR(m::paired_t_test(kA, kB, m::Alternative::Less).p_value, 0.9959413222954371, 1e-12);
}

TEST(PairedT, EqualMethodsAndDegenerateCases) {
  const auto same = m::paired_t_test(kA, kA);
  EXPECT_EQ(same.p_value, 1.0);
  EXPECT_EQ(same.n_nonzero, 0u);
  const std::vector<double> shifted = {1.5, 2.5, 3.5};
  const std::vector<double> base = {1.0, 2.0, 3.0};
  EXPECT_EQ(m::paired_t_test(shifted, base).p_value, 0.0);
  EXPECT_TRUE(std::isnan(m::paired_t_test(std::vector<double>{1.0}, std::vector<double>{0.0}).p_value));
  EXPECT_THROW(m::paired_t_test(shifted, std::vector<double>{1.0}), std::invalid_argument);
}

TEST(PairedT, BinaryRecallWithTies) {
  const std::vector<double> x = {1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1};
  const std::vector<double> y = {0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1};
  const auto t = m::paired_t_test(x, y);
  EXPECT_NEAR(t.statistic, 2.2811268756929874, 1e-12);
  EXPECT_NEAR(t.p_value, 0.03170841119850267, 1e-12);
  EXPECT_EQ(m::significance_marker(t.p_value), "*");
  // Many zero differences and all |d| tied: normal approximation with tie correction.
  const auto w = m::wilcoxon_signed_rank(x, y);
  EXPECT_FALSE(w.exact);
  EXPECT_EQ(w.n_nonzero, 11u);
  EXPECT_DOUBLE_EQ(w.statistic, 54.0);  // 9 positive of 11 tied ranks, mid-rank 6
  EXPECT_NEAR(w.p_value, 0.03936724062349523, 1e-12);
  EXPECT_NEAR(m::wilcoxon_signed_rank(x, y, m::Alternative::Greater).p_value, 0.019683620311747616, 1e-12);
}

TEST(Wilcoxon, NormalApproximationMatchesScipy) {
  // |d| has one tie (0.02 twice, exactly equal in binary too).
  const auto w = m::wilcoxon_signed_rank(kA, kB, m::Alternative::TwoSided, m::WilcoxonMethod::Normal);
  EXPECT_NEAR(w.p_value, 0.021738681423573, 1e-12);
  EXPECT_DOUBLE_EQ(w.statistic, 50.5);
  EXPECT_NEAR(m::wilcoxon_signed_rank(kA, kB, m::Alternative::Greater, m::WilcoxonMethod::Normal).p_value,
              0.0108693407117865, 1e-12);
  EXPECT_NEAR(m::wilcoxon_signed_rank(kA, kB, m::Alternative::Less, m::WilcoxonMethod::Normal).p_value,
              0.9917327536660386, 1e-12);
  // Auto falls back to the normal approximation because of the tie.
  EXPECT_FALSE(m::wilcoxon_signed_rank(kA, kB).exact);
}

TEST(Wilcoxon, ExactMatchesScipyWithoutTies) {
  const std::vector<double> a = {12, 15, 9, 20, 14, 8, 17, 11, 16, 13, 10, 19};
  const std::vector<double> b = {10, 11, 12, 13, 14.5, 2, 10.5, 4.2, 7.3, 1.1, -1.4, 11.4};
  const auto w = m::wilcoxon_signed_rank(a, b);
  EXPECT_TRUE(w.exact);
  EXPECT_DOUBLE_EQ(w.statistic, 74.0);
  EXPECT_NEAR(w.p_value, 0.00341796875, 1e-15);
  EXPECT_NEAR(m::wilcoxon_signed_rank(a, b, m::Alternative::Less).p_value, 0.998779296875, 1e-15);
  EXPECT_NEAR(m::wilcoxon_signed_rank(a, b, m::Alternative::TwoSided, m::WilcoxonMethod::Normal).p_value,
              0.006801651812875441, 1e-12);
}

TEST(Wilcoxon, ExactSmallCasesByHand) {
  // d = 1..5 all positive: W+ = 15 is the single most extreme of 32 sign patterns.
  const std::vector<double> a = {1, 2, 3, 4, 5};
  const std::vector<double> zero(5, 0.0);
  EXPECT_DOUBLE_EQ(m::wilcoxon_signed_rank(a, zero).p_value, 2.0 / 32.0);
  EXPECT_DOUBLE_EQ(m::wilcoxon_signed_rank(a, zero, m::Alternative::Greater).p_value, 1.0 / 32.0);
  // d = {1, -1, 2, 0}: zero dropped, mid-ranks {1.5, 1.5, 3}, W+ = 4.5.
  // Subset sums of {1.5, 1.5, 3}: 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6 -> P(W+ >= 4.5) = 3/8.
  const std::vector<double> x = {1, -1, 2, 0};
  const std::vector<double> y(4, 0.0);
  const auto w = m::wilcoxon_signed_rank(x, y, m::Alternative::Greater, m::WilcoxonMethod::Exact);
  EXPECT_TRUE(w.exact);
  EXPECT_EQ(w.n, 4u);
  EXPECT_EQ(w.n_nonzero, 3u);
  EXPECT_DOUBLE_EQ(w.statistic, 4.5);
  EXPECT_DOUBLE_EQ(w.p_value, 3.0 / 8.0);
  EXPECT_DOUBLE_EQ(m::wilcoxon_signed_rank(x, y, m::Alternative::TwoSided, m::WilcoxonMethod::Exact).p_value, 0.75);
}

TEST(Wilcoxon, IdenticalMethodsAreNotSignificant) {
  const auto w = m::wilcoxon_signed_rank(kA, kA);
  EXPECT_EQ(w.p_value, 1.0);
  EXPECT_EQ(w.n_nonzero, 0u);
  EXPECT_EQ(m::significance_marker(w.p_value), "");
}

TEST(Wilcoxon, NdcgValuesMatchScipy) {
  auto nd = [](int r) { return m::ndcg_at(r, 10); };
  const std::vector<int> ra = {1, 3, 0, 2, 5, 1, 0, 4, 2, 1, 7, 0, 1, 3, 2};
  const std::vector<int> rb = {2, 3, 1, 0, 5, 4, 0, 6, 1, 3, 9, 2, 0, 3, 4};
  std::vector<double> a, b;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    a.push_back(nd(ra[i]));
    b.push_back(nd(rb[i]));
  }
  EXPECT_NEAR(m::wilcoxon_signed_rank(a, b).p_value, 0.4229080373524843, 1e-12);
  EXPECT_NEAR(m::paired_t_test(a, b).p_value, 0.49272220845320924, 1e-12);
}

}  // namespace

// Holm by hand, the formula of statsmodels multipletests(method="holm"); m = 4 finite values:
// sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06,
// max(0.06, 1*0.04) = 0.06 (monotone step-down).
TEST(Holm, AdjustsStepDownKeepsOrderAndNaN) {
  const std::vector<double> p = {0.01, 0.04, 0.03, 0.005, std::nan("")};
  const auto a = m::holm_adjust(p);
  ASSERT_EQ(a.size(), 5u);
  EXPECT_NEAR(a[0], 0.03, 1e-15);
  EXPECT_NEAR(a[1], 0.06, 1e-15);
  EXPECT_NEAR(a[2], 0.06, 1e-15);
  EXPECT_NEAR(a[3], 0.02, 1e-15);
  EXPECT_TRUE(std::isnan(a[4]));
}

TEST(Holm, CapsAtOneAndHandlesEdges) {
  // sorted 0.3, 0.5, 0.9 -> 0.9, min(1, 2*0.5) = 1, max(1, 0.9) = 1.
  const std::vector<double> p = {0.5, 0.9, 0.3};
  const auto a = m::holm_adjust(p);
  EXPECT_NEAR(a[0], 1.0, 1e-15);
  EXPECT_NEAR(a[1], 1.0, 1e-15);
  EXPECT_NEAR(a[2], 0.9, 1e-15);
  EXPECT_TRUE(m::holm_adjust(std::vector<double>{}).empty());
  EXPECT_EQ(m::holm_adjust(std::vector<double>{0.02}).at(0), 0.02);  // a family of one: unchanged
}
