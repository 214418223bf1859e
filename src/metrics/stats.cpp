// Distributions and paired tests. The incomplete beta follows Numerical Recipes (3rd ed.,
// 6.4: betai/betacf); tests follow scipy.stats so results can be cross-checked.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "lrgd/metrics.h"

namespace lrgd::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Continued fraction for I_x(a, b) by the modified Lentz method.
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIter = 1000000;  // converges in O(sqrt(max(a, b))) steps
  constexpr double kEps = 1e-16;
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxIter; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < kEps) break;
  }
  return h;
}

// Two-sided tail P(|T| >= |t|) of Student's t, computed directly for small p-values.
double t_two_sided_tail(double t, double df) {
  if (std::isinf(t)) return 0.0;
  return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
}

// P(T >= t).
double t_upper_tail(double t, double df) {
  const double half_tail = 0.5 * t_two_sided_tail(t, df);
  return t >= 0 ? half_tail : 1.0 - half_tail;
}

double p_from_tails(double p_less, double p_greater, Alternative alternative) {
  switch (alternative) {
    case Alternative::Less:
      return p_less;
    case Alternative::Greater:
      return p_greater;
    case Alternative::TwoSided:
      break;
  }
  return std::min(1.0, 2.0 * std::min(p_less, p_greater));
}

std::vector<double> differences(std::span<const double> a, std::span<const double> b) {
  if (a.size() != b.size()) throw std::invalid_argument("paired test needs samples of equal length");
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

}  // namespace

double regularized_incomplete_beta(double a, double b, double x) {
  if (!(a > 0.0) || !(b > 0.0) || !(x >= 0.0 && x <= 1.0)) {
    throw std::invalid_argument("incomplete beta needs a, b > 0 and x in [0, 1]");
  }
  if (x == 0.0 || x == 1.0) return x;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  // The fraction converges fast only on this side of the mean; use the symmetry otherwise.
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b;
}

double student_t_cdf(double t, double df) {
  if (!(df > 0.0)) throw std::invalid_argument("t distribution needs df > 0");
  if (std::isnan(t)) return kNaN;
  return 1.0 - t_upper_tail(t, df);
}

double student_t_quantile(double p, double df) {
  if (!(p > 0.0 && p < 1.0)) throw std::invalid_argument("t quantile needs p in (0, 1)");
  if (!(df > 0.0)) throw std::invalid_argument("t distribution needs df > 0");
  if (p == 0.5) return 0.0;
  if (p < 0.5) return -student_t_quantile(1.0 - p, df);
  double lo = 0.0, hi = 1.0;
  while (student_t_cdf(hi, df) < p) {
    lo = hi;
    hi *= 2.0;
    if (hi > 1e300) return std::numeric_limits<double>::infinity();
  }
  // Bisection: monotone, and 200 halvings reach full double precision.
  for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

TestResult paired_t_test(std::span<const double> a, std::span<const double> b, Alternative alternative) {
  const auto d = differences(a, b);
  TestResult r;
  r.n = d.size();
  r.n_nonzero = static_cast<std::size_t>(std::count_if(d.begin(), d.end(), [](double v) { return v != 0.0; }));
  r.z = kNaN;
  if (r.n < 2) {
    r.statistic = r.p_value = kNaN;
    return r;
  }
  const double m = mean(d);
  const double sd = sample_std(d);
  const double df = static_cast<double>(r.n - 1);
  if (sd == 0.0) {
    if (m == 0.0) {
      r.statistic = 0.0;
      r.p_value = 1.0;
      return r;
    }
    r.statistic = m > 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  } else {
    r.statistic = m / (sd / std::sqrt(static_cast<double>(r.n)));
  }
  if (alternative == Alternative::TwoSided) {
    r.p_value = t_two_sided_tail(r.statistic, df);
  } else {
    const double upper = std::isinf(r.statistic) ? (r.statistic > 0 ? 0.0 : 1.0) : t_upper_tail(r.statistic, df);
    r.p_value = alternative == Alternative::Greater ? upper : 1.0 - upper;
  }
  return r;
}

TestResult wilcoxon_signed_rank(std::span<const double> a, std::span<const double> b, Alternative alternative,
                                WilcoxonMethod method) {
  auto d = differences(a, b);
  TestResult r;
  r.n = d.size();
  std::erase(d, 0.0);
  r.n_nonzero = d.size();
  const std::size_t n = d.size();
  if (n == 0) {
    r.statistic = 0.0;
    r.z = kNaN;
    r.p_value = 1.0;
    return r;
  }
  // Mid-ranks of |d|, kept doubled so they stay integers for the exact distribution.
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t i, std::size_t j) { return std::fabs(d[i]) < std::fabs(d[j]); });
  std::vector<std::size_t> rank2(n);
  double tie_term = 0.0;  // sum of t^3 - t over tie groups
  bool ties = false;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j + 1 < n && std::fabs(d[order[j + 1]]) == std::fabs(d[order[i]])) ++j;
    const std::size_t t = j - i + 1;
    for (std::size_t k = i; k <= j; ++k) rank2[order[k]] = i + j + 2;  // 2 * mean of ranks i+1..j+1
    if (t > 1) {
      ties = true;
      tie_term += static_cast<double>(t) * static_cast<double>(t) * static_cast<double>(t) - static_cast<double>(t);
    }
    i = j + 1;
  }
  std::size_t w_plus2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (d[i] > 0) w_plus2 += rank2[i];
  }
  const double w_plus = static_cast<double>(w_plus2) / 2.0;
  r.statistic = w_plus;
  const bool exact = method == WilcoxonMethod::Exact || (method == WilcoxonMethod::Auto && n <= 50 && !ties);
  const double nn = static_cast<double>(n);
  if (exact) {
    // Under H0 each rank is positive with probability 1/2 independently.
    const std::size_t total2 = n * (n + 1);
    std::vector<double> dist = {1.0};  // probability of each doubled W+
    dist.resize(total2 + 1, 0.0);
    std::size_t reach = 0;
    for (std::size_t i = 0; i < n; ++i) {
      reach += rank2[i];
      for (std::size_t s = reach + 1; s-- > 0;) dist[s] = 0.5 * (dist[s] + (s >= rank2[i] ? dist[s - rank2[i]] : 0.0));
    }
    double p_less = 0.0, p_greater = 0.0;
    for (std::size_t s = 0; s <= total2; ++s) {
      if (s <= w_plus2) p_less += dist[s];
      if (s >= w_plus2) p_greater += dist[s];
    }
    r.exact = true;
    r.z = kNaN;
    r.p_value = std::min(1.0, p_from_tails(p_less, p_greater, alternative));
    return r;
  }
  // Normal approximation as scipy: two-sided uses T = min(W+, W-) and |z|.
  const double mn = nn * (nn + 1.0) / 4.0;
  const double se = std::sqrt((nn * (nn + 1.0) * (2.0 * nn + 1.0) - 0.5 * tie_term) / 24.0);
  double t_stat = w_plus;
  double correction = 0.5;
  if (alternative == Alternative::TwoSided) {
    t_stat = std::min(w_plus, nn * (nn + 1.0) / 2.0 - w_plus);
    correction = t_stat > mn ? 0.5 : t_stat < mn ? -0.5 : 0.0;
  } else if (alternative == Alternative::Less) {
    correction = -0.5;
  }
  r.z = (t_stat - mn - correction) / se;
  switch (alternative) {
    case Alternative::TwoSided:
      r.p_value = std::min(1.0, std::erfc(std::fabs(r.z) / std::sqrt(2.0)));
      break;
    case Alternative::Greater:
      r.p_value = normal_cdf(-r.z);
      break;
    case Alternative::Less:
      r.p_value = normal_cdf(r.z);
      break;
  }
  return r;
}

std::vector<double> holm_adjust(std::span<const double> p) {
  std::vector<double> out(p.begin(), p.end());
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (!std::isnan(p[i])) order.push_back(i);
  // Stable, so tied p-values keep their order (the adjusted values are equal anyway).
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return p[i] < p[j]; });
  const std::size_t m = order.size();
  double running = 0.0;
  for (std::size_t j = 0; j < m; ++j) {
    running = std::max(running, std::min(1.0, static_cast<double>(m - j) * p[order[j]]));
    out[order[j]] = running;
  }
  return out;
}

}  // namespace lrgd::metrics
