// The dual linear model of every attention head (docs/method.md section 3, docs/dual.md).
//
// Per layer and key/value head g (a GQA block: the query heads that share g share its
// keys, values and so W0, dW and the key features):
//   A[j, i] = exp(w_i.k'_j - |k'_j|^2/2 - c)        (phi(k_j) up to sqrt(M) and one constant c)
//   W_T = sum_{j in T} v_j A[j, :],  W_D = sum_{j in D} v_j A[j, :]   (dv x M)
//   z_T = sum_{j in T} A[j, :],      z_D likewise
// and per query head h: b_i = exp(w_i.q' - c_q). Outputs with the first m features:
//   before (W0):  W_T[:, :m] b / z_T.b,   after (W1 = W0 + dW): (W_T + W_D) b / (z_T + z_D).b
// The constants c, c_q and the 1/sqrt(M) factors cancel in these ratios; c is the largest
// exponent, so every A entry lies in (0, 1] (no overflow for large keys).
#include "lrgd/dual.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <thread>

#include "lrgd/error.h"
#include "lrgd/parallel.h"

namespace lrgd::analysis {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double rel_dist(const std::vector<double>& a, const float* b, std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = a[i] - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

double cosine(const std::vector<double>& a, const float* b, std::size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

double norm2(const std::vector<double>& a) {
  double s = 0;
  for (double x : a) s += x * x;
  return std::sqrt(s);
}

double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double ab = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ab += a[i] * b[i];
  const double d = norm2(a) * norm2(b);
  return d > 0 ? ab / d : 0.0;
}

// 1 for tokens of the demonstration group (labels D and P), 0 otherwise.
std::vector<std::uint8_t> demo_mask(const std::vector<TokenSpan>& spans, int n_keys) {
  std::vector<std::uint8_t> d(static_cast<std::size_t>(n_keys), 0);
  for (const auto& s : spans)
    if (s.label == "D" || s.label == "P")
      for (int i = std::max(0, s.begin); i < std::min(s.end, n_keys); ++i) d[static_cast<std::size_t>(i)] = 1;
  return d;
}

// Feature vectors of one GQA block, with W accumulated over a growing key prefix.
class Block {
 public:
  Block(const Capture& c, int layer, const RandomFeatures& rf)
      : c_(c),
        layer_(layer),
        rf_(rf),
        M_(static_cast<std::size_t>(rf.n_features())),
        d_(static_cast<std::size_t>(c.head_dim)),
        dv_(static_cast<std::size_t>(c.head_dim_v)) {
    // w transposed (d x M, float) so that the inner loops run over features (vectorised).
    wt_.resize(d_ * M_);
    for (std::size_t i = 0; i < M_; ++i)
      for (std::size_t t = 0; t < d_; ++t) wt_[t * M_ + i] = static_cast<float>(rf.w(static_cast<int>(i))[t]);
    scale_ = std::pow(static_cast<double>(c.head_dim), -0.25);
  }

  // A for keys [0, n_keys) of kv head g, from key vectors (post-RoPE).
  void key_features(int g) {
    const auto n = static_cast<std::size_t>(c_.n_keys());
    a_.assign(n * M_, 0.0f);
    float cmax = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
      const float* k = c_.key(layer_, static_cast<int>(j), g);
      float* row = a_.data() + j * M_;
      double sq = 0;
      for (std::size_t t = 0; t < d_; ++t) {
        const auto kt = static_cast<float>(k[t] * scale_);
        sq += static_cast<double>(kt) * kt;
        const float* wrow = wt_.data() + t * M_;
        for (std::size_t i = 0; i < M_; ++i) row[i] += kt * wrow[i];
      }
      const auto half = static_cast<float>(sq / 2);
      for (std::size_t i = 0; i < M_; ++i) {
        row[i] -= half;
        cmax = std::max(cmax, row[i]);
      }
    }
    for (float& x : a_) x = std::exp(x - cmax);
  }

  void reset_w() {
    wT_.assign(dv_ * M_, 0.0f);
    wD_.assign(dv_ * M_, 0.0f);
    zT_.assign(M_, 0.0);
    zD_.assign(M_, 0.0);
  }

  // Adds key j (with its value v_j of kv head g, times `vscale`) to group T or D.
  // `sign` -1 takes a key out again (it left a sliding window).
  void add_key(int g, int j, bool demo, const Capture& values, float sign = 1.0f) {
    const float* row = a_.data() + static_cast<std::size_t>(j) * M_;
    const float* v = values.value(layer_, j, g);
    auto& w = demo ? wD_ : wT_;
    auto& z = demo ? zD_ : zT_;
    for (std::size_t cc = 0; cc < dv_; ++cc) {
      const float vc = sign * v[cc];
      float* wr = w.data() + cc * M_;
      for (std::size_t i = 0; i < M_; ++i) wr[i] += vc * row[i];
    }
    for (std::size_t i = 0; i < M_; ++i) z[i] += static_cast<double>(sign) * row[i];
  }

  // b = exp(w_i.q' - c_q) for query head h of a step.
  std::vector<double> query_features(const float* q) const {
    std::vector<double> b(M_, 0.0);
    for (std::size_t t = 0; t < d_; ++t) {
      const double qt = q[t] * scale_;
      const float* wrow = wt_.data() + t * M_;
      for (std::size_t i = 0; i < M_; ++i) b[i] += qt * wrow[i];
    }
    double m = -std::numeric_limits<double>::infinity();
    for (double x : b) m = std::max(m, x);
    for (double& x : b) x = std::exp(x - m);
    return b;
  }

  struct Partial {
    std::vector<double> num_t, num_d;
    double z_t = 0, z_d = 0;
  };
  // Partial sums over the first m features for each m of `checkpoints` (ascending).
  std::vector<Partial> outputs(const std::vector<double>& b, const std::vector<int>& checkpoints) const {
    std::vector<Partial> out;
    Partial p;
    p.num_t.assign(dv_, 0.0);
    p.num_d.assign(dv_, 0.0);
    std::size_t m0 = 0;
    for (int mc : checkpoints) {
      const auto m1 = static_cast<std::size_t>(mc);
      for (std::size_t cc = 0; cc < dv_; ++cc) {
        const float* rt = wT_.data() + cc * M_;
        const float* rd = wD_.data() + cc * M_;
        double st = 0, sd = 0;
        for (std::size_t i = m0; i < m1; ++i) {
          st += rt[i] * b[i];
          sd += rd[i] * b[i];
        }
        p.num_t[cc] += st;
        p.num_d[cc] += sd;
      }
      for (std::size_t i = m0; i < m1; ++i) {
        p.z_t += zT_[i] * b[i];
        p.z_d += zD_[i] * b[i];
      }
      m0 = m1;
      out.push_back(p);
    }
    return out;
  }

 private:
  const Capture& c_;
  int layer_;
  const RandomFeatures& rf_;
  std::size_t M_, d_, dv_;
  double scale_ = 1;
  std::vector<float> wt_, a_, wT_, wD_;
  std::vector<double> zT_, zD_;
};

// Exact pieces of one head at one step, in double.
struct Exact {
  std::vector<double> o_t, o_d;
  double mass_t = 0, mass_d = 0;
  std::vector<double> ref;  // own softmax attention
  double ref_probs_max_abs = 0;
};

Exact exact_head(const Capture& c, const CapturedStep& st, int layer, int head, const std::vector<std::uint8_t>& demo) {
  const auto L = static_cast<std::size_t>(layer);
  const auto dv = static_cast<std::size_t>(c.head_dim_v);
  const auto d = static_cast<std::size_t>(c.head_dim);
  const int g = c.kv_head_of(head);
  const int n = st.pos + 1;
  const int first = c.first_key(layer, st.pos);  // keys before it are outside the window
  const float* p = st.probs[L].data() + static_cast<std::size_t>(head) * static_cast<std::size_t>(n);
  const float* q = st.q[L].data() + static_cast<std::size_t>(head) * d;
  Exact e;
  e.o_t.assign(dv, 0.0);
  e.o_d.assign(dv, 0.0);
  e.ref.assign(dv, 0.0);
  std::vector<double> logit(static_cast<std::size_t>(n), 0.0);
  double lmax = -std::numeric_limits<double>::infinity();
  for (int j = first; j < n; ++j) {
    const float* k = c.key(layer, j, g);
    double s = 0;
    for (std::size_t t = 0; t < d; ++t) s += static_cast<double>(q[t]) * k[t];
    logit[static_cast<std::size_t>(j)] = s * c.kq_scale;
    lmax = std::max(lmax, logit[static_cast<std::size_t>(j)]);
  }
  double zsum = 0;
  for (int j = first; j < n; ++j) {
    double& x = logit[static_cast<std::size_t>(j)];
    x = std::exp(x - lmax);
    zsum += x;
  }
  for (int j = 0; j < n; ++j) {
    const float* v = c.value(layer, j, g);
    const bool is_d = demo[static_cast<std::size_t>(j)] != 0;
    const double pj = p[j];
    const double rj = logit[static_cast<std::size_t>(j)] / zsum;
    e.ref_probs_max_abs = std::max(e.ref_probs_max_abs, std::abs(rj - pj));
    auto& o = is_d ? e.o_d : e.o_t;
    (is_d ? e.mass_d : e.mass_t) += pj;
    for (std::size_t t = 0; t < dv; ++t) {
      o[t] += pj * v[t];
      e.ref[t] += rj * v[t];
    }
  }
  return e;
}

double dist_to(const std::vector<double>& x, const std::vector<float>& target, std::size_t offset, std::size_t n) {
  if (target.empty()) return std::numeric_limits<double>::quiet_NaN();
  return rel_dist(x, target.data() + offset, n);
}

std::vector<int> sorted_features(const DualOptions& o) {
  std::vector<int> f = o.features;
  for (int m : f)
    if (m < 1) throw OptionError("--features", "every M must be at least 1");
  if (o.round_features < 1) throw OptionError("--round-features", "must be at least 1");
  std::sort(f.begin(), f.end());
  f.erase(std::unique(f.begin(), f.end()), f.end());
  return f;
}

std::vector<int> selected_layers(const Capture& c, const DualOptions& o) {
  std::vector<int> layers = o.layers;
  if (layers.empty())
    for (int l = 0; l < c.n_layer; ++l) layers.push_back(l);
  for (int l : layers)
    if (l < 0 || l >= c.n_layer)
      throw OptionError("--layers", "layer " + std::to_string(l) + " outside 0.." + std::to_string(c.n_layer - 1));
  return layers;
}

Rng block_rng(std::uint64_t seed, int layer, int g) {
  return Rng::derive(seed, "dual/features", (static_cast<std::uint64_t>(layer) << 32) | static_cast<std::uint64_t>(g));
}

struct PhaseTimes {
  double features = 0, dual = 0, exact = 0;
};

// The layer of docs/dual.md "FFN dual" with everything nonlinear frozen at the real input:
// the gate activation as s = act(gate) (read as act*up / up, so it holds for SwiGLU and
// GeGLU alike), the RMSNorm of h as the diagonal D_n = ffn_norm / h (weight / rms(h)), and
// Gemma 3's post-norms likewise (P_a = attn_post / W_O o, P_f = ffn_post / ffn_out). Then
//   h(o) = x + P_a W_O o,   y(o) = h(o) + P_f W_down (s * W_up (D_n h(o)))
// is affine in the attention output o, and equals the real layer at the real o.
class FrozenLayer {
 public:
  FrozenLayer(const FfnWeights& w, const FfnStep& f) : w_(w), f_(f) {
    const auto n = static_cast<std::size_t>(w.n_embd);
    const auto nf = static_cast<std::size_t>(w.n_ff);
    if (f.x.size() != n || f.h.size() != n || f.norm.size() != n || f.l_out.size() != n || f.up.size() != nf ||
        f.act.size() != nf || f.ffn_out.size() != n)
      throw Error("FFN dual: captured FFN tensors do not match the weights' shapes");
    pa_ = ratio(f.attn_post, f.attn_wo, n);
    dn_ = ratio(f.norm, f.h, n);
    s_ = ratio(f.act, f.up, nf);
    pf_ = ratio(f.ffn_post, f.ffn_out, n);
  }

  // x + P_a W_O o (the residual stream entering the FFN).
  std::vector<double> residual(const std::vector<double>& o) const {
    std::vector<double> h = attention(o);
    for (std::size_t i = 0; i < h.size(); ++i) h[i] += f_.x[i];
    return h;
  }
  // P_a W_O o.
  std::vector<double> attention(const std::vector<double>& o) const {
    std::vector<double> a = matvec(w_.wo, o, static_cast<std::size_t>(w_.n_embd));
    for (std::size_t i = 0; i < a.size(); ++i) a[i] *= pa_[i];
    return a;
  }
  // (I + J) v with J = P_f W_down diag(s) W_up D_n: the frozen FFN block with its residual.
  std::vector<double> through_ffn(const std::vector<double>& v) const {
    std::vector<double> u(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) u[i] = dn_[i] * v[i];
    std::vector<double> g = matvec(w_.up, u, static_cast<std::size_t>(w_.n_ff));
    for (std::size_t i = 0; i < g.size(); ++i) g[i] *= s_[i];
    std::vector<double> y = matvec(w_.down, g, static_cast<std::size_t>(w_.n_embd));
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = v[i] + pf_[i] * y[i];
    return y;
  }
  // A o.
  std::vector<double> linear(const std::vector<double>& o) const { return through_ffn(attention(o)); }

 private:
  // num / den elementwise (a zero denominator: 0, that coordinate is dropped); no numerator:
  // the identity (the architecture has no such norm).
  static std::vector<double> ratio(const std::vector<float>& num, const std::vector<float>& den, std::size_t n) {
    std::vector<double> r(n, 1.0);
    if (num.empty()) return r;
    for (std::size_t i = 0; i < n; ++i) r[i] = den[i] != 0.0f ? static_cast<double>(num[i]) / den[i] : 0.0;
    return r;
  }
  static std::vector<double> matvec(const std::vector<float>& m, const std::vector<double>& v, std::size_t rows) {
    std::vector<double> out(rows, 0.0);
    const std::size_t cols = v.size();
    for (std::size_t r = 0; r < rows; ++r) {
      const float* row = m.data() + r * cols;
      double acc = 0;
      for (std::size_t c = 0; c < cols; ++c) acc += row[c] * v[c];
      out[r] = acc;
    }
    return out;
  }
  const FfnWeights& w_;
  const FfnStep& f_;
  std::vector<double> pa_, dn_, s_, pf_;
};

double rel(const std::vector<double>& a, const std::vector<float>& b) { return rel_dist(a, b.data(), b.size()); }

FfnResult ffn_result(const Capture& c, const CapturedStep& st, const std::vector<double>& o_exact,
                     const std::vector<double>& o_dual) {
  const FrozenLayer fl(c.ffn_weights, st.ffn);
  const auto& o_f = st.out[static_cast<std::size_t>(c.ffn_layer)];
  const std::vector<double> o_real(o_f.begin(), o_f.end());
  const std::vector<double> h = fl.residual(o_real);
  FfnResult r;
  r.layer = c.ffn_layer;
  r.resid_rel_err = rel(h, st.ffn.h);
  r.frozen_rel_err = rel(fl.through_ffn(h), st.ffn.l_out);
  const std::vector<double> a_real = fl.linear(o_real);
  double y_norm = 0;
  for (float v : st.ffn.l_out) y_norm += static_cast<double>(v) * v;
  y_norm = std::sqrt(y_norm);
  const double a_norm = norm2(a_real);
  r.attn_share = y_norm > 0 ? a_norm / y_norm : 0.0;
  // y + A (o' - o_real): anchored at the real output, so the comparison measures the dual's
  // error, not the weights' quantised matmuls.
  const auto err = [&](const std::vector<double>& o, double& rel_y, double& rel_a) {
    std::vector<double> d(o.size());
    for (std::size_t i = 0; i < o.size(); ++i) d[i] = o[i] - o_real[i];
    const double e = norm2(fl.linear(d));
    rel_y = y_norm > 0 ? e / y_norm : e;
    rel_a = a_norm > 0 ? e / a_norm : e;
  };
  err(o_exact, r.exact_rel_err, r.exact_rel_attn);
  err(o_dual, r.dual_rel_err, r.dual_rel_attn);
  r.dual_cos_attn = cosine(fl.linear(o_dual), a_real);
  return r;
}

// The attention override of the chained run: every query row's head outputs replaced by
// the dual output at M random features (features per layer and kv head drawn as in
// analyse), or by exact softmax attention (M = 0), from the run's own q, k, v. The dual
// state W, z grows key by key as rows arrive (causal order); a running maximum exponent keeps
// the features in range (W and z are rescaled when it grows).
class ChainDual {
 public:
  ChainDual(const DualOptions& o, int m) : o_(o), m_(m) {}

  void operator()(const Capture& c, int layer, int pos0, int n_rows, const std::vector<float>& q,
                  std::vector<float>& out) {
    if (state_.empty()) state_.resize(static_cast<std::size_t>(c.n_layer));
    auto& blocks = state_[static_cast<std::size_t>(layer)];
    if (blocks.empty()) blocks.resize(static_cast<std::size_t>(c.n_head_kv));
    const auto d = static_cast<std::size_t>(c.head_dim);
    const auto dv = static_cast<std::size_t>(c.head_dim_v);
    const auto nh = static_cast<std::size_t>(c.n_head);
    if (q.size() != static_cast<std::size_t>(n_rows) * nh * d ||
        out.size() != static_cast<std::size_t>(n_rows) * nh * dv)
      throw Error("chained dual: unexpected query/output sizes");
    const int group = c.n_head / c.n_head_kv;
    parallel_for(blocks.size(), o_.n_threads, [&](std::size_t g) {
      Running& b = blocks[g];
      if (m_ > 0 && !b.rf) init(b, c, layer, static_cast<int>(g));
      for (int r = 0; r < n_rows; ++r) {
        const int pos = pos0 + r;
        const int first = c.first_key(layer, pos);
        for (std::size_t h = g * static_cast<std::size_t>(group); h < (g + 1) * static_cast<std::size_t>(group); ++h) {
          const float* qh = q.data() + (static_cast<std::size_t>(r) * nh + h) * d;
          float* oh = out.data() + (static_cast<std::size_t>(r) * nh + h) * dv;
          if (m_ == 0) {
            exact(c, layer, static_cast<int>(g), first, pos, qh, oh);
            continue;
          }
          while (b.added <= pos) add(b, c, layer, static_cast<int>(g), b.added++, 1.0);
          while (b.first < first) add(b, c, layer, static_cast<int>(g), b.first++, -1.0);
          dual(b, c, qh, oh);
        }
      }
    });
  }

 private:
  struct Running {
    std::unique_ptr<RandomFeatures> rf;
    std::vector<float> wt;  // d x M (transposed features)
    std::vector<double> w, z;
    double cmax = -std::numeric_limits<double>::infinity();
    int added = 0, first = 0;
  };

  void init(Running& b, const Capture& c, int layer, int g) const {
    Rng rng = block_rng(o_.seed, layer, g);
    b.rf = std::make_unique<RandomFeatures>(c.head_dim, m_, o_.orthogonal, rng);
    const auto M = static_cast<std::size_t>(m_);
    const auto d = static_cast<std::size_t>(c.head_dim);
    b.wt.resize(d * M);
    for (std::size_t i = 0; i < M; ++i)
      for (std::size_t t = 0; t < d; ++t) b.wt[t * M + i] = static_cast<float>(b.rf->w(static_cast<int>(i))[t]);
    b.w.assign(static_cast<std::size_t>(c.head_dim_v) * M, 0.0);
    b.z.assign(M, 0.0);
  }

  // w_i.x' for x' = x / d^(1/4).
  std::vector<double> exponents(const Running& b, const float* x, std::size_t d) const {
    const auto M = static_cast<std::size_t>(m_);
    const double scale = std::pow(static_cast<double>(d), -0.25);
    std::vector<double> e(M, 0.0);
    for (std::size_t t = 0; t < d; ++t) {
      const double xt = x[t] * scale;
      const float* wrow = b.wt.data() + t * M;
      for (std::size_t i = 0; i < M; ++i) e[i] += xt * wrow[i];
    }
    return e;
  }

  void add(Running& b, const Capture& c, int layer, int g, int j, double sign) const {
    const auto M = static_cast<std::size_t>(m_);
    const auto d = static_cast<std::size_t>(c.head_dim);
    const auto dv = static_cast<std::size_t>(c.head_dim_v);
    const float* k = c.key(layer, j, g);
    std::vector<double> e = exponents(b, k, d);
    double sq = 0;
    for (std::size_t t = 0; t < d; ++t) sq += static_cast<double>(k[t]) * k[t];
    sq /= std::sqrt(static_cast<double>(d));
    double m = -std::numeric_limits<double>::infinity();
    for (double& x : e) m = std::max(m, x -= sq / 2);
    if (sign > 0 && m > b.cmax) {
      const double f = std::isfinite(b.cmax) ? std::exp(b.cmax - m) : 0.0;
      for (double& x : b.w) x *= f;
      for (double& x : b.z) x *= f;
      b.cmax = m;
    }
    const float* v = c.value(layer, j, g);
    for (std::size_t i = 0; i < M; ++i) {
      const double a = sign * std::exp(e[i] - b.cmax);
      b.z[i] += a;
      for (std::size_t t = 0; t < dv; ++t) b.w[t * M + i] += a * v[t];
    }
  }

  void dual(const Running& b, const Capture& c, const float* q, float* out) const {
    const auto M = static_cast<std::size_t>(m_);
    const auto dv = static_cast<std::size_t>(c.head_dim_v);
    std::vector<double> e = exponents(b, q, static_cast<std::size_t>(c.head_dim));
    double m = -std::numeric_limits<double>::infinity();
    for (double x : e) m = std::max(m, x);
    double den = 0;
    for (std::size_t i = 0; i < M; ++i) den += b.z[i] * (e[i] = std::exp(e[i] - m));
    for (std::size_t t = 0; t < dv; ++t) {
      double num = 0;
      const double* wr = b.w.data() + t * M;
      for (std::size_t i = 0; i < M; ++i) num += wr[i] * e[i];
      out[t] = static_cast<float>(num / den);
    }
  }

  static void exact(const Capture& c, int layer, int g, int first, int pos, const float* q, float* out) {
    const auto d = static_cast<std::size_t>(c.head_dim);
    const auto dv = static_cast<std::size_t>(c.head_dim_v);
    std::vector<double> w(static_cast<std::size_t>(pos - first + 1));
    double mx = -std::numeric_limits<double>::infinity();
    for (int j = first; j <= pos; ++j) {
      const float* k = c.key(layer, j, g);
      double s = 0;
      for (std::size_t t = 0; t < d; ++t) s += static_cast<double>(q[t]) * k[t];
      // Capture::kq_scale is set only after the prompt; every supported arch uses 1/sqrt(d).
      const double logit = s / std::sqrt(static_cast<double>(d));
      w[static_cast<std::size_t>(j - first)] = logit;
      mx = std::max(mx, logit);
    }
    double z = 0;
    for (double& x : w) z += (x = std::exp(x - mx));
    std::vector<double> o(dv, 0.0);
    for (int j = first; j <= pos; ++j) {
      const float* v = c.value(layer, j, g);
      const double p = w[static_cast<std::size_t>(j - first)] / z;
      for (std::size_t t = 0; t < dv; ++t) o[t] += p * v[t];
    }
    for (std::size_t t = 0; t < dv; ++t) out[t] = static_cast<float>(o[t]);
  }

  const DualOptions& o_;
  int m_;
  std::vector<std::vector<Running>> state_;  // [layer][kv head]
};

}  // namespace

DualReport analyse(const Capture& c, const std::vector<TokenSpan>& spans, const DualOptions& o) {
  const auto t_start = Clock::now();
  const std::vector<int> sweep = sorted_features(o);
  const std::vector<int> layers = selected_layers(c, o);
  const int m_max = std::max(sweep.empty() ? 0 : sweep.back(), o.round_features);
  const std::vector<std::uint8_t> demo = demo_mask(spans, c.n_keys());
  const auto dv = static_cast<std::size_t>(c.head_dim_v);
  const int group = c.n_head / c.n_head_kv;
  std::size_t sweep_round = sweep.size();  // index of round_features among checkpoints
  std::vector<int> checkpoints = sweep;
  {
    auto it = std::lower_bound(checkpoints.begin(), checkpoints.end(), o.round_features);
    if (it == checkpoints.end() || *it != o.round_features) it = checkpoints.insert(it, o.round_features);
    sweep_round = static_cast<std::size_t>(it - checkpoints.begin());
  }

  DualReport r;
  r.arch = c.arch;
  r.n_layer = c.n_layer;
  r.n_head = c.n_head;
  r.n_head_kv = c.n_head_kv;
  r.head_dim = c.head_dim;
  r.n_prompt = c.n_prompt;
  r.spans = spans;
  r.generated = c.generated;
  r.target_token = c.target_token;
  r.options = o;
  r.options.features = sweep;
  r.steps.resize(c.steps.size());
  for (std::size_t s = 0; s < c.steps.size(); ++s) {
    r.steps[s].pos = c.steps[s].pos;
    r.steps[s].n_gen = static_cast<int>(s);
    r.steps[s].next_token = c.steps[s].next_token;
    r.steps[s].heads.resize(layers.size() * static_cast<std::size_t>(c.n_head));
  }

  // The FFN layer's head outputs (exact split, dual at round_features) per step, all heads
  // concatenated as kqv_out lays them out; filled by the tasks of that layer.
  const bool ffn = c.ffn_layer >= 0 && std::find(layers.begin(), layers.end(), c.ffn_layer) != layers.end();
  r.ffn_unavailable = c.ffn_unavailable;
  if (c.ffn_layer >= 0 && !ffn) r.ffn_unavailable = "layer " + std::to_string(c.ffn_layer) + " is not among --layers";
  const std::size_t n_attn = static_cast<std::size_t>(c.n_head) * dv;
  std::vector<std::vector<double>> ffn_exact(ffn ? c.steps.size() : 0, std::vector<double>(n_attn));
  std::vector<std::vector<double>> ffn_dual = ffn_exact;

  const std::size_t n_tasks = layers.size() * static_cast<std::size_t>(c.n_head_kv);
  std::vector<PhaseTimes> times(n_tasks);
  parallel_for(n_tasks, o.n_threads, [&](std::size_t task) {
    const std::size_t li = task / static_cast<std::size_t>(c.n_head_kv);
    const int layer = layers[li];
    const int g = static_cast<int>(task % static_cast<std::size_t>(c.n_head_kv));
    const auto L = static_cast<std::size_t>(layer);
    const bool keep = ffn && layer == c.ffn_layer;
    PhaseTimes& pt = times[task];
    auto t0 = Clock::now();
    Rng rng = block_rng(o.seed, layer, g);
    RandomFeatures rf(c.head_dim, m_max, o.orthogonal, rng);
    Block block(c, layer, rf);
    block.key_features(g);
    pt.features += ms_since(t0);
    t0 = Clock::now();
    block.reset_w();
    for (int j = c.first_key(layer, c.steps[0].pos); j <= c.steps[0].pos; ++j)
      block.add_key(g, j, demo[static_cast<std::size_t>(j)] != 0, c);
    pt.dual += ms_since(t0);
    const std::size_t toff = static_cast<std::size_t>(g) * dv;
    for (std::size_t s = 0; s < c.steps.size(); ++s) {
      const CapturedStep& st = c.steps[s];
      if (s > 0) {  // the fed generated token joins T (T_gen grows): a new W0
        t0 = Clock::now();
        block.add_key(g, st.pos, false, c);
        // In a windowed layer the oldest keys leave as new ones come.
        for (int j = c.first_key(layer, c.steps[s - 1].pos); j < c.first_key(layer, st.pos); ++j)
          block.add_key(g, j, demo[static_cast<std::size_t>(j)] != 0, c, -1.0f);
        pt.dual += ms_since(t0);
      }
      for (int h = g * group; h < (g + 1) * group; ++h) {
        HeadResult& hr = r.steps[s].heads[li * static_cast<std::size_t>(c.n_head) + static_cast<std::size_t>(h)];
        hr.layer = layer;
        hr.head = h;
        hr.kv_head = g;
        const float* out = st.out[L].data() + static_cast<std::size_t>(h) * dv;
        t0 = Clock::now();
        const Exact e = exact_head(c, st, layer, h, demo);
        std::vector<double> sum(dv), before(dv);
        for (std::size_t t = 0; t < dv; ++t) {
          sum[t] = e.o_t[t] + e.o_d[t];
          before[t] = e.mass_t > 0 ? e.o_t[t] / e.mass_t : 0.0;
        }
        hr.weight_d = e.mass_d;
        hr.split_rel_err = rel_dist(sum, out, dv);
        hr.cos_exact = cosine(sum, out, dv);
        if (keep)
          std::copy(sum.begin(), sum.end(),
                    ffn_exact[s].begin() + static_cast<std::ptrdiff_t>(h) * static_cast<std::ptrdiff_t>(dv));
        hr.ref_probs_max_abs = e.ref_probs_max_abs;
        hr.ref_out_rel_err = rel_dist(e.ref, out, dv);
        hr.dist_before_exact = dist_to(before, c.target_v.empty() ? std::vector<float>{} : c.target_v[L], toff, dv);
        hr.dist_after_exact = c.target_v.empty()
                                  ? std::numeric_limits<double>::quiet_NaN()
                                  : rel_dist(std::vector<double>(out, out + dv), c.target_v[L].data() + toff, dv);
        pt.exact += ms_since(t0);

        t0 = Clock::now();
        const std::vector<double> b =
            block.query_features(st.q[L].data() + static_cast<std::size_t>(h) * static_cast<std::size_t>(c.head_dim));
        pt.features += ms_since(t0);
        t0 = Clock::now();
        const std::vector<int> cps = s == 0 ? checkpoints : std::vector<int>{o.round_features};
        const auto parts = block.outputs(b, cps);
        for (std::size_t k = 0; k < parts.size(); ++k) {
          const auto& p = parts[k];
          std::vector<double> after(dv), bef(dv);
          for (std::size_t t = 0; t < dv; ++t) {
            after[t] = (p.num_t[t] + p.num_d[t]) / (p.z_t + p.z_d);
            bef[t] = p.z_t > 0 ? p.num_t[t] / p.z_t : 0.0;
          }
          const double err = rel_dist(after, out, dv);
          const bool is_round = s > 0 || k == sweep_round;
          if (s == 0 && std::binary_search(sweep.begin(), sweep.end(), cps[k])) hr.dual_rel_err.push_back(err);
          if (is_round) {
            hr.dual_rel_err_round = err;
            hr.cos_dual = cosine(after, out, dv);
            if (keep)
              std::copy(after.begin(), after.end(),
                        ffn_dual[s].begin() + static_cast<std::ptrdiff_t>(h) * static_cast<std::ptrdiff_t>(dv));
            hr.dist_before = dist_to(bef, c.target_v.empty() ? std::vector<float>{} : c.target_v[L], toff, dv);
            hr.dist_after = dist_to(after, c.target_v.empty() ? std::vector<float>{} : c.target_v[L], toff, dv);
          }
        }
        pt.dual += ms_since(t0);
      }
    }
  });
  for (std::size_t s = 0; s < ffn_exact.size(); ++s)
    r.steps[s].ffn = ffn_result(c, c.steps[s], ffn_exact[s], ffn_dual[s]);
  for (const auto& t : times) {
    r.timing.features_ms += t.features;
    r.timing.dual_ms += t.dual;
    r.timing.exact_ms += t.exact;
  }
  r.timing.context_ms = c.context_ms;
  r.timing.prompt_ms = c.prompt_ms;
  r.timing.generate_ms = c.generate_ms;
  r.timing.total_ms = ms_since(t_start);
  return r;
}

KnobResult analyse_knobs(const Capture& base, const Capture& scaled, const std::vector<TokenSpan>& spans,
                         const DualOptions& o, double alpha, double lambda) {
  if (scaled.steps.empty() || base.steps.empty()) throw Error("knob check: empty capture");
  const std::vector<int> layers = selected_layers(scaled, o);
  const std::vector<std::uint8_t> demo = demo_mask(spans, scaled.n_keys());
  const auto dv = static_cast<std::size_t>(scaled.head_dim_v);
  const int group = scaled.n_head / scaled.n_head_kv;
  KnobResult kr;
  kr.alpha = alpha;
  kr.lambda = lambda;
  kr.heads.resize(layers.size() * static_cast<std::size_t>(scaled.n_head));
  const CapturedStep& st = scaled.steps[0];
  const CapturedStep& sb = base.steps[0];
  const std::size_t n_tasks = layers.size() * static_cast<std::size_t>(scaled.n_head_kv);
  parallel_for(n_tasks, o.n_threads, [&](std::size_t task) {
    const std::size_t li = task / static_cast<std::size_t>(scaled.n_head_kv);
    const int layer = layers[li];
    const int g = static_cast<int>(task % static_cast<std::size_t>(scaled.n_head_kv));
    const auto L = static_cast<std::size_t>(layer);
    Rng rng = block_rng(o.seed, layer, g);
    RandomFeatures rf(scaled.head_dim, o.round_features, o.orthogonal, rng);
    Block block(scaled, layer, rf);
    block.key_features(g);
    block.reset_w();
    for (int j = scaled.first_key(layer, st.pos); j <= st.pos; ++j)
      block.add_key(g, j, demo[static_cast<std::size_t>(j)] != 0, scaled);
    for (int h = g * group; h < (g + 1) * group; ++h) {
      auto& kh = kr.heads[li * static_cast<std::size_t>(scaled.n_head) + static_cast<std::size_t>(h)];
      kh.layer = layer;
      kh.head = h;
      const float* out = st.out[L].data() + static_cast<std::size_t>(h) * dv;
      const float* out_base = sb.out[L].data() + static_cast<std::size_t>(h) * dv;
      // The captured V are the unscaled values: the theory predicts the intervened output.
      const Exact e = exact_head(scaled, st, layer, h, demo);
      std::vector<double> pred(dv);
      for (std::size_t t = 0; t < dv; ++t) pred[t] = (1 - lambda) * e.o_t[t] + alpha * e.o_d[t];
      kh.exact_rel_err = rel_dist(pred, out, dv);
      const auto b = block.query_features(st.q[L].data() +
                                          static_cast<std::size_t>(h) * static_cast<std::size_t>(scaled.head_dim));
      const auto p = block.outputs(b, {o.round_features}).front();
      for (std::size_t t = 0; t < dv; ++t) pred[t] = ((1 - lambda) * p.num_t[t] + alpha * p.num_d[t]) / (p.z_t + p.z_d);
      kh.dual_rel_err = rel_dist(pred, out, dv);
      kh.change_rel = rel_dist(std::vector<double>(out, out + dv), out_base, dv);
    }
  });
  return kr;
}

ChainResult run_chain(const llm::Model& model, const std::vector<std::int32_t>& tokens, const Capture& real,
                      const DualOptions& o) {
  const auto t0 = Clock::now();
  ChainResult cr;
  cr.features = o.chain_features < 0 ? o.round_features : o.chain_features;
  ChainDual dual(o, cr.features);
  CaptureOptions co;
  co.n_generate = static_cast<int>(real.generated.size());
  co.n_threads = o.n_threads;
  co.forced_tokens = real.generated;
  co.attention_override = [&dual](const Capture& so_far, int layer, int pos0, int n_rows, const std::vector<float>& q,
                                  std::vector<float>& out) { dual(so_far, layer, pos0, n_rows, q, out); };
  const Capture chain = capture_attention(model, tokens, co);
  const std::size_t n = std::min(chain.steps.size(), real.steps.size());
  std::size_t agree = 0;
  for (std::size_t s = 0; s < n; ++s) {
    const CapturedStep& a = chain.steps[s];
    const CapturedStep& b = real.steps[s];
    ChainStep cs;
    cs.pos = b.pos;
    cs.real_token = b.next_token;
    cs.chain_token = a.next_token;
    agree += cs.real_token == cs.chain_token ? 1 : 0;
    const std::vector<double> hidden(a.hidden.begin(), a.hidden.end());
    cs.hidden_cos = cosine(hidden, b.hidden.data(), b.hidden.size());
    cs.hidden_rel_err = rel_dist(hidden, b.hidden.data(), b.hidden.size());
    const std::vector<double> logits(a.logits.begin(), a.logits.end());
    cs.logits_cos = cosine(logits, b.logits.data(), b.logits.size());
    for (int l = 0; l < real.n_layer; ++l) {
      const auto& la = a.l_out[static_cast<std::size_t>(l)];
      const auto& lb = b.l_out[static_cast<std::size_t>(l)];
      cs.layer_rel_err.push_back(rel_dist(std::vector<double>(la.begin(), la.end()), lb.data(), lb.size()));
    }
    cr.steps.push_back(std::move(cs));
  }
  cr.token_agreement = n ? static_cast<double>(agree) / static_cast<double>(n) : 0.0;
  cr.ms = ms_since(t0);
  return cr;
}

DualReport run_dual(const llm::Model& model, const TokenizedPrompt& prompt, const RunOptions& o,
                    const std::string& label) {
  const auto t0 = Clock::now();
  CaptureOptions co = o.capture;
  co.spans = prompt.spans;
  co.scale_values = false;
  co.ffn_layer = o.dual.ffn_layer;
  const Capture cap = capture_attention(model, prompt.tokens, co);
  DualReport r = analyse(cap, prompt.spans, o.dual);
  r.label = label;
  r.model = model.path().string();
  if (o.alpha != 1.0 || o.lambda != 0.0) {
    const auto t1 = Clock::now();
    CaptureOptions ko = co;
    ko.n_generate = 0;
    ko.target_tokens.clear();
    ko.ffn_layer = -1;
    ko.scale_values = true;
    ko.alpha = o.alpha;
    ko.lambda = o.lambda;
    const Capture scaled = capture_attention(model, prompt.tokens, ko);
    r.timing.knob_capture_ms = ms_since(t1);
    const auto t2 = Clock::now();
    r.knob = analyse_knobs(cap, scaled, prompt.spans, o.dual, o.alpha, o.lambda);
    r.timing.knob_ms = ms_since(t2);
  }
  if (o.dual.chain) {
    r.chain = run_chain(model, prompt.tokens, cap, o.dual);
    r.timing.chain_ms = r.chain->ms;
  }
  r.timing.total_ms = ms_since(t0);
  return r;
}

}  // namespace lrgd::analysis
