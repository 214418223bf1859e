// Attention capture and span-keeping tokenisation on an open Model (the dual-model analyser,
// docs/dual.md, is their user): per layer the post-RoPE queries and keys, the values, the
// softmax weights and the head outputs as libllama computes them, read through its graph
// evaluation callback. No llama.h here.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lrgd/llama_model.h"

namespace lrgd::llm {

// ---------------------------------------------------------------------------------------
// Prompts and token spans

// Token index range [begin, end) with a label. Labels "D" and "P" form the demonstration
// group (dW); every other token (T, Q, system, chat-template tokens, generated tokens)
// belongs to the instruction group (W0).
struct TokenSpan {
  std::string label;
  int begin = 0;
  int end = 0;
};

// A prompt as token ids plus labelled token spans.
struct TokenizedPrompt {
  std::vector<std::int32_t> tokens;
  std::vector<TokenSpan> spans;
  std::string text;  // the text that was tokenised (chat template applied); empty for raw ids
};

// Raw text with span markers: "[[T]]...[[/T]] [[D]]...[[/D]]" (labels are any upper-case
// word). Markers are removed, the text is tokenised (BOS as the model wants, special tokens
// parsed) and character spans are mapped to token spans by tokenising prefixes (see
// docs/dual.md). Throws OptionError("--prompt-text") on unbalanced markers.
TokenizedPrompt tokenize_marked_text(const Model& model, const std::string& marked_text);

// Chat messages with character spans (byte ranges of message contents, as prompt::Span
// gives them) rendered with the model's chat template exactly as the embedded backend
// renders chat prompts; character spans become token spans. Throws Error if the model has
// no chat template or a span cannot be located.
struct CharSpan {
  std::string label;
  std::size_t message = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};
struct ChatInput {
  std::vector<std::string> roles;
  std::vector<std::string> contents;
  std::vector<CharSpan> spans;
};
TokenizedPrompt tokenize_chat(const Model& model, const ChatInput& chat);

// ---------------------------------------------------------------------------------------
// Capture

struct Capture;

// Replaces attention head outputs while the model runs (the chained dual run, App. C): called
// for every layer with the query rows of the current batch, at positions pos0 .. pos0 +
// n_rows - 1; `so_far` holds the keys and values of this run up to the last of them. `out`
// (n_rows x n_head*head_dim_v, row-major) holds libllama's outputs on entry and goes into
// W_O on return.
using AttentionOverride = std::function<void(const Capture& so_far, int layer, int pos0, int n_rows,
                                             const std::vector<float>& q, std::vector<float>& out)>;

struct CaptureOptions {
  int n_generate = 10;  // greedy steps (each step is one train-then-test round)
  int n_threads = 0;    // 0: all cores
  // Target item: its first token is fed once after the prompt (then removed from the KV
  // cache) to read its value vectors. Empty: no target.
  std::vector<std::int32_t> target_tokens;
  // Value intervention (the knob check): values of tokens in `scale_group_d` (D and P) are
  // multiplied by alpha, all other values by (1 - lambda), before they enter the KV cache.
  // Captured V are always the unscaled values.
  bool scale_values = false;
  double alpha = 1.0;
  double lambda = 0.0;
  std::vector<TokenSpan> spans;  // for scale_values: which tokens are D/P
  // >= 0 (-2: n_layer / 2): capture this layer's residual stream and FFN (CapturedStep::ffn) and its W_O, W_up,
  // W_down (Capture::ffn_weights) for the FFN dual (Eq. 12-14).
  int ffn_layer = -1;
  AttentionOverride attention_override;  // set: the chained run
  // Non-empty: teacher forcing, step s+1 feeds forced_tokens[s] instead of the greedy token
  // (CapturedStep::next_token stays the model's own greedy choice).
  std::vector<std::int32_t> forced_tokens;
};

// One layer's residual stream and FFN at the query row (llama.cpp graph nodes; docs/dual.md).
struct FfnStep {
  std::vector<float> x;          // layer input: l_out of the layer before, or the embeddings
  std::vector<float> attn_wo;    // W_O o (the wo matmul of kqv_out)
  std::vector<float> attn_post;  // post-attention norm of W_O o (Gemma 3); empty: none
  std::vector<float> h;          // ffn_inp / sa_out: residual after attention
  std::vector<float> norm;       // ffn_norm: RMSNorm(h) * weight
  std::vector<float> up;         // ffn_up: W_up norm
  std::vector<float> act;        // ffn_swiglu / ffn_geglu: act(W_gate norm) * up
  std::vector<float> ffn_out;    // ffn_out: W_down act
  std::vector<float> ffn_post;   // post-FFN norm (Gemma 3); empty: none
  std::vector<float> l_out;      // layer output
};

// Dequantised weights of the FFN layer, row-major [out][in].
struct FfnWeights {
  int n_embd = 0, n_ff = 0, n_attn = 0;  // n_attn = n_head * head_dim_v
  std::vector<float> wo;                 // n_embd x n_attn
  std::vector<float> up;                 // n_ff x n_embd
  std::vector<float> down;               // n_embd x n_ff
};

// One query position: the token whose attention is analysed (step 0: the last prompt
// token; step s: generated token s-1 fed back), all floats as libllama computed them.
struct CapturedStep {
  int pos = 0;                            // query position; keys are 0..pos
  std::int32_t next_token = -1;           // greedy token produced at this position
  std::vector<std::vector<float>> q;      // [layer] n_head * head_dim (post-RoPE, unscaled)
  std::vector<std::vector<float>> probs;  // [layer] n_head * (pos + 1) (softmax weights)
  std::vector<std::vector<float>> out;    // [layer] n_head * head_dim_v (kqv_out)
  std::vector<std::vector<float>> l_out;  // [layer] n_embd: each layer's output (residual stream)
  std::vector<float> hidden;              // result_norm: the final normed hidden state
  std::vector<float> logits;              // the logits at this position
  FfnStep ffn;                            // CaptureOptions::ffn_layer's residual stream and FFN
};

struct Capture {
  std::string arch;
  int n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0;
  int n_prompt = 0;
  std::vector<std::int32_t> tokens;     // prompt + fed generated tokens (n_keys of them)
  std::vector<std::int32_t> generated;  // greedy tokens, one per step
  std::vector<std::vector<float>> k;    // [layer] n_keys * n_head_kv * head_dim (post-RoPE)
  std::vector<std::vector<float>> v;    // [layer] n_keys * n_head_kv * head_dim_v
  std::vector<CapturedStep> steps;
  std::vector<std::vector<float>> target_v;  // [layer] n_head_kv * head_dim_v; empty: no target
  std::int32_t target_token = -1;
  double kq_scale = 0;  // 1/sqrt(head_dim), the scale every supported arch uses
  // [layer] sliding-window attention: how many keys back a query sees (itself included);
  // 0: all (Gemma 2/3 attend over a window in all but every p-th layer).
  std::vector<int> window;
  int n_embd = 0;
  int ffn_layer = -1;
  FfnWeights ffn_weights;       // loaded when ffn_layer >= 0
  std::string ffn_unavailable;  // why the default FFN layer was dropped (the graph lacks it)
  double context_ms = 0, prompt_ms = 0, generate_ms = 0;

  int n_keys() const { return static_cast<int>(tokens.size()); }
  const float* key(int layer, int token, int kv_head) const {
    return k[static_cast<std::size_t>(layer)].data() +
           (static_cast<std::size_t>(token) * static_cast<std::size_t>(n_head_kv) + static_cast<std::size_t>(kv_head)) *
               static_cast<std::size_t>(head_dim);
  }
  const float* value(int layer, int token, int kv_head) const {
    return v[static_cast<std::size_t>(layer)].data() +
           (static_cast<std::size_t>(token) * static_cast<std::size_t>(n_head_kv) + static_cast<std::size_t>(kv_head)) *
               static_cast<std::size_t>(head_dim_v);
  }
  int kv_head_of(int head) const { return head / (n_head / n_head_kv); }  // ggml's GQA broadcast
  // The first key a query at `pos` attends to in `layer`.
  int first_key(int layer, int pos) const {
    const int w = window.empty() ? 0 : window[static_cast<std::size_t>(layer)];
    return w > 0 ? std::max(0, pos - w + 1) : 0;
  }
};

// Runs the model (flash attention off, f32 KV cache) on `tokens`, generating greedily.
// Throws Error on decode failure or when a tensor
// the analysis needs is not in the graph (an unsupported architecture).
Capture capture_attention(const Model& model, const std::vector<std::int32_t>& tokens, const CaptureOptions& options);

}  // namespace lrgd::llm
