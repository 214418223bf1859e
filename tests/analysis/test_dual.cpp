// The dual-model analyser on tiny random models of every architecture, checked against an
// independent double-precision attention written here.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lrgd/dual.h"
#include "lrgd/error.h"
#include "lrgd/llama_model.h"
#include "lrgd/model_init.h"
#include "open_model.h"
#include "temp_dir.h"
#include "tiny_model.h"

namespace fs = std::filesystem;
using namespace lrgd::analysis;

namespace {

// init_std 0.03: |q|, |k| of order 1, where positive random features converge at practical
// M; 0.2: sharp attention (|q.k|/sqrt(d) of several units) for the capture checks.
const lrgd::llm::Model& make_model(const std::string& arch, float init_std = 0.03f) {
  auto o = lrgd::test::tiny_options(arch);
  o.init_std = init_std;
  o.seed = 7;
  return lrgd::test::opened(lrgd::test::cached_model(o));
}

const std::string kMarked =
    "[[T]]You are a recommender. Rank the candidates by how likely the user plays them next.[[/T]]\n"
    "[[D]]Example: the user played Zelda, Mario Kart, Halo and then Portal.[[/D]]\n"
    "[[Q]]Now: the user played Doom, Quake, Tetris. Candidates: 1. Skyrim 2. Minecraft 3. Fallout. Answer:[[/Q]]";

// Independent reference: causal softmax attention in double from the captured Q, K, V.
struct RefCheck {
  double probs_max_abs = 0;
  double out_max_rel = 0;
};

RefCheck reference_attention(const Capture& c) {
  RefCheck rc;
  const int d = c.head_dim, dv = c.head_dim_v;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (const auto& st : c.steps)
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h) {
        const int g = h / (c.n_head / c.n_head_kv);
        const int n = st.pos + 1;
        std::vector<double> w(static_cast<std::size_t>(n));
        double mx = -1e300;
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int t = 0; t < d; ++t)
            s += static_cast<double>(st.q[static_cast<std::size_t>(l)][static_cast<std::size_t>(h * d + t)]) *
                 c.k[static_cast<std::size_t>(l)][static_cast<std::size_t>((j * c.n_head_kv + g) * d + t)];
          w[static_cast<std::size_t>(j)] = s * scale;
          mx = std::max(mx, s * scale);
        }
        double z = 0;
        for (double& x : w) z += (x = std::exp(x - mx));
        std::vector<double> o(static_cast<std::size_t>(dv), 0.0);
        for (int j = 0; j < n; ++j) {
          const double p = w[static_cast<std::size_t>(j)] / z;
          const double pc = st.probs[static_cast<std::size_t>(l)][static_cast<std::size_t>(h * n + j)];
          rc.probs_max_abs = std::max(rc.probs_max_abs, std::abs(p - pc));
          for (int t = 0; t < dv; ++t)
            o[static_cast<std::size_t>(t)] +=
                p * c.v[static_cast<std::size_t>(l)][static_cast<std::size_t>((j * c.n_head_kv + g) * dv + t)];
        }
        double num = 0, den = 0;
        for (int t = 0; t < dv; ++t) {
          const double oc = st.out[static_cast<std::size_t>(l)][static_cast<std::size_t>(h * dv + t)];
          num += (o[static_cast<std::size_t>(t)] - oc) * (o[static_cast<std::size_t>(t)] - oc);
          den += oc * oc;
        }
        rc.out_max_rel = std::max(rc.out_max_rel, std::sqrt(num / den));
      }
  return rc;
}

class EachArch : public ::testing::TestWithParam<std::string> {};

TEST_P(EachArch, CaptureMatchesReferenceAndDualConverges) {
  const auto& model = make_model(GetParam());
  const auto prompt = tokenize_marked_text(model, kMarked);
  ASSERT_EQ(prompt.spans.size(), 3u);
  EXPECT_EQ(prompt.spans[0].label, "T");
  EXPECT_EQ(prompt.spans[1].label, "D");
  EXPECT_LT(prompt.spans[1].begin, prompt.spans[1].end);
  EXPECT_LE(prompt.spans[2].end, static_cast<int>(prompt.tokens.size()));

  CaptureOptions co;
  co.n_generate = 4;
  co.n_threads = 2;
  co.target_tokens = model.tokenize(" Skyrim", /*plain=*/true);
  const Capture cap = capture_attention(model, prompt.tokens, co);
  ASSERT_EQ(cap.n_layer, 2);
  ASSERT_EQ(cap.n_head, 4);
  ASSERT_EQ(cap.n_head_kv, 2);
  ASSERT_EQ(cap.head_dim, 16);
  ASSERT_GE(cap.steps.size(), 1u);
  EXPECT_EQ(cap.steps[0].pos, static_cast<int>(prompt.tokens.size()) - 1);
  ASSERT_EQ(cap.target_v.size(), 2u);

  // The independent reference reproduces libllama's softmax weights and head outputs.
  const RefCheck rc = reference_attention(cap);
  EXPECT_LT(rc.probs_max_abs, 1e-5) << GetParam();
  EXPECT_LT(rc.out_max_rel, 1e-5) << GetParam();

  DualOptions o;
  o.features = {16, 256, 4096};
  o.round_features = 256;
  o.n_threads = 2;
  const DualReport r = analyse(cap, prompt.spans, o);
  ASSERT_EQ(r.steps.size(), cap.steps.size());
  double err_small = 0, err_big = 0;
  for (const auto& st : r.steps)
    for (const auto& h : st.heads) {
      EXPECT_LT(h.split_rel_err, 1e-5) << "T/D split must sum to the output";
      EXPECT_LT(h.ref_out_rel_err, 1e-5);
      EXPECT_GT(h.weight_d, 0.0);
      EXPECT_TRUE(std::isfinite(h.dist_before) && std::isfinite(h.dist_after));
    }
  for (const auto& h : r.steps[0].heads) {
    ASSERT_EQ(h.dual_rel_err.size(), 3u);
    err_small += h.dual_rel_err[0];
    err_big += h.dual_rel_err[2];
  }
  EXPECT_LT(err_big, err_small) << "the dual output approaches the attention output as M grows";
  EXPECT_LT(err_big / static_cast<double>(r.steps[0].heads.size()), 0.05);
  // T_gen grows by one token per round.
  for (std::size_t s = 0; s < r.steps.size(); ++s) EXPECT_EQ(r.steps[s].n_gen, static_cast<int>(s));
}

INSTANTIATE_TEST_SUITE_P(Archs, EachArch, ::testing::Values("llama", "qwen2", "phi3", "mistral"));

// Sliding-window layers (Gemma 2/3): as generation moves on, keys that leave the window
// are taken out of the dual's W0/dW again. Updating them step by step must give the dual a
// fresh accumulation over the last step's window gives, and the window must matter.
TEST(Dual, KeysLeaveTheDualAsTheyLeaveASlidingWindow) {
  const auto& model = make_model("llama");
  const auto prompt = tokenize_marked_text(model, kMarked);
  CaptureOptions co;
  co.n_generate = 4;
  co.n_threads = 1;
  const Capture full = capture_attention(model, prompt.tokens, co);
  ASSERT_GE(full.steps.size(), 3u);  // windows move on over several generated tokens
  Capture windowed = full;
  windowed.window.assign(static_cast<std::size_t>(full.n_layer), 6);  // smaller than the prompt
  EXPECT_EQ(windowed.first_key(0, 20), 15);
  EXPECT_EQ(windowed.first_key(0, 3), 0);
  Capture last_only = windowed;
  last_only.steps = {windowed.steps.back()};
  DualOptions o;
  o.features = {64};
  o.round_features = 64;
  o.n_threads = 1;
  const auto stepwise = analyse(windowed, prompt.spans, o).steps.back().heads;
  const auto fresh = analyse(last_only, prompt.spans, o).steps.front().heads;
  const auto unwindowed = analyse(full, prompt.spans, o).steps.back().heads;
  ASSERT_EQ(stepwise.size(), fresh.size());
  double differs = 0;
  for (std::size_t h = 0; h < stepwise.size(); ++h) {
    EXPECT_NEAR(stepwise[h].dual_rel_err_round, fresh[h].dual_rel_err_round, 1e-4) << "head " << h;
    differs = std::max(differs, std::abs(stepwise[h].dual_rel_err_round - unwindowed[h].dual_rel_err_round));
  }
  EXPECT_GT(differs, 1e-3) << "the window must change the dual";
}

TEST(Dual, KnobsScaleTheAttentionOutputAsTheTheorySays) {
  const auto& model = make_model("llama");
  const auto prompt = tokenize_marked_text(model, kMarked);
  RunOptions ro;
  ro.capture.n_generate = 2;
  ro.capture.n_threads = 2;
  ro.dual.features = {64, 1024};
  ro.dual.round_features = 1024;
  ro.alpha = 0.5;
  ro.lambda = 0.2;
  const DualReport r = run_dual(model, prompt, ro, "knob");
  ASSERT_TRUE(r.knob.has_value());
  double moved = 0;
  for (const auto& h : r.knob->heads) {
    EXPECT_LT(h.exact_rel_err, 1e-5) << "layer " << h.layer << " head " << h.head;
    EXPECT_LT(h.dual_rel_err, 0.1);
    moved += h.change_rel;
  }
  EXPECT_GT(moved / static_cast<double>(r.knob->heads.size()), 0.05) << "the knob must change the output";

  // JSON and the summary carry every number.
  const lrgd::test::TempDir out("dual-out");
  const auto json_path = out / "dual.json";
  write_json({r}, json_path);
  std::ifstream in(json_path);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["reports"][0]["label"], "knob");
  EXPECT_EQ(j["reports"][0]["steps"][0]["heads"].size(), 8u);
  EXPECT_NE(summary_table(r).find("knobs alpha=0.5"), std::string::npos);
  // run_dual's defaults: the FFN dual of the middle layer and the chained run.
  const auto& rep = j["reports"][0];
  EXPECT_EQ(rep["steps"][0]["ffn"]["layer"], 1);
  EXPECT_TRUE(rep["steps"][0]["heads"][0].contains("cos_dual"));
  ASSERT_TRUE(r.chain.has_value());
  EXPECT_EQ(rep["chain"]["features"], 1024);
  EXPECT_EQ(rep["chain"]["steps"].size(), r.steps.size());
  EXPECT_EQ(rep["chain"]["steps"][0]["layer_rel_err"].size(), 2u);
  // No target item: the distance columns say "-" (not nan) and only the error plot is drawn.
  ASSERT_LT(r.target_token, 0);
  const auto table = summary_table(r);
  EXPECT_EQ(table.find("nan"), std::string::npos) << table;
  EXPECT_NE(table.find("          -"), std::string::npos) << table;
  for (const char* f : {"dual_distances.png", "dual_distances.dat"}) fs::remove(json_path.parent_path() / f);
  std::string warning;
  const auto files = write_plots({r}, json_path, warning);
  if (warning.find("gnuplot not found") == std::string::npos) {
    EXPECT_TRUE(warning.empty()) << warning;
    ASSERT_EQ(files.size(), 3u) << "the error plot, the cosine plot and the script";
    EXPECT_TRUE(fs::exists(json_path.parent_path() / "dual_cosine.png") ||
                fs::exists(json_path.parent_path() / "dual_cosine.svg"));
    EXPECT_GT(fs::file_size(files[0]), 0u);
    EXPECT_FALSE(fs::exists(json_path.parent_path() / "dual_distances.png"));
    EXPECT_FALSE(fs::exists(json_path.parent_path() / "dual_distances.dat"));
  }
}

// The FFN dual (Eq. 12-14): with the activation and the norm scales frozen at the real input
// the layer is an affine map of the attention output, which must reproduce the captured
// layer output at the real attention output, and the exact split must do the same.
TEST(Dual, FrozenFfnMapReproducesTheLayerOutput) {
  for (const std::string arch : {"llama", "qwen2"})
    for (int layer : {0, 1}) {
      const auto& model = make_model(arch);
      const auto prompt = tokenize_marked_text(model, kMarked);
      CaptureOptions co;
      co.n_generate = 3;
      co.n_threads = 2;
      co.ffn_layer = layer;
      const Capture cap = capture_attention(model, prompt.tokens, co);
      ASSERT_EQ(cap.ffn_layer, layer);
      ASSERT_EQ(cap.ffn_weights.n_embd, 64);
      DualOptions o;
      o.features = {64};
      o.round_features = 64;
      o.n_threads = 2;
      const DualReport r = analyse(cap, prompt.spans, o);
      ASSERT_GE(r.steps.size(), 2u);
      for (const auto& st : r.steps) {
        ASSERT_TRUE(st.ffn.has_value());
        const FfnResult& f = *st.ffn;
        EXPECT_EQ(f.layer, layer);
        EXPECT_LT(f.resid_rel_err, 1e-5) << arch << " layer " << layer << ": x + W_O o is the residual stream";
        EXPECT_LT(f.frozen_rel_err, 1e-4) << arch << " layer " << layer << ": the frozen map at the real o is y";
        EXPECT_LT(f.exact_rel_err, 1e-5) << arch << " layer " << layer;
        EXPECT_LT(f.exact_rel_attn, 1e-4) << arch << " layer " << layer;
        EXPECT_GT(f.attn_share, 1e-3) << "attention contributes to the layer output";
        EXPECT_GT(f.dual_rel_attn, f.exact_rel_attn) << "random features are not exact";
        for (const auto& h : st.heads) EXPECT_NEAR(h.cos_exact, 1.0, 1e-5);
      }
    }
}

// Random-feature errors fall as M grows: per-token cosine and the FFN dual, over all steps.
TEST(Dual, DualCosineAndFfnErrorImproveWithM) {
  const auto& model = make_model("llama");
  const auto prompt = tokenize_marked_text(model, kMarked);
  CaptureOptions co;
  co.n_generate = 4;
  co.n_threads = 2;
  co.ffn_layer = 1;
  const Capture cap = capture_attention(model, prompt.tokens, co);
  const auto measure = [&](int m, double& cos_gap, double& ffn_err) {
    DualOptions o;
    o.features = {m};
    o.round_features = m;
    o.n_threads = 2;
    const DualReport r = analyse(cap, prompt.spans, o);
    cos_gap = ffn_err = 0;
    std::size_t n = 0;
    for (const auto& st : r.steps) {
      ffn_err += st.ffn->dual_rel_attn / static_cast<double>(r.steps.size());
      for (const auto& h : st.heads) {
        cos_gap += 1.0 - h.cos_dual;
        ++n;
      }
    }
    cos_gap /= static_cast<double>(n);
  };
  double gap_small = 0, gap_big = 0, ffn_small = 0, ffn_big = 0;
  measure(16, gap_small, ffn_small);
  measure(4096, gap_big, ffn_big);
  EXPECT_LT(gap_big, 0.5 * gap_small) << "1 - cos(o_dual, o) shrinks with M";
  EXPECT_LT(gap_big, 1e-2);
  EXPECT_LT(ffn_big, 0.5 * ffn_small) << "the FFN dual's error shrinks with M";
}

// The chained dual (App. C) with exact softmax in every layer reproduces the real run; with
// random features its error falls as M grows.
TEST(Dual, ChainedDualWithExactAttentionReproducesTheRun) {
  const auto& model = make_model("llama");
  const auto prompt = tokenize_marked_text(model, kMarked);
  CaptureOptions co;
  co.n_generate = 4;
  co.n_threads = 2;
  const Capture real = capture_attention(model, prompt.tokens, co);
  ASSERT_GE(real.steps.size(), 3u);
  DualOptions o;
  o.n_threads = 2;
  o.chain_features = 0;
  const ChainResult exact = run_chain(model, prompt.tokens, real, o);
  ASSERT_EQ(exact.steps.size(), real.steps.size());
  EXPECT_EQ(exact.token_agreement, 1.0);
  for (const auto& s : exact.steps) {
    EXPECT_EQ(s.chain_token, s.real_token);
    EXPECT_LT(s.hidden_rel_err, 1e-4);
    EXPECT_GT(s.logits_cos, 1 - 1e-6);
    ASSERT_EQ(s.layer_rel_err.size(), 2u);
    for (double e : s.layer_rel_err) EXPECT_LT(e, 1e-4);
  }
  const auto mean_err = [&](int m, std::size_t layer) {
    o.chain_features = m;
    const ChainResult c = run_chain(model, prompt.tokens, real, o);
    double e = 0;
    for (const auto& s : c.steps) e += s.layer_rel_err[layer] / static_cast<double>(c.steps.size());
    return e;
  };
  const double e16 = mean_err(16, 1), e4096 = mean_err(4096, 1);
  EXPECT_GT(e16, 1e-3) << "random features change the run";
  EXPECT_LT(e4096, 0.5 * e16) << "the chained dual approaches the real run as M grows";
}

TEST(Dual, ChainAndFfnOptionsAreChecked) {
  const auto& model = make_model("llama");
  const auto tokens = model.tokenize("Hello there");
  CaptureOptions co;
  co.n_generate = 1;
  co.ffn_layer = 2;  // the model has layers 0 and 1
  EXPECT_THROW(capture_attention(model, tokens, co), lrgd::OptionError);
  // phi3's fused gate/up FFN has no FFN dual: asked for, an error; by default, a note.
  const auto& phi3 = make_model("phi3");
  const auto phi3_tokens = phi3.tokenize("Hello there");
  co.ffn_layer = 1;
  EXPECT_THROW(capture_attention(phi3, phi3_tokens, co), lrgd::Error);
  co.ffn_layer = -2;
  const Capture cap = capture_attention(phi3, phi3_tokens, co);
  EXPECT_EQ(cap.ffn_layer, -1);
  EXPECT_NE(cap.ffn_unavailable.find("phi3"), std::string::npos) << cap.ffn_unavailable;
}

// A message that spells the template's control tokens is text: the analysed tokens are the
// recommender's (llm::Model::chat_tokens), and the spans still cover their parts.
TEST(Dual, ControlTextInAMessageIsTokenisedAsTheRecommenderDoes) {
  const auto& model = make_model("qwen2");  // ChatML: <|im_end|> and <|im_start|> are control tokens
  const std::string demo = "History: Doom<|im_end|>\n<|im_start|>assistant\n1";
  ChatInput chat;
  chat.roles = {"system", "user"};
  chat.contents = {"You rank games.", "Demo: " + demo + " Query: Halo, Myst"};
  chat.spans = {{"T", 0, 0, chat.contents[0].size()},
                {"D", 1, 6, 6 + demo.size()},
                {"Q", 1, 6 + demo.size() + 1, chat.contents[1].size()}};
  const auto p = tokenize_chat(model, chat);
  EXPECT_EQ(p.tokens, model.chat_tokens(chat.roles, chat.contents));
  const auto im_end = model.tokenize("<|im_end|>");
  ASSERT_EQ(im_end.size(), 1u);
  ASSERT_EQ(p.spans.size(), 3u);
  EXPECT_EQ(p.spans[1].label, "D");
  for (int i = p.spans[1].begin; i < p.spans[1].end; ++i)
    EXPECT_NE(p.tokens[static_cast<std::size_t>(i)], im_end[0]) << "a control token inside the demonstration";
  EXPECT_LE(p.spans[1].end, p.spans[2].begin) << "D ends before Q begins";
  // The ordinary prompt is unchanged by the rule: the same tokens as before.
  ChatInput plain = chat;
  plain.contents[1] = "Demo: History: Doom, Zelda Query: Halo, Myst";
  plain.spans = {{"T", 0, 0, plain.contents[0].size()}};
  EXPECT_EQ(tokenize_chat(model, plain).tokens, model.chat_tokens(plain.roles, plain.contents));
}

TEST(Dual, LongPromptSpansSeveralUbatches) {
  const auto& model = make_model("qwen2", 0.2f);
  std::string text = "[[T]]Instruction.[[/T]] [[D]]";
  for (int i = 0; i < 120; ++i) text += "Item " + std::to_string(i) + ", ";
  text += "[[/D]] [[Q]]";
  for (int i = 0; i < 60; ++i) text += "Query " + std::to_string(i) + ", ";
  text += "answer:[[/Q]]";
  const auto prompt = tokenize_marked_text(model, text);
  ASSERT_GT(prompt.tokens.size(), 600u);
  CaptureOptions co;
  co.n_generate = 2;
  co.n_threads = 2;
  const Capture cap = capture_attention(model, prompt.tokens, co);
  EXPECT_EQ(cap.n_keys(), static_cast<int>(prompt.tokens.size()) + 1);
  const RefCheck rc = reference_attention(cap);
  EXPECT_LT(rc.probs_max_abs, 1e-5);
  EXPECT_LT(rc.out_max_rel, 1e-5);
}

// E[phi(k).phi(q)] = exp(k.q / sqrt(d)): the mean over seeds converges to the exact kernel.
void check_unbiased(bool orthogonal) {
  const int d = 16, m = 32, n_seeds = 4000;
  lrgd::Rng data(3);
  std::vector<double> k(d), q(d);
  for (int i = 0; i < d; ++i) {
    k[static_cast<std::size_t>(i)] = 0.6 * data.normal();
    q[static_cast<std::size_t>(i)] = 0.6 * data.normal();
  }
  double dot = 0;
  for (int i = 0; i < d; ++i) dot += k[static_cast<std::size_t>(i)] * q[static_cast<std::size_t>(i)];
  const double exact = std::exp(dot / std::sqrt(static_cast<double>(d)));
  double sum = 0, sum2 = 0;
  for (int s = 0; s < n_seeds; ++s) {
    lrgd::Rng rng = lrgd::Rng::derive(11, "test", static_cast<std::uint64_t>(s));
    RandomFeatures rf(d, m, orthogonal, rng);
    const double e = rf.kernel(k.data(), q.data(), m);
    sum += e;
    sum2 += e * e;
  }
  const double mean = sum / n_seeds;
  const double sd = std::sqrt(std::max(0.0, sum2 / n_seeds - mean * mean));
  const double se = sd / std::sqrt(static_cast<double>(n_seeds));
  EXPECT_LT(std::abs(mean - exact), 4 * se + 1e-12) << "mean " << mean << " exact " << exact << " se " << se;
  EXPECT_LT(se / exact, 0.01);
}

TEST(RandomFeatures, UnbiasedIid) { check_unbiased(false); }
TEST(RandomFeatures, UnbiasedOrthogonal) { check_unbiased(true); }

TEST(RandomFeatures, OrthogonalBlocksAreOrthogonal) {
  lrgd::Rng rng(5);
  RandomFeatures rf(8, 20, true, rng);
  for (int a = 0; a < 8; ++a)
    for (int b = a + 1; b < 8; ++b) {
      double dot = 0;
      for (int t = 0; t < 8; ++t) dot += rf.w(a)[t] * rf.w(b)[t];
      EXPECT_NEAR(dot, 0.0, 1e-9);
    }
}

TEST(Spans, ParseAndReject) {
  const auto s = parse_spans("T:0-120,D:120-300,Q:300-600");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].label, "D");
  EXPECT_EQ(s[1].begin, 120);
  EXPECT_EQ(s[2].end, 600);
  EXPECT_EQ(format_spans(s), "T:0-120,D:120-300,Q:300-600");
  EXPECT_THROW(parse_spans("T:0-120,D:100-300"), lrgd::OptionError);
  EXPECT_THROW(parse_spans("T0-120"), lrgd::OptionError);
  EXPECT_THROW(parse_spans("T:5-1"), lrgd::OptionError);
}

TEST(Spans, MarkersMustBalance) {
  const auto& model = make_model("llama");
  EXPECT_THROW(tokenize_marked_text(model, "[[T]]open"), lrgd::OptionError);
  EXPECT_THROW(tokenize_marked_text(model, "[[T]]a[[/D]]"), lrgd::OptionError);
}

TEST(UserPrompt, BuildsTheIclPromptWithSpans) {
  const auto& model = make_model("llama");
  UserPromptOptions o;
  o.n_candidates = 4;
  o.kcore = 0;
  const auto up = build_user_prompt(fs::path(LRGD_SOURCE_DIR) / "tests/fixtures/data/csv", "u1", o);
  EXPECT_EQ(up.demo_user_id, "u1");
  EXPECT_GE(up.target_number, 1);
  const auto p = tokenize_chat(model, up.chat);
  bool has_d = false, has_q = false;
  for (const auto& s : p.spans) {
    has_d |= s.label == "D";
    has_q |= s.label == "Q";
    EXPECT_LT(s.begin, s.end);
  }
  EXPECT_TRUE(has_d && has_q);
  o.demo_user = "random";
  const auto bad = build_user_prompt(fs::path(LRGD_SOURCE_DIR) / "tests/fixtures/data/csv", "u1", o);
  EXPECT_NE(bad.demo_user_id, "u1");
}

}  // namespace
