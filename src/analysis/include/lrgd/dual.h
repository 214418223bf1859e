// The dual-model analyser (docs/method.md section 3, docs/dual.md): captures per layer the
// post-RoPE queries and keys, the values, the softmax weights and the head outputs of a
// GGUF model through libllama, then splits every head's output into the instruction (T)
// and demonstration (D, P) parts, builds the dual linear model W0 + dW with positive random
// features (FAVOR+), follows it token by token through greedy generation and checks the
// value-head knobs (alpha: step size, lambda: weight decay).
//
// No llama.h here: the capture is the embedded engine's (lrgd/llama_capture.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lrgd/dataset.h"
#include "lrgd/llama_capture.h"
#include "lrgd/rng.h"

namespace lrgd::analysis {

using llm::AttentionOverride;
using llm::Capture;
using llm::capture_attention;
using llm::CapturedStep;
using llm::CaptureOptions;
using llm::CharSpan;
using llm::ChatInput;
using llm::FfnStep;
using llm::FfnWeights;
using llm::tokenize_chat;
using llm::tokenize_marked_text;
using llm::TokenizedPrompt;
using llm::TokenSpan;

// ---------------------------------------------------------------------------------------
// Prompts and token spans

// Parses "T:0-120,D:120-300,Q:300-600". Throws OptionError("--spans") on bad syntax,
// overlapping spans or begin > end.
std::vector<TokenSpan> parse_spans(const std::string& text);
std::string format_spans(const std::vector<TokenSpan>& spans);

// The ICL prompt of one dataset user, built as the recommender builds it (docs/dual.md):
// leave-one-out split, test history and seeded test candidates (trial 0), the user's own
// validation window as the demonstration, Template::builtin(template) rendered.
struct UserPromptOptions {
  std::uint64_t seed = 42;
  std::size_t max_history = 20;
  std::size_t n_candidates = 50;
  int list_length = 10;
  std::string template_name = "icl";
  int kcore = -1;  // data::LoadOptions::kcore (-1: the loader's default, 5-core)
  // Non-empty: the demonstration is taken from this user instead (a "bad" demonstration
  // for the good/bad comparison); "random": a user drawn with the seed.
  std::string demo_user;
  // Set: this demonstration (dataset item ids, e.g. a row of an LRGD memory) instead of the
  // user's validation window. Unknown ids throw OptionError("--demos-from").
  struct Demo {
    std::vector<std::string> history;
    std::string target;
    std::string explanation;
    std::string label;  // how it is named in the output ("LRGD best, S = 1.00")
  };
  std::optional<Demo> demo;
};
struct UserPrompt {
  ChatInput chat;
  std::string user_id;
  std::string demo_user_id;
  std::string target_title;  // the test target
  int target_number = 0;     // its shown candidate number (1-based)
  // The same query for an item-token model (`lrgd model train`): rec::item_prompt_tokens
  // with spans D (the demonstration block) and Q (the query block), and the target's token.
  TokenizedPrompt item_prompt;
  std::int32_t item_target_token = -1;
};
// `user_id`: the dataset's internal id or its own (data::find_user); UserPrompt::user_id is
// the internal one. Throws IoError / InputError from loading, OptionError("--user") for an
// unknown user.
UserPrompt build_user_prompt(const std::filesystem::path& data_dir, const std::string& user_id,
                             const UserPromptOptions& options);
UserPrompt build_user_prompt(const data::Dataset& dataset, const std::string& user_id,
                             const UserPromptOptions& options);

// ---------------------------------------------------------------------------------------
// Positive random features (FAVOR+): phi(x) = exp(-|x'|^2/2)/sqrt(M) [exp(w_i.x')]_i with
// x' = x / d^(1/4), so that E[phi(k).phi(q)] = exp(k.q / sqrt(d)).
class RandomFeatures {
 public:
  // Draws M vectors w_i ~ N(0, I_d) from `rng` (rng.normal() only). Orthogonal: blocks of
  // d rows are Gram-Schmidt orthonormalised and rescaled by chi(d)-distributed norms.
  RandomFeatures(int dim, int n_features, bool orthogonal, Rng& rng);
  int dim() const { return dim_; }
  int n_features() const { return n_features_; }
  const double* w(int i) const { return w_.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(dim_); }
  // phi(x) of the first `m` features (m <= n_features), in double.
  std::vector<double> features(const double* x, int m) const;
  // Estimate of exp(a.b/sqrt(d)) with the first m features.
  double kernel(const double* a, const double* b, int m) const;

 private:
  int dim_;
  int n_features_;
  std::vector<double> w_;
};

// ---------------------------------------------------------------------------------------
// Analysis

struct DualOptions {
  std::vector<int> features = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};  // M sweep (step 0)
  int round_features = 1024;  // M for the per-token rounds and the knob check
  bool orthogonal = false;
  std::uint64_t seed = 42;
  std::vector<int> layers;  // empty: all
  int n_threads = 0;        // 0: all cores
  int ffn_layer = -2;       // FFN dual layer (run_dual); -2: n_layer / 2, -1: none
  bool chain = true;        // the chained run (run_dual)
  int chain_features = -1;  // M of the chained run; -1: round_features, 0: exact softmax
};

// Numbers of one query head in one layer at one query position.
struct HeadResult {
  int layer = 0, head = 0, kv_head = 0;
  double weight_d = 0;               // attention mass on the demonstration group
  double split_rel_err = 0;          // |o_T + o_D - o_captured| / |o_captured| (captured weights)
  double ref_probs_max_abs = 0;      // max |softmax(q.k/sqrt d) (double, own) - captured weight|
  double ref_out_rel_err = 0;        // |own double attention - o_captured| / |o_captured|
  std::vector<double> dual_rel_err;  // per M of DualOptions::features (step 0 only)
  double dual_rel_err_round = 0;     // at round_features
  // Distances to the target value vector (relative L2, /|v_target|); NaN without target.
  double dist_before_exact = 0;  // softmax over T only (o_T renormalised)
  double dist_after_exact = 0;   // captured output
  double dist_before = 0;        // dual: W0 phi(q) / Z_T
  double dist_after = 0;         // dual: W1 phi(q) / Z,  W1 = W0 + dW
  // Fig. 8's comparison: cosine between the dual output and the captured head output.
  double cos_dual = 0;   // (W0 + dW) phi(q) / Z at round_features
  double cos_exact = 0;  // o_T + o_D (exact softmax split)
};

// The FFN dual of one layer at one step (Eq. 12-14, docs/dual.md): with the activation and
// the norm scales frozen at the real input, the layer output is affine in the attention
// output o: y(o) = c + A o, A = (I + P_f W_down diag(s) W_up D_n) P_a W_O.
struct FfnResult {
  int layer = 0;
  double frozen_rel_err = 0;  // |c + A o_real - y| / |y|, all from weights (y: captured l_out)
  double resid_rel_err = 0;   // |x + P_a W_O o_real - h| / |h|: W_O and the residual read right
  double attn_share = 0;      // |A o_real| / |y|: how much of the output attention contributes
  // Prediction y + A (o' - o_real) from the dual's o' against y: relative to |y|, and
  // relative to the attention contribution |A o_real|.
  double exact_rel_err = 0;  // o' = o_T + o_D (exact split)
  double dual_rel_err = 0;   // o' = (W0 + dW) phi(q) / Z at round_features
  double exact_rel_attn = 0;
  double dual_rel_attn = 0;
  double dual_cos_attn = 0;  // cos(A o', A o_real) for the random-feature o'
};

struct StepResult {
  int pos = 0;
  int n_gen = 0;  // generated tokens already in T (T_gen)
  std::int32_t next_token = -1;
  std::vector<HeadResult> heads;  // layer-major
  std::optional<FfnResult> ffn;
};

struct KnobResult {
  double alpha = 1, lambda = 0;
  // Per layer/head of the intervened run: exact prediction (1-lambda) o_T + alpha o_D vs
  // captured output, and dual prediction ((1-lambda) W0 + alpha dW) phi(q)/Z vs captured.
  struct Head {
    int layer = 0, head = 0;
    double exact_rel_err = 0;
    double dual_rel_err = 0;
    double change_rel = 0;  // |o_intervened - o_base| / |o_base| (how much the knob moved it)
  };
  std::vector<Head> heads;
};

// The chained multi-layer dual (App. C): a second run in which every layer's attention output
// is replaced by its dual output computed from that run's own q, k, v, with teacher forcing
// on the real run's greedy tokens, compared with the real run step by step.
struct ChainStep {
  int pos = 0;
  std::int32_t real_token = -1, chain_token = -1;  // greedy tokens of the real and the chained run
  double hidden_cos = 0, hidden_rel_err = 0;       // final normed hidden state vs the real run
  double logits_cos = 0;
  std::vector<double> layer_rel_err;  // [layer] |l_out_chain - l_out_real| / |l_out_real|
};
struct ChainResult {
  int features = 0;  // M; 0: exact softmax (the chain must reproduce the real run)
  std::vector<ChainStep> steps;
  double token_agreement = 0;  // fraction of steps whose greedy tokens agree
  double ms = 0;
};

struct Timing {
  double context_ms = 0, prompt_ms = 0, generate_ms = 0;  // capture (libllama)
  double features_ms = 0;                                 // phi(K), phi(q) (random features)
  double dual_ms = 0;                                     // W0, dW, Z accumulation and outputs
  double exact_ms = 0;                                    // exact split and double reference
  double knob_capture_ms = 0, knob_ms = 0;
  double chain_ms = 0;  // the chained run (its forward passes and dual attention)
  double total_ms = 0;
};

struct DualReport {
  std::string label;          // e.g. "good" / "bad"
  std::string demonstration;  // where the prompt's demonstration came from (--data runs)
  std::string model;
  std::string arch;
  int n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  int n_prompt = 0;
  std::vector<TokenSpan> spans;
  std::vector<std::int32_t> generated;
  std::int32_t target_token = -1;
  DualOptions options;
  std::vector<StepResult> steps;  // steps[0]: the last prompt token, with the M sweep
  std::optional<KnobResult> knob;
  std::optional<ChainResult> chain;
  std::string ffn_unavailable;  // set: why there is no FFN dual
  Timing timing;
};

// Analyses a capture (pure computation, no model). `spans` label the prompt tokens.
// Throws OptionError("--features") for M < 1, OptionError("--layers") for a layer outside
// the model.
DualReport analyse(const Capture& capture, const std::vector<TokenSpan>& spans, const DualOptions& options);

// The knob check on a capture made with CaptureOptions::scale_values, against the base
// capture of the same prompt (step 0 only).
KnobResult analyse_knobs(const Capture& base, const Capture& scaled, const std::vector<TokenSpan>& spans,
                         const DualOptions& options, double alpha, double lambda);

// The chained run against the base capture `real` of the same prompt: teacher-forced on
// real.generated, every layer's attention replaced by its dual at options.chain_features.
ChainResult run_chain(const llm::Model& model, const std::vector<std::int32_t>& tokens, const Capture& real,
                      const DualOptions& options);

// The whole pipeline: capture, analyse, knob check, chained run. `alpha`/`lambda` == 1/0: no knob check.
struct RunOptions {
  CaptureOptions capture;
  DualOptions dual;
  double alpha = 0.5;
  double lambda = 0.1;
};
DualReport run_dual(const llm::Model& model, const TokenizedPrompt& prompt, const RunOptions& options,
                    const std::string& label = "main");

// ---------------------------------------------------------------------------------------
// Output

// JSON with every number (all reports), pretty-printed. Throws IoError if it cannot write.
void write_json(const std::vector<DualReport>& reports, const std::filesystem::path& path);
// The readable summary: per layer, mean/max over heads.
std::string summary_table(const DualReport& report);
// Writes error-vs-M and per-token distance plots (PNG via gnuplot's pngcairo, else SVG)
// next to `json_path` (stem + "_error_vs_m.png", "_distances.png"), through a generated
// gnuplot script. Returns the files written; empty with `warning` set when gnuplot is
// missing or fails.
std::vector<std::filesystem::path> write_plots(const std::vector<DualReport>& reports,
                                               const std::filesystem::path& json_path, std::string& warning);

}  // namespace lrgd::analysis
