// Positive random features (FAVOR+, docs/method.md section 3).
#include <cmath>

#include "lrgd/dual.h"
#include "lrgd/error.h"

namespace lrgd::analysis {

RandomFeatures::RandomFeatures(int dim, int n_features, bool orthogonal, Rng& rng)
    : dim_(dim), n_features_(n_features) {
  if (dim < 1) throw OptionError("--features", "feature dimension must be positive");
  if (n_features < 1) throw OptionError("--features", "the number of random features must be at least 1");
  const auto d = static_cast<std::size_t>(dim);
  w_.resize(static_cast<std::size_t>(n_features) * d);
  for (double& x : w_) x = rng.normal();
  if (!orthogonal) return;
  // Blocks of d rows: Gram-Schmidt, then each row gets the norm of an independent
  // d-dimensional Gaussian vector (chi distribution with d degrees of freedom), so that
  // every row is still marginally N(0, I_d) while rows of a block are orthogonal.
  for (std::size_t b0 = 0; b0 < static_cast<std::size_t>(n_features); b0 += d) {
    const std::size_t b1 = std::min(b0 + d, static_cast<std::size_t>(n_features));
    for (std::size_t r = b0; r < b1; ++r) {
      double* x = w_.data() + r * d;
      for (int pass = 0; pass < 2; ++pass)  // re-orthogonalise once for stability
        for (std::size_t p = b0; p < r; ++p) {
          const double* y = w_.data() + p * d;
          double dot = 0;
          for (std::size_t i = 0; i < d; ++i) dot += x[i] * y[i];
          for (std::size_t i = 0; i < d; ++i) x[i] -= dot * y[i];
        }
      double norm = 0;
      for (std::size_t i = 0; i < d; ++i) norm += x[i] * x[i];
      norm = std::sqrt(norm);
      for (std::size_t i = 0; i < d; ++i) x[i] /= norm;
    }
    for (std::size_t r = b0; r < b1; ++r) {
      double chi2 = 0;
      for (std::size_t i = 0; i < d; ++i) {
        const double g = rng.normal();
        chi2 += g * g;
      }
      const double chi = std::sqrt(chi2);
      for (std::size_t i = 0; i < d; ++i) w_[r * d + i] *= chi;
    }
  }
}

std::vector<double> RandomFeatures::features(const double* x, int m) const {
  if (m < 1 || m > n_features_) throw OptionError("--features", "feature count outside the drawn features");
  const auto d = static_cast<std::size_t>(dim_);
  const double s = std::pow(static_cast<double>(dim_), -0.25);
  double sq = 0;
  for (std::size_t i = 0; i < d; ++i) sq += (x[i] * s) * (x[i] * s);
  std::vector<double> phi(static_cast<std::size_t>(m));
  const double norm = 1.0 / std::sqrt(static_cast<double>(m));
  for (int f = 0; f < m; ++f) {
    const double* wf = w(f);
    double dot = 0;
    for (std::size_t i = 0; i < d; ++i) dot += wf[i] * x[i] * s;
    phi[static_cast<std::size_t>(f)] = norm * std::exp(dot - sq / 2);
  }
  return phi;
}

double RandomFeatures::kernel(const double* a, const double* b, int m) const {
  const auto pa = features(a, m);
  const auto pb = features(b, m);
  double k = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) k += pa[i] * pb[i];
  return k;
}

}  // namespace lrgd::analysis
