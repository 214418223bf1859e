// Attention capture through libllama's graph evaluation callback, and prompt tokenisation
// with token spans, on an open Model (lrgd/llama_capture.h; the dual analyser is the user).
//
// Graph nodes read (llama-graph.cpp, build_qkv / build_attn / build_attn_mha):
//   Qcur-l, Kcur-l  op ROPE   [head_dim, n_head(_kv), n_tokens]  post-RoPE (phi3 scales Q
//                             afterwards in a SCALE node of the same name: not taken)
//   Vcur-l          op RESHAPE or VIEW (phi3's fused QKV) [head_dim_v, n_head_kv, n_tokens]
//   kq_soft_max-l   [n_kv (padded), n_tokens, n_head]
//   kqv_out-l       [head_dim_v * n_head, n_tokens]
//   l_out-l, result_norm (the final normed hidden state), and for CaptureOptions::ffn_layer
//   the residual stream and FFN: the GET_ROWS of token_embd.weight / inp_scaled (layer 0's input), the MUL_MAT whose
//   src[1] is kqv_out-l (W_O o), attn_post_norm-l (Gemma 3), ffn_inp-l / sa_out-l,
//   ffn_norm-l, ffn_up-l, ffn_swiglu-l / ffn_geglu-l, ffn_out-l (op MUL_MAT: llama names
//   the residual add after it ffn_out too), ffn_post_norm-l (Gemma 3). Only the last row.
// With CaptureOptions::attention_override, kqv_out-l is rewritten in the callback before the
// W_O matmul reads it (the chained dual run).
// Views are read with their strides. A prompt longer than one ubatch reaches the callback
// in several graphs: K and V rows are appended in order, Q, weights and outputs are kept
// for the last row seen (the last prompt token once the prompt is done).
#include <ggml-cpp.h>
#include <gguf.h>
#include <llama.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>

#include "llama_common.h"
#include "lrgd/error.h"
#include "lrgd/llama_capture.h"

namespace lrgd::llm {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

enum class Node {
  None,
  Q,
  K,
  V,
  Probs,
  Out,
  LOut,
  Hidden,
  Embd,
  AttnWo,
  AttnPost,
  FfnInp,
  FfnNorm,
  FfnUp,
  FfnAct,
  FfnOut,
  FfnPost
};

// "Kcur-12" -> (Node::K, 12).
std::pair<Node, int> classify(const ggml_tensor* t) {
  const std::string_view name(t->name);
  if (name == "result_norm") return {Node::Hidden, 0};
  // Layer 0's input: the token embedding rows (Gemma scales them afterwards: inp_scaled).
  if (name == "inp_scaled" ||
      (t->op == GGML_OP_GET_ROWS && t->src[0] != nullptr && std::strcmp(t->src[0]->name, "token_embd.weight") == 0))
    return {Node::Embd, 0};
  // W_O o: the matmul reading kqv_out (unnamed or renamed by the architecture).
  if (t->op == GGML_OP_MUL_MAT && t->src[1] != nullptr && std::strncmp(t->src[1]->name, "kqv_out-", 8) == 0) {
    const auto [kind, layer] = classify(t->src[1]);
    return {kind == Node::Out ? Node::AttnWo : Node::None, layer};
  }
  const auto dash = name.rfind('-');
  if (dash == std::string_view::npos || dash + 1 >= name.size()) return {Node::None, -1};
  const std::string_view base = name.substr(0, dash);
  int layer = 0;
  for (char c : name.substr(dash + 1)) {
    if (c < '0' || c > '9') return {Node::None, -1};
    layer = layer * 10 + (c - '0');
  }
  if (base == "Qcur" && t->op == GGML_OP_ROPE) return {Node::Q, layer};
  if (base == "Kcur" && t->op == GGML_OP_ROPE) return {Node::K, layer};
  if (base == "Vcur" && (t->op == GGML_OP_RESHAPE || t->op == GGML_OP_VIEW)) return {Node::V, layer};
  if (base == "kq_soft_max") return {Node::Probs, layer};
  if (base == "kqv_out") return {Node::Out, layer};
  if (base == "l_out") return {Node::LOut, layer};
  if (base == "attn_post_norm") return {Node::AttnPost, layer};
  if (base == "ffn_inp" || base == "sa_out") return {Node::FfnInp, layer};
  if (base == "ffn_norm") return {Node::FfnNorm, layer};
  if (base == "ffn_up") return {Node::FfnUp, layer};
  if (base == "ffn_swiglu" || base == "ffn_geglu") return {Node::FfnAct, layer};
  if (base == "ffn_out" && t->op == GGML_OP_MUL_MAT) return {Node::FfnOut, layer};
  if (base == "ffn_post_norm") return {Node::FfnPost, layer};
  return {Node::None, -1};
}

float* at(const ggml_tensor* t, int64_t i0, int64_t i1, int64_t i2) {
  return reinterpret_cast<float*>(static_cast<char*>(t->data) + i0 * static_cast<int64_t>(t->nb[0]) +
                                  i1 * static_cast<int64_t>(t->nb[1]) + i2 * static_cast<int64_t>(t->nb[2]));
}

struct State {
  Capture* cap = nullptr;
  const CaptureOptions* opt = nullptr;
  bool target_mode = false;                // feeding the target token: only V is kept
  std::vector<int> k_rows, v_rows;         // per layer: rows appended so far
  CapturedStep* step = nullptr;            // where Q, weights and outputs go
  std::vector<float> scale;                // per position (knob check), empty: none
  std::vector<std::vector<float>> q_rows;  // [layer] every query row of the batch (override)
  std::vector<float> override_out;
  std::string error;
};

// The last row (column ne[0] values of row ne[1]-1) of a 2-d activation.
std::vector<float> last_row(const ggml_tensor* t) {
  std::vector<float> r(static_cast<std::size_t>(t->ne[0]));
  for (int64_t i = 0; i < t->ne[0]; ++i) r[static_cast<std::size_t>(i)] = *at(t, i, t->ne[1] - 1, 0);
  return r;
}

// Whether a node of `kind` at `layer` is wanted: the attention nodes of every layer, l_out of
// every layer, the final hidden state, and the FFN nodes of the FFN layer (its input is the
// output of the layer before it, or the embeddings).
bool wanted(const State& s, Node kind, int layer) {
  const int fl = s.cap->ffn_layer;
  switch (kind) {
    case Node::None:
      return false;
    case Node::Hidden:
      return true;
    case Node::Embd:
      return fl == 0;
    case Node::Q:
    case Node::K:
    case Node::V:
    case Node::Probs:
    case Node::Out:
    case Node::LOut:
      return layer >= 0 && layer < s.cap->n_layer;
    default:
      return fl >= 0 && layer == fl;
  }
}

bool on_node(ggml_tensor* t, bool ask, void* user) {
  auto& s = *static_cast<State*>(user);
  if (ask && std::getenv("LRGD_DUAL_DEBUG") != nullptr)
    std::fprintf(stderr, "node %s op %s ne %lld %lld %lld\n", t->name, ggml_op_name(t->op),
                 static_cast<long long>(t->ne[0]), static_cast<long long>(t->ne[1]), static_cast<long long>(t->ne[2]));
  const auto [kind, layer] = classify(t);
  if (!wanted(s, kind, layer)) return false;
  if (s.target_mode && kind != Node::V) return false;
  if (ask) return true;
  if (t->type != GGML_TYPE_F32) {
    s.error = std::string("tensor ") + t->name + " is not f32 (use an f32 KV cache)";
    return false;
  }
  Capture& c = *s.cap;
  const auto L = static_cast<std::size_t>(layer);
  switch (kind) {
    case Node::K: {
      if (c.head_dim == 0) c.head_dim = static_cast<int>(t->ne[0]);
      if (t->ne[0] != c.head_dim || t->ne[1] != c.n_head_kv) {
        s.error = std::string("unexpected shape of ") + t->name;
        return false;
      }
      for (int64_t r = 0; r < t->ne[2]; ++r)
        for (int64_t h = 0; h < t->ne[1]; ++h)
          for (int64_t i = 0; i < t->ne[0]; ++i) c.k[L].push_back(*at(t, i, h, r));
      s.k_rows[L] += static_cast<int>(t->ne[2]);
      return true;
    }
    case Node::V: {
      if (c.head_dim_v == 0) c.head_dim_v = static_cast<int>(t->ne[0]);
      if (t->ne[0] != c.head_dim_v || t->ne[1] != c.n_head_kv) {
        s.error = std::string("unexpected shape of ") + t->name;
        return false;
      }
      if (s.target_mode) {
        auto& tv = c.target_v[L];
        tv.clear();
        const int64_t r = t->ne[2] - 1;
        for (int64_t h = 0; h < t->ne[1]; ++h)
          for (int64_t i = 0; i < t->ne[0]; ++i) tv.push_back(*at(t, i, h, r));
        return true;
      }
      for (int64_t r = 0; r < t->ne[2]; ++r) {
        const std::size_t pos = static_cast<std::size_t>(s.v_rows[L] + r);
        const float f = pos < s.scale.size() ? s.scale[pos] : 1.0f;
        for (int64_t h = 0; h < t->ne[1]; ++h)
          for (int64_t i = 0; i < t->ne[0]; ++i) {
            float* p = at(t, i, h, r);
            c.v[L].push_back(*p);
            if (f != 1.0f) *p *= f;  // the intervention: the KV cache receives scaled values
          }
      }
      s.v_rows[L] += static_cast<int>(t->ne[2]);
      return true;
    }
    case Node::Q: {
      if (c.head_dim == 0) c.head_dim = static_cast<int>(t->ne[0]);
      if (t->ne[0] != c.head_dim || t->ne[1] != c.n_head) {
        s.error = std::string("unexpected shape of ") + t->name;
        return false;
      }
      auto& q = s.step->q[L];
      q.clear();
      const int64_t r = t->ne[2] - 1;
      for (int64_t h = 0; h < t->ne[1]; ++h)
        for (int64_t i = 0; i < t->ne[0]; ++i) q.push_back(*at(t, i, h, r));
      if (s.opt->attention_override) {
        auto& all = s.q_rows[L];
        all.clear();
        for (int64_t row = 0; row < t->ne[2]; ++row)
          for (int64_t h = 0; h < t->ne[1]; ++h)
            for (int64_t i = 0; i < t->ne[0]; ++i) all.push_back(*at(t, i, h, row));
      }
      return true;
    }
    case Node::Probs: {
      const int n_pos = s.k_rows[L];  // keys so far, the query's own included
      if (t->ne[0] < n_pos || t->ne[2] != c.n_head) {
        s.error = std::string("unexpected shape of ") + t->name;
        return false;
      }
      auto& p = s.step->probs[L];
      p.clear();
      const int64_t r = t->ne[1] - 1;
      for (int64_t h = 0; h < t->ne[2]; ++h)
        for (int64_t j = 0; j < n_pos; ++j) p.push_back(*at(t, j, r, h));
      return true;
    }
    case Node::Out: {
      if (t->ne[0] != static_cast<int64_t>(c.head_dim_v) * c.n_head) {
        s.error = std::string("unexpected shape of ") + t->name;
        return false;
      }
      if (s.opt->attention_override) {
        // Keys and values of this batch are in the capture already (Kcur, Vcur come first).
        const auto n_rows = static_cast<int>(t->ne[1]);
        auto& buf = s.override_out;
        buf.resize(static_cast<std::size_t>(t->ne[0] * t->ne[1]));
        for (int64_t r = 0; r < t->ne[1]; ++r)
          for (int64_t i = 0; i < t->ne[0]; ++i) buf[static_cast<std::size_t>(r * t->ne[0] + i)] = *at(t, i, r, 0);
        try {
          s.opt->attention_override(c, layer, s.k_rows[L] - n_rows, n_rows, s.q_rows[L], buf);
        } catch (const std::exception& e) {
          s.error = e.what();
          return false;
        }
        for (int64_t r = 0; r < t->ne[1]; ++r)
          for (int64_t i = 0; i < t->ne[0]; ++i) *at(t, i, r, 0) = buf[static_cast<std::size_t>(r * t->ne[0] + i)];
      }
      auto& o = s.step->out[L];
      o.clear();
      const int64_t r = t->ne[1] - 1;
      for (int64_t i = 0; i < t->ne[0]; ++i) o.push_back(*at(t, i, r, 0));
      return true;
    }
    case Node::Hidden:
      s.step->hidden = last_row(t);
      return true;
    case Node::LOut: {
      s.step->l_out[L] = last_row(t);
      if (layer + 1 == c.ffn_layer) s.step->ffn.x = s.step->l_out[L];
      if (layer == c.ffn_layer) s.step->ffn.l_out = s.step->l_out[L];
      return true;
    }
    case Node::Embd:
      s.step->ffn.x = last_row(t);  // inp_scaled (Gemma) comes after the embedding rows and wins
      return true;
    case Node::AttnWo:
      s.step->ffn.attn_wo = last_row(t);
      return true;
    case Node::AttnPost:
      s.step->ffn.attn_post = last_row(t);
      return true;
    case Node::FfnInp:
      s.step->ffn.h = last_row(t);
      return true;
    case Node::FfnNorm:
      s.step->ffn.norm = last_row(t);
      return true;
    case Node::FfnUp:
      s.step->ffn.up = last_row(t);
      return true;
    case Node::FfnAct:
      s.step->ffn.act = last_row(t);
      return true;
    case Node::FfnOut:
      s.step->ffn.ffn_out = last_row(t);
      return true;
    case Node::FfnPost:
      s.step->ffn.ffn_post = last_row(t);
      return true;
    case Node::None:
      break;
  }
  return false;
}

void decode_or_throw(llama_context* ctx, const std::vector<llama_token>& tokens, int pos0, State& s, const char* what) {
  const int32_t rc = llama_decode(ctx, *detail::sequence_batch(tokens, pos0, false));
  if (!s.error.empty()) throw Error("attention capture failed: " + s.error);
  if (rc != 0) throw Error(std::string("llama_decode failed on the ") + what + " (code " + std::to_string(rc) + ")");
}

llama_token argmax_last(llama_context* ctx, int n_vocab) {
  const float* lg = llama_get_logits_ith(ctx, -1);
  return static_cast<llama_token>(std::max_element(lg, lg + n_vocab) - lg);
}

// With the FFN layer chosen by default (`ffn_auto`), a graph without the FFN nodes drops the
// FFN dual (noted in Capture::ffn_unavailable) instead of failing the whole analysis.
void check_step(Capture& c, CapturedStep& st, bool ffn_auto) {
  for (int l = 0; l < c.n_layer; ++l) {
    const auto L = static_cast<std::size_t>(l);
    if (st.q[L].empty() || st.probs[L].empty() || st.out[L].empty())
      throw Error("attention capture: layer " + std::to_string(l) +
                  " lacks Qcur/kq_soft_max/kqv_out (flash attention on, or an unsupported architecture)");
  }
  if (c.ffn_layer >= 0) {
    const FfnStep& f = st.ffn;
    std::string missing;
    if (f.x.empty() || f.attn_wo.empty() || f.h.empty() || f.norm.empty() || f.up.empty() || f.act.empty() ||
        f.ffn_out.empty() || f.l_out.empty())
      missing = "layer " + std::to_string(c.ffn_layer) + " of the " + c.arch +
                " graph lacks one of ffn_inp/sa_out, ffn_norm, ffn_up, ffn_swiglu/ffn_geglu, ffn_out, l_out "
                "(only gated FFNs with separate gate and up matrices are supported)";
    else if (f.attn_post.empty() != f.ffn_post.empty())
      missing = "only one of attn_post_norm and ffn_post_norm in the " + c.arch + " graph";
    if (!missing.empty()) {
      if (!ffn_auto) throw Error("FFN capture: " + missing);
      c.ffn_unavailable = missing;
      c.ffn_layer = -1;
      st.ffn = FfnStep{};
    }
  }
}

// Weight `name` of the GGUF at `path` dequantised to f32, row-major [ne1][ne0].
std::vector<float> read_weight(const std::filesystem::path& path, const std::string& name, int64_t& ne0, int64_t& ne1) {
  ggml_type type = GGML_TYPE_F32;
  std::size_t bytes = 0, offset = 0;
  {
    ggml_context* meta_raw = nullptr;
    gguf_init_params params{/*no_alloc=*/true, &meta_raw};
    const gguf_context_ptr g(gguf_init_from_file(path.c_str(), params));
    const ggml_context_ptr meta(meta_raw);
    if (!g) throw IoError("cannot read GGUF " + path.string());
    const int64_t id = gguf_find_tensor(g.get(), name.c_str());
    const ggml_tensor* t = id < 0 ? nullptr : ggml_get_tensor(meta.get(), name.c_str());
    if (t == nullptr || t->ne[2] != 1 || t->ne[3] != 1) throw Error("FFN dual: the model has no 2-d tensor " + name);
    ne0 = t->ne[0];
    ne1 = t->ne[1];
    type = t->type;
    bytes = ggml_nbytes(t);
    offset = gguf_get_data_offset(g.get()) + gguf_get_tensor_offset(g.get(), id);
  }
  std::vector<char> raw(bytes);
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(raw.data(), static_cast<std::streamsize>(bytes));
  if (!in) throw IoError("cannot read tensor " + name + " from " + path.string());
  std::vector<float> out(static_cast<std::size_t>(ne0 * ne1));
  if (type == GGML_TYPE_F32) {
    std::memcpy(out.data(), raw.data(), out.size() * sizeof(float));
  } else {
    const auto* traits = ggml_get_type_traits(type);
    if (traits == nullptr || traits->to_float == nullptr)
      throw Error("FFN dual: cannot dequantise " + name + " of type " + ggml_type_name(type));
    const std::size_t row_bytes = ggml_row_size(type, ne0);
    for (int64_t r = 0; r < ne1; ++r)
      traits->to_float(raw.data() + static_cast<std::size_t>(r) * row_bytes,
                       out.data() + static_cast<std::size_t>(r * ne0), ne0);
  }
  return out;
}

FfnWeights read_ffn_weights(const std::filesystem::path& path, int layer, int n_attn) {
  FfnWeights w;
  const std::string blk = "blk." + std::to_string(layer) + ".";
  int64_t a0 = 0, a1 = 0, u0 = 0, u1 = 0, d0 = 0, d1 = 0;
  w.wo = read_weight(path, blk + "attn_output.weight", a0, a1);
  w.up = read_weight(path, blk + "ffn_up.weight", u0, u1);
  w.down = read_weight(path, blk + "ffn_down.weight", d0, d1);
  if (a0 != n_attn || u0 != a1 || d0 != u1 || d1 != a1)
    throw Error("FFN dual: unexpected shapes of the attn_output / ffn_up / ffn_down weights of layer " +
                std::to_string(layer));
  w.n_attn = n_attn;
  w.n_embd = static_cast<int>(a1);
  w.n_ff = static_cast<int>(u1);
  return w;
}

// Token index of a character boundary: the tokens of text[0, c) that agree with the full
// tokenisation (longest common prefix). A token that straddles the boundary belongs to
// the span that starts there.
// Character ranges of `text` that are message content spelling control tokens: tokenised
// with special-token parsing off, as detail::chat_tokens does for the recommender, so
// the analysed tokens are the ones the recommender sees. Everything else (the template's
// markup, ordinary content) is tokenised with parsing on.
using PlainRanges = std::vector<std::pair<std::size_t, std::size_t>>;

// Tokens of text[0, upto) under that rule.
std::vector<llama_token> tokenize_prefix(const llama_vocab* vocab, const std::string& text, const PlainRanges& plain,
                                         std::size_t upto) {
  std::vector<llama_token> out;
  if (plain.empty()) {
    out = detail::tokenize(vocab, text.substr(0, upto), true, true);
  } else {
    if (llama_vocab_get_add_bos(vocab)) out.push_back(llama_vocab_bos(vocab));
    const auto append = [&](std::size_t a, std::size_t b, bool special) {
      if (b <= a) return;
      const auto t = detail::tokenize(vocab, text.substr(a, b - a), false, special);
      out.insert(out.end(), t.begin(), t.end());
    };
    std::size_t pos = 0;
    for (const auto& [a, b] : plain) {
      if (a >= upto) break;
      append(pos, a, true);
      append(a, std::min(b, upto), false);
      pos = std::min(b, upto);
    }
    append(pos, upto, true);
    if (upto >= text.size() && llama_vocab_get_add_eos(vocab)) out.push_back(llama_vocab_eos(vocab));
  }
  detail::drop_double_bos(vocab, out);
  return out;
}

int token_boundary(const llama_vocab* vocab, const std::string& text, const PlainRanges& plain, std::size_t c,
                   const std::vector<llama_token>& full) {
  const auto pre = tokenize_prefix(vocab, text, plain, c);
  std::size_t n = 0;
  while (n < pre.size() && n < full.size() && pre[n] == full[n]) ++n;
  return static_cast<int>(n);
}

struct LabelledRange {
  std::string label;
  std::size_t begin, end;
};

TokenizedPrompt tokenize_with_ranges(const llama_vocab* vocab, std::string text,
                                     const std::vector<LabelledRange>& ranges, const PlainRanges& plain = {}) {
  TokenizedPrompt p;
  p.tokens = tokenize_prefix(vocab, text, plain, text.size());
  if (p.tokens.empty()) throw Error("empty prompt after tokenisation");
  for (const auto& r : ranges) {
    TokenSpan s{r.label, token_boundary(vocab, text, plain, r.begin, p.tokens),
                token_boundary(vocab, text, plain, r.end, p.tokens)};
    if (r.end >= text.size()) s.end = static_cast<int>(p.tokens.size());
    if (s.end > s.begin) p.spans.push_back(s);
  }
  p.text = std::move(text);
  return p;
}

// Which layers use sliding-window attention, as libllama sets them up (set_swa_pattern):
// with a window n_swa > 0 and period p, layer il is windowed when il % p < p - 1.
std::vector<int> sliding_windows(const llama_model* model, const std::string& arch, int n_layer) {
  std::vector<int> w(static_cast<std::size_t>(n_layer), 0);
  const int n_swa = llama_model_n_swa(model);
  if (n_swa <= 0) return w;
  int period = 0;
  if (arch == "gemma3") period = 6;
  if (arch == "gemma2") period = 2;
  const std::string key = detail::model_meta(model, (arch + ".attention.sliding_window_pattern").c_str());
  if (!key.empty() && std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    period = std::stoi(key);
  if (period <= 0)
    throw Error("the " + arch + " model has sliding-window attention (" + std::to_string(n_swa) +
                " tokens) of a layout the analyser does not know");
  for (int il = 0; il < n_layer; ++il)
    if (il % period < period - 1) w[static_cast<std::size_t>(il)] = n_swa;
  return w;
}

}  // namespace

Capture capture_attention(const Model& handle, const std::vector<std::int32_t>& tokens, const CaptureOptions& o) {
  if (tokens.empty()) throw OptionError("--prompt-file", "empty prompt");
  const auto t0 = std::chrono::steady_clock::now();
  llama_model* model = detail::handle(handle);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);

  Capture c;
  c.arch = handle.info().arch;
  c.n_layer = llama_model_n_layer(model);
  c.n_head = llama_model_n_head(model);
  c.n_head_kv = llama_model_n_head_kv(model);
  c.n_embd = llama_model_n_embd(model);
  c.ffn_layer = o.ffn_layer == -2 ? c.n_layer / 2 : o.ffn_layer;
  if (c.ffn_layer < -1 || c.ffn_layer >= c.n_layer)
    throw OptionError("--ffn-layer",
                      "layer " + std::to_string(o.ffn_layer) + " outside 0.." + std::to_string(c.n_layer - 1));
  c.window = sliding_windows(model, c.arch, c.n_layer);
  c.n_prompt = static_cast<int>(tokens.size());
  c.tokens = tokens;
  c.k.resize(static_cast<std::size_t>(c.n_layer));
  c.v.resize(static_cast<std::size_t>(c.n_layer));
  c.target_v.resize(o.target_tokens.empty() ? 0 : static_cast<std::size_t>(c.n_layer));
  for (auto t : tokens)
    if (t < 0 || t >= n_vocab)
      throw OptionError("--prompt-file", "token id " + std::to_string(t) + " outside the vocabulary");

  State s;
  s.cap = &c;
  s.opt = &o;
  s.k_rows.assign(static_cast<std::size_t>(c.n_layer), 0);
  s.v_rows.assign(static_cast<std::size_t>(c.n_layer), 0);
  s.q_rows.resize(static_cast<std::size_t>(c.n_layer));
  if (o.scale_values) {
    s.scale.assign(tokens.size(), static_cast<float>(1.0 - o.lambda));
    for (const auto& sp : o.spans)
      if (sp.label == "D" || sp.label == "P")
        for (int i = std::max(0, sp.begin); i < std::min(sp.end, c.n_prompt); ++i)
          s.scale[static_cast<std::size_t>(i)] = static_cast<float>(o.alpha);
  }

  const int n_gen = std::max(0, o.n_generate);
  LoadOptions lo;
  lo.n_threads = o.n_threads;
  lo.n_batch = std::max(512, c.n_prompt);
  lo.kv_f32 = true;
  lo.flash_attn = false;
  lo.kv_unified = true;
  auto ctx = detail::make_context(model, lo, std::max(64, c.n_prompt + n_gen + 2), on_node, &s);
  c.context_ms = ms_since(t0);

  auto new_step = [&](int pos) {
    c.steps.emplace_back();
    CapturedStep& st = c.steps.back();
    st.pos = pos;
    st.q.resize(static_cast<std::size_t>(c.n_layer));
    st.probs.resize(static_cast<std::size_t>(c.n_layer));
    st.out.resize(static_cast<std::size_t>(c.n_layer));
    st.l_out.resize(static_cast<std::size_t>(c.n_layer));
    s.step = &st;
  };
  const auto keep_logits = [&] {
    const float* lg = llama_get_logits_ith(ctx.get(), -1);
    c.steps.back().logits.assign(lg, lg + n_vocab);
  };

  // The prompt: step 0 is its last token.
  const auto t1 = std::chrono::steady_clock::now();
  c.steps.reserve(static_cast<std::size_t>(n_gen) + 1);
  new_step(c.n_prompt - 1);
  decode_or_throw(ctx.get(), tokens, 0, s, "prompt");
  check_step(c, c.steps.back(), o.ffn_layer == -2);
  llama_token next = argmax_last(ctx.get(), n_vocab);
  c.steps.back().next_token = next;
  keep_logits();
  c.prompt_ms = ms_since(t1);
  c.kq_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));

  // The target's first token, fed once after the prompt and removed again.
  const auto t2 = std::chrono::steady_clock::now();
  if (!o.target_tokens.empty()) {
    c.target_token = o.target_tokens.front();
    if (c.target_token < 0 || c.target_token >= n_vocab)
      throw OptionError("--target", "target token outside the vocabulary");
    s.target_mode = true;
    decode_or_throw(ctx.get(), {c.target_token}, c.n_prompt, s, "target token");
    s.target_mode = false;
    llama_memory_seq_rm(llama_get_memory(ctx.get()), 0, c.n_prompt, -1);
  }

  // Greedy generation: step i feeds generated token i-1 at position n_prompt - 1 + i.
  // Teacher forcing feeds the given tokens instead (the chained run follows the real run).
  for (int i = 0; i < n_gen; ++i) {
    const bool forced = !o.forced_tokens.empty();
    if (forced && static_cast<std::size_t>(i) >= o.forced_tokens.size()) break;
    const llama_token feed = forced ? o.forced_tokens[static_cast<std::size_t>(i)] : next;
    if (feed < 0 || feed >= n_vocab) throw Error("forced token outside the vocabulary");
    c.generated.push_back(next);
    if (i + 1 == n_gen || llama_vocab_is_eog(vocab, feed)) break;
    c.tokens.push_back(feed);
    new_step(c.n_prompt + i);
    decode_or_throw(ctx.get(), {feed}, c.n_prompt + i, s, "generated token");
    check_step(c, c.steps.back(), o.ffn_layer == -2);
    next = argmax_last(ctx.get(), n_vocab);
    c.steps.back().next_token = next;
    keep_logits();
  }
  c.generate_ms = ms_since(t2);

  for (int l = 0; l < c.n_layer; ++l)
    if (s.k_rows[static_cast<std::size_t>(l)] != c.n_keys() || s.v_rows[static_cast<std::size_t>(l)] != c.n_keys())
      throw Error("attention capture: layer " + std::to_string(l) + " captured " +
                  std::to_string(s.k_rows[static_cast<std::size_t>(l)]) + " keys for " + std::to_string(c.n_keys()) +
                  " tokens");
  if (c.ffn_layer >= 0) c.ffn_weights = read_ffn_weights(handle.path(), c.ffn_layer, c.n_head * c.head_dim_v);
  return c;
}

TokenizedPrompt tokenize_marked_text(const Model& model, const std::string& marked) {
  std::string text;
  std::vector<LabelledRange> ranges;
  std::vector<std::pair<std::string, std::size_t>> open;
  std::size_t i = 0;
  while (i < marked.size()) {
    const auto b = marked.find("[[", i);
    if (b == std::string::npos) {
      text.append(marked, i, std::string::npos);
      break;
    }
    const auto e = marked.find("]]", b + 2);
    std::string tag = e == std::string::npos ? "" : marked.substr(b + 2, e - b - 2);
    const bool closing = !tag.empty() && tag[0] == '/';
    const std::string label = closing ? tag.substr(1) : tag;
    const bool valid = !label.empty() && std::all_of(label.begin(), label.end(), [](char ch) {
      return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    });
    text.append(marked, i, b - i);
    if (!valid) {  // not a marker: literal text
      text += "[[";
      i = b + 2;
      continue;
    }
    if (!closing) {
      open.emplace_back(label, text.size());
    } else {
      if (open.empty() || open.back().first != label)
        throw OptionError("--prompt-text", "closing marker [[/" + label + "]] does not match an open marker");
      ranges.push_back({label, open.back().second, text.size()});
      open.pop_back();
    }
    i = e + 2;
  }
  if (!open.empty()) throw OptionError("--prompt-text", "marker [[" + open.back().first + "]] is never closed");
  return tokenize_with_ranges(detail::vocab(model), std::move(text), ranges);
}

TokenizedPrompt tokenize_chat(const Model& model, const ChatInput& chat) {
  if (detail::chat_template(detail::handle(model)) == nullptr)
    throw Error("the model has no chat template; use --prompt-file or --prompt-text");
  const std::string buf = detail::apply_chat_template(detail::handle(model), chat.roles, chat.contents);
  // Where each message's content sits in the rendered text (searched in order).
  std::vector<std::size_t> offset;
  std::size_t from = 0;
  for (const auto& content : chat.contents) {
    const auto at_pos = buf.find(content, from);
    if (at_pos == std::string::npos) throw Error("a message's content is not verbatim in the rendered chat template");
    offset.push_back(at_pos);
    from = at_pos + content.size();
  }
  std::vector<LabelledRange> ranges;
  for (const auto& sp : chat.spans)
    ranges.push_back({sp.label, offset.at(sp.message) + sp.begin, offset.at(sp.message) + sp.end});
  // Content is text: a message that spells control tokens is tokenised without special
  // parsing, as the recommender does.
  const llama_vocab* vocab = detail::vocab(model);
  PlainRanges plain;
  for (std::size_t m = 0; m < chat.contents.size(); ++m) {
    const auto& c = chat.contents[m];
    if (detail::tokenize(vocab, c, false, true) != detail::tokenize(vocab, c, false, false))
      plain.emplace_back(offset[m], offset[m] + c.size());
  }
  return tokenize_with_ranges(vocab, buf, ranges, plain);
}

}  // namespace lrgd::llm
