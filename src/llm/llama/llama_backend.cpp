#include "lrgd/llama_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>

#include "llama_common.h"
#include "lrgd/error.h"
#include "lrgd/grammar.h"
#include "lrgd/hash.h"
#include "lrgd/rng.h"

namespace lrgd::llm {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

constexpr llama_seq_id kPrefixSeq = 0;  // holds the last shared prefix; sequences 1..n work

// A prompt that does not fit the context: its result carries context_overflow = true.
class ContextOverflow : public Error {
 public:
  using Error::Error;
};

std::size_t common_prefix(const std::vector<llama_token>& a, const std::vector<llama_token>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

struct BatchGuard {
  llama_batch batch;
  BatchGuard(int32_t n_tokens, int32_t n_seq) : batch(llama_batch_init(n_tokens, 0, n_seq)) {}
  ~BatchGuard() { llama_batch_free(batch); }
  BatchGuard(const BatchGuard&) = delete;
  BatchGuard& operator=(const BatchGuard&) = delete;
  void clear() { batch.n_tokens = 0; }
  void add(llama_token t, llama_pos pos, llama_seq_id seq, bool logits) {
    const int32_t i = batch.n_tokens++;
    batch.token[i] = t;
    batch.pos[i] = pos;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = seq;
    batch.logits[i] = logits ? 1 : 0;
  }
};

// One prompt being answered in the current wave.
struct Slot {
  std::size_t prompt_index = 0;
  llama_seq_id seq = 1;
  std::vector<llama_token> tokens;
  llama_pos n_past = 0;
  llama_sampler_ptr sampler;
  // Greedy answers under a grammar: the grammar kept apart from the chain and applied
  // lazily (see LlamaBackend::pick). Empty otherwise; the chain then holds everything.
  llama_sampler_ptr lazy_grammar;
  // Candidate-list constraint state: labels left and lines left.
  std::vector<std::string> labels_left;
  int lines_left = 0;
  std::string line;  // text of the current line
  Generation out;
  bool done = false;
};

class LlamaBackend final : public Backend {
 public:
  LlamaBackend(std::shared_ptr<const Model> model, const LlamaBackendOptions& o)
      : opts_(o), handle_(std::move(model)), model_(detail::handle(*handle_)) {
    if (o.n_parallel < 1) throw OptionError("--parallel", "must be at least 1");
    vocab_ = llama_model_get_vocab(model_);
    text_vocab_ = handle_->info().has_text_vocab;
    const int train_ctx = llama_model_n_ctx_train(model_);
    n_ctx_seq_ = o.n_ctx_seq > 0 ? o.n_ctx_seq : std::min(train_ctx > 0 ? train_ctx : 4096, 4096);
    // Non-unified: every sequence (and the prefix holder) gets its own n_ctx_seq cells.
    const int n_ctx = o.n_ctx > 0 ? o.n_ctx : n_ctx_seq_ * (o.n_parallel + (o.kv_unified ? 0 : 1));
    LoadOptions lo;
    lo.n_threads = o.n_threads;
    lo.n_seq = o.n_parallel + 1;
    lo.n_batch = o.n_batch;
    lo.kv_f32 = o.kv_f32;
    lo.flash_attn = o.flash_attn;
    lo.kv_unified = o.kv_unified;
    ctx_ = detail::make_context(model_, lo, n_ctx);
    n_ctx_ = static_cast<int>(llama_n_ctx(ctx_.get()));
    if (!o.kv_unified) n_ctx_seq_ = std::min(n_ctx_seq_, n_ctx_ / (o.n_parallel + 1));
    n_batch_ = static_cast<int>(llama_n_batch(ctx_.get()));
  }

  std::string model_id() const override { return handle_->id(); }
  Usage usage() const override {
    std::lock_guard lock(mu_);
    return usage_;
  }

  std::vector<Generation> generate(std::span<const Prompt> prompts, const GenerationParams& params) override {
    std::lock_guard lock(mu_);
    std::vector<Generation> results(prompts.size());
    std::vector<std::vector<llama_token>> toks(prompts.size());
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      try {
        toks[i] = render(prompts[i]);
        const auto need = toks[i].size() + static_cast<std::size_t>(std::max(params.max_tokens, 0));
        if (need > static_cast<std::size_t>(n_ctx_seq_) || need > static_cast<std::size_t>(n_ctx_))
          throw ContextOverflow("context overflow: prompt of " + std::to_string(toks[i].size()) +
                                " tokens + max_tokens " + std::to_string(params.max_tokens) +
                                " exceeds the context of " + std::to_string(std::min(n_ctx_seq_, n_ctx_)) + " tokens");
        todo.push_back(i);
      } catch (const Error& e) {
        results[i].finish = FinishReason::Error;
        results[i].error = e.what();
        results[i].context_overflow = dynamic_cast<const ContextOverflow*>(&e) != nullptr;
        usage_.n_requests++;
        usage_.n_failed++;
      }
    }
    // Waves of at most n_parallel prompts whose tokens fit the KV cache together.
    std::size_t pos = 0;
    while (pos < todo.size()) {
      std::vector<std::size_t> wave;
      std::size_t cells = 0;
      while (pos < todo.size() && static_cast<int>(wave.size()) < opts_.n_parallel) {
        const std::size_t i = todo[pos];
        const std::size_t need = toks[i].size() + static_cast<std::size_t>(params.max_tokens);
        if (opts_.kv_unified && !wave.empty() && cells + need > static_cast<std::size_t>(n_ctx_)) break;
        cells += need;
        wave.push_back(i);
        ++pos;
      }
      run_wave(wave, toks, prompts, params, results);
    }
    return results;
  }

  std::vector<ScoreResult> score(std::span<const ScoreRequest> requests) override {
    std::lock_guard lock(mu_);
    std::vector<ScoreResult> out;
    out.reserve(requests.size());
    for (const auto& r : requests) {
      try {
        out.push_back(score_one(r));
      } catch (const Error& e) {
        ScoreResult s;
        s.error = e.what();
        s.context_overflow = dynamic_cast<const ContextOverflow*>(&e) != nullptr;
        out.push_back(std::move(s));
        usage_.n_failed++;
      }
      usage_.n_requests++;
    }
    return out;
  }

 private:
  std::vector<llama_token> render(const Prompt& p) const {
    if (p.is_tokens()) {
      const int32_t n_vocab = llama_vocab_n_tokens(vocab_);
      for (auto t : p.tokens)
        if (t < 0 || t >= n_vocab) throw Error("token id " + std::to_string(t) + " outside the vocabulary");
      return p.tokens;
    }
    if (!text_vocab_) throw Error("this model has no text vocabulary: pass token ids");
    if (p.is_chat()) {
      std::vector<std::string> roles, contents;
      for (const auto& m : p.messages) {
        roles.push_back(m.role);
        contents.push_back(m.content);
      }
      auto t = detail::chat_tokens(model_, roles, contents);
      if (t.empty()) throw Error("empty prompt");
      return t;
    }
    // A raw prompt is the caller's own text, template markup included.
    auto t = detail::tokenize(vocab_, p.text, true, true);
    detail::drop_double_bos(vocab_, t);
    if (t.empty()) throw Error("empty prompt");
    return t;
  }

  // A context and what its prefix sequence holds: the generation context, or the scoring one.
  struct Kv {
    llama_context* ctx;
    std::vector<llama_token>* prefix;
    llama_memory_t mem() const { return llama_get_memory(ctx); }
  };
  Kv main_kv() { return {ctx_.get(), &prefix_}; }
  llama_memory_t mem() const { return llama_get_memory(ctx_.get()); }

  // Makes sequence kPrefixSeq hold exactly `prefix`, reusing what it already holds.
  // Returns the number of tokens that were already there.
  std::size_t ensure_prefix(const std::vector<llama_token>& prefix) { return ensure_prefix(main_kv(), prefix); }
  std::size_t ensure_prefix(Kv kv, const std::vector<llama_token>& prefix) {
    std::size_t keep = common_prefix(*kv.prefix, prefix);
    if (keep < kv.prefix->size()) {
      llama_memory_seq_rm(kv.mem(), kPrefixSeq, static_cast<llama_pos>(keep), -1);
      kv.prefix->resize(keep);
    }
    BatchGuard b(n_batch_, 1);
    for (std::size_t i = keep; i < prefix.size();) {
      b.clear();
      for (; i < prefix.size() && b.batch.n_tokens < n_batch_; ++i)
        b.add(prefix[i], static_cast<llama_pos>(i), kPrefixSeq, false);
      decode(kv, b.batch);
    }
    *kv.prefix = prefix;
    return keep;
  }

  void decode(const llama_batch& batch) { decode(main_kv(), batch); }
  void decode(Kv kv, const llama_batch& batch) {
    const int32_t rc = llama_decode(kv.ctx, batch);
    if (rc != 0) {
      // The KV cache state is unknown now: drop everything, including the kept prefix.
      llama_memory_clear(kv.mem(), true);
      kv.prefix->clear();
      throw Error("llama_decode failed (code " + std::to_string(rc) + ")");
    }
  }

  // Scoring context: one unified KV buffer, so the shared context is decoded once and every
  // continuation's sequence points at the same cells (llama_memory_seq_cp is metadata only)
  // and all continuations go through one batch. The generation context keeps per-sequence
  // KV, which is faster for many long prompts. Created on the first multi-token scoring.
  Kv score_kv(std::size_t context_tokens) {
    if (opts_.kv_unified) return main_kv();
    const auto need = static_cast<uint32_t>(context_tokens) + static_cast<uint32_t>(kScoreCells);
    if (!score_ctx_ || llama_n_ctx(score_ctx_.get()) < need) {
      score_ctx_.reset();
      score_prefix_.clear();
      LoadOptions lo;
      lo.n_threads = opts_.n_threads;
      // libllama reserves an output row per sequence within one batch: no more than n_batch.
      score_seqs_ = std::max(1, std::min(kScoreSeqs, n_batch_ - 1));
      lo.n_seq = score_seqs_ + 1;
      lo.n_batch = opts_.n_batch;
      lo.kv_f32 = opts_.kv_f32;
      lo.flash_attn = opts_.flash_attn;
      lo.kv_unified = true;
      score_ctx_ =
          detail::make_context(model_, lo, static_cast<int>(std::max<uint32_t>(need, n_ctx_seq_ + kScoreCells)));
    }
    return {score_ctx_.get(), &score_prefix_};
  }

  llama_sampler_ptr make_sampler(const GenerationParams& p, const std::vector<llama_token>& prompt, Slot& slot) const {
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    llama_sampler_ptr chain(llama_sampler_chain_init(cp));
    std::string grammar;
    if (p.constraint.kind == OutputConstraint::Kind::Grammar) {
      grammar = p.constraint.grammar;
    } else if (p.constraint.kind == OutputConstraint::Kind::CandidateList) {
      grammar = candidate_list_grammar(slot.labels_left, 1);
    } else if (p.constraint.kind == OutputConstraint::Kind::JsonSchema) {
      throw Error("JSON-schema constraints are supported by the OpenAI backend only; use a grammar here");
    }
    slot.lazy_grammar.reset();
    if (!grammar.empty()) {
      llama_sampler_ptr g = make_grammar(grammar);
      // Greedy: checking only the argmax gives the same token as masking the whole
      // vocabulary first (pick() explains why); sampling keeps the grammar in the chain.
      if (p.temperature <= 0.0f && opts_.lazy_grammar)
        slot.lazy_grammar = std::move(g);
      else
        llama_sampler_chain_add(chain.get(), g.release());
    }
    if (p.temperature <= 0.0f) {
      llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
    } else {
      if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
      if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
      llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
      // The seed depends on the prompt, not on its place in the batch: batching never
      // changes an answer.
      std::string bytes(reinterpret_cast<const char*>(prompt.data()), prompt.size() * sizeof(llama_token));
      const auto seed = static_cast<uint32_t>(Rng::derive(p.seed, bytes).next_u64());
      llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(seed));
    }
    return chain;
  }

  llama_sampler_ptr make_grammar(const std::string& grammar) const {
    if (!text_vocab_) throw Error("grammar constraints need a text vocabulary");
    llama_sampler_ptr g(llama_sampler_init_grammar(vocab_, grammar.c_str(), "root"));
    if (!g) throw Error("invalid GBNF grammar");
    return g;
  }

  // The next token of a slot. With a lazy grammar (greedy only): take the first token of
  // highest logit and ask the grammar about that one token; only if it is rejected, mask
  // the whole vocabulary and take the first best allowed token, as llama.cpp's own
  // sampler does. Same token as masking first: the unconstrained first argmax, when
  // allowed, is the allowed token of highest logit and no allowed token before it ties.
  llama_token pick(Slot& s, int32_t batch_index) {
    if (!s.lazy_grammar) return llama_sampler_sample(s.sampler.get(), ctx_.get(), batch_index);
    const float* logits = llama_get_logits_ith(ctx_.get(), batch_index);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab_);
    llama_token best = static_cast<llama_token>(std::max_element(logits, logits + n_vocab) - logits);
    llama_token_data one{best, logits[best], 0.0f};
    llama_token_data_array just_one{&one, 1, -1, false};
    llama_sampler_apply(s.lazy_grammar.get(), &just_one);
    if (one.logit == -INFINITY) {
      ++usage_.n_grammar_full_masks;
      candidates_.resize(static_cast<std::size_t>(n_vocab));
      for (int32_t t = 0; t < n_vocab; ++t) candidates_[static_cast<std::size_t>(t)] = {t, logits[t], 0.0f};
      llama_token_data_array all{candidates_.data(), candidates_.size(), -1, false};
      llama_sampler_apply(s.lazy_grammar.get(), &all);
      std::size_t at = 0;
      for (std::size_t i = 1; i < all.size; ++i)
        if (all.data[i].logit > all.data[at].logit) at = i;
      best = all.data[at].id;
    }
    ++usage_.n_grammar_checks;
    llama_sampler_accept(s.lazy_grammar.get(), best);
    return best;
  }

  // After a token is accepted: for candidate lists, re-arm the grammar with the labels
  // not used yet once a line is complete (this is how distinctness is enforced).
  void after_token(Slot& s, const std::string& piece, const GenerationParams& p) {
    if (p.constraint.kind != OutputConstraint::Kind::CandidateList) return;
    s.line += piece;
    const auto nl = s.line.find('\n');
    if (nl == std::string::npos) return;
    const std::string label = s.line.substr(0, nl);
    s.line.clear();
    std::erase(s.labels_left, label);
    if (--s.lines_left <= 0 || s.labels_left.empty()) {
      s.done = true;
      s.out.finish = FinishReason::Stop;
      return;
    }
    auto fresh = make_sampler(p, s.tokens, s);
    s.sampler = std::move(fresh);
  }

  void run_wave(const std::vector<std::size_t>& wave, const std::vector<std::vector<llama_token>>& toks,
                std::span<const Prompt> prompts, const GenerationParams& params, std::vector<Generation>& results) {
    (void)prompts;
    const auto t0 = Clock::now();
    const std::vector<llama_token> prefix =
        opts_.prefix_reuse ? choose_prefix(wave, toks, prefix_) : std::vector<llama_token>{};
    std::vector<Slot> slots(wave.size());
    std::size_t reused_before = 0;
    bool first_sharer = true;
    try {
      reused_before = ensure_prefix(prefix);
      for (std::size_t k = 0; k < wave.size(); ++k) {
        Slot& s = slots[k];
        s.prompt_index = wave[k];
        s.seq = static_cast<llama_seq_id>(k + 1);
        s.tokens = toks[wave[k]];
        if (params.constraint.kind == OutputConstraint::Kind::CandidateList) {
          s.labels_left = params.constraint.labels;
          s.lines_left = params.constraint.list_length;
        }
        s.sampler = make_sampler(params, s.tokens, s);
        s.out.n_prompt_tokens = static_cast<int>(s.tokens.size());
        const bool shares = !prefix.empty() && s.tokens.size() > prefix.size() &&
                            std::equal(prefix.begin(), prefix.end(), s.tokens.begin());
        s.out.n_reused_tokens = shares ? static_cast<int>(first_sharer ? reused_before : prefix.size()) : 0;
        if (shares) first_sharer = false;
        llama_memory_seq_rm(mem(), s.seq, -1, -1);
        if (shares) llama_memory_seq_cp(mem(), kPrefixSeq, s.seq, -1, -1);
        s.n_past = shares ? static_cast<llama_pos>(prefix.size()) : 0;
      }
      prefill(slots, params);
      const double prompt_ms = ms_since(t0);
      const auto t1 = Clock::now();
      generate_loop(slots, params);
      const double gen_ms = ms_since(t1);
      for (auto& s : slots) {
        s.out.prompt_ms = prompt_ms / static_cast<double>(slots.size());
        s.out.generate_ms = gen_ms / static_cast<double>(slots.size());
      }
    } catch (const Error& e) {
      for (auto& s : slots) {
        s.out.finish = FinishReason::Error;
        s.out.error = e.what();
      }
    }
    for (auto& s : slots) {
      llama_memory_seq_rm(mem(), s.seq, -1, -1);
      usage_.n_requests++;
      if (!s.out.ok()) usage_.n_failed++;
      usage_.n_prompt_tokens += static_cast<std::uint64_t>(s.out.n_prompt_tokens);
      usage_.n_reused_tokens += static_cast<std::uint64_t>(s.out.n_reused_tokens);
      usage_.n_generated_tokens += static_cast<std::uint64_t>(s.out.n_generated_tokens);
      usage_.prompt_ms += s.out.prompt_ms;
      usage_.generate_ms += s.out.generate_ms;
      results[s.prompt_index] = std::move(s.out);
    }
  }

  // The prefix that saves most decoding in a wave: some prompt's first L tokens, shared by
  // the k prompts whose common prefix with it is at least L. Decoding it once instead of k
  // times saves (k - 1) * L tokens within the wave (the anchor alone saves nothing, so a
  // long prompt cannot win by sharing with itself); the prefix kept from the previous wave
  // counts as one more sharer. Each sharer keeps at least one own token.
  static std::vector<llama_token> choose_prefix(const std::vector<std::size_t>& wave,
                                                const std::vector<std::vector<llama_token>>& toks,
                                                const std::vector<llama_token>& kept) {
    std::size_t best_gain = 0, best_anchor = 0, best_len = 0;
    for (std::size_t a = 0; a < wave.size(); ++a) {
      const auto& anchor = toks[wave[a]];
      std::vector<std::size_t> lcps;
      for (std::size_t j = 0; j < wave.size(); ++j) {
        const auto& other = toks[wave[j]];
        lcps.push_back(std::min(common_prefix(anchor, other), std::min(anchor.size(), other.size()) - 1));
      }
      lcps.push_back(std::min(common_prefix(anchor, kept), anchor.size() - 1));
      std::sort(lcps.rbegin(), lcps.rend());
      for (std::size_t k = 1; k < lcps.size(); ++k) {
        const std::size_t gain = k * lcps[k];
        if (gain > best_gain) {
          best_gain = gain;
          best_anchor = a;
          best_len = lcps[k];
        }
      }
    }
    const auto& anchor = toks[wave[best_anchor]];
    return {anchor.begin(), anchor.begin() + static_cast<std::ptrdiff_t>(best_len)};
  }

  // Decodes every slot's prompt suffix, in chunks of n_batch, and samples its first token.
  void prefill(std::vector<Slot>& slots, const GenerationParams& params) {
    BatchGuard b(n_batch_, 1);
    std::vector<std::pair<std::size_t, int32_t>> pending;  // slot, batch index of its last token
    auto flush = [&] {
      if (b.batch.n_tokens == 0) return;
      decode(b.batch);
      for (auto [k, idx] : pending) sample_next(slots[k], idx, params);
      pending.clear();
      b.clear();
    };
    for (std::size_t k = 0; k < slots.size(); ++k) {
      Slot& s = slots[k];
      for (std::size_t i = static_cast<std::size_t>(s.n_past); i < s.tokens.size(); ++i) {
        if (b.batch.n_tokens >= n_batch_) flush();
        const bool last = i + 1 == s.tokens.size();
        b.add(s.tokens[i], static_cast<llama_pos>(i), s.seq, last);
        if (last) pending.emplace_back(k, b.batch.n_tokens - 1);
      }
      s.n_past = static_cast<llama_pos>(s.tokens.size());
    }
    flush();
  }

  void generate_loop(std::vector<Slot>& slots, const GenerationParams& params) {
    BatchGuard b(static_cast<int32_t>(slots.size()), 1);
    while (true) {
      b.clear();
      std::vector<std::size_t> active;
      for (std::size_t k = 0; k < slots.size(); ++k) {
        Slot& s = slots[k];
        if (s.done) continue;
        b.add(s.tokens.back(), s.n_past, s.seq, true);
        active.push_back(k);
      }
      if (active.empty()) return;
      decode(b.batch);
      for (std::size_t j = 0; j < active.size(); ++j) {
        Slot& s = slots[active[j]];
        s.n_past++;
        sample_next(s, static_cast<int32_t>(j), params);
      }
    }
  }

  void sample_next(Slot& s, int32_t batch_index, const GenerationParams& params) {
    if (s.done) return;
    if (s.out.n_generated_tokens >= params.max_tokens) {
      s.done = true;
      s.out.finish = FinishReason::Length;
      return;
    }
    const llama_token tok = pick(s, batch_index);
    s.out.n_generated_tokens++;
    if (llama_vocab_is_eog(vocab_, tok)) {
      s.done = true;
      s.out.finish = FinishReason::Stop;
      return;
    }
    s.tokens.push_back(tok);
    const std::string piece = text_vocab_ ? detail::token_to_piece(vocab_, tok) : " " + std::to_string(tok);
    s.out.text += piece;
    for (const auto& stop : params.stop) {
      if (stop.empty()) continue;
      const auto at = s.out.text.find(
          stop, s.out.text.size() > piece.size() + stop.size() ? s.out.text.size() - piece.size() - stop.size() : 0);
      if (at != std::string::npos) {
        s.out.text.resize(at);
        s.done = true;
        s.out.finish = FinishReason::Stop;
        return;
      }
    }
    after_token(s, piece, params);
    if (!s.done && s.out.n_generated_tokens >= params.max_tokens) {
      s.done = true;
      s.out.finish = FinishReason::Length;
    }
  }

  ScoreResult score_one(const ScoreRequest& r) {
    ScoreResult res;
    const auto t0 = Clock::now();
    const std::vector<llama_token> context = render(r.context);
    std::vector<std::vector<llama_token>> conts;
    if (!r.token_continuations.empty()) {
      conts = r.token_continuations;
    } else {
      for (const auto& c : r.continuations) conts.push_back(detail::tokenize(vocab_, c, false, false));
    }
    for (const auto& c : conts)
      if (c.empty()) throw Error("empty continuation");
    std::size_t longest = 0;
    for (const auto& c : conts) longest = std::max(longest, c.size());
    if (context.size() + longest > static_cast<std::size_t>(std::min(n_ctx_seq_, n_ctx_)))
      throw ContextOverflow("context overflow: context of " + std::to_string(context.size()) +
                            " tokens + continuation of " + std::to_string(longest) + " exceeds " +
                            std::to_string(std::min(n_ctx_seq_, n_ctx_)));
    std::vector<std::size_t> multi;  // continuations of more than one token
    for (std::size_t c = 0; c < conts.size(); ++c)
      if (conts[c].size() > 1) multi.push_back(c);
    // Single-token continuations (item-token models) need only the context's last logits:
    // the generation context serves; longer ones go to the unified scoring context.
    const Kv kv = multi.empty() ? main_kv() : score_kv(context.size());
    // The whole context goes to the prefix sequence; its last logits score first tokens.
    std::vector<llama_token> head(context.begin(), context.end() - 1);
    const std::size_t reused = ensure_prefix(kv, head);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab_);
    std::vector<float> last_logits;
    {
      const llama_seq_id seq = 1;
      llama_memory_seq_rm(kv.mem(), seq, -1, -1);
      if (!head.empty()) llama_memory_seq_cp(kv.mem(), kPrefixSeq, seq, -1, -1);
      BatchGuard b(1, 1);
      b.add(context.back(), static_cast<llama_pos>(head.size()), seq, true);
      decode(kv, b.batch);
      const float* lg = llama_get_logits_ith(kv.ctx, 0);
      last_logits.assign(lg, lg + n_vocab);
      llama_memory_seq_rm(kv.mem(), seq, -1, -1);
    }
    const double first_lse = log_sum_exp(last_logits.data(), n_vocab);
    res.logprobs.assign(conts.size(), 0.0);
    res.n_tokens.assign(conts.size(), 0);
    for (std::size_t c = 0; c < conts.size(); ++c) {
      res.logprobs[c] = static_cast<double>(last_logits[static_cast<std::size_t>(conts[c][0])]) - first_lse;
      res.n_tokens[c] = static_cast<int>(conts[c].size());
    }
    // Longer continuations: the whole context sits once in the scoring context's prefix
    // sequence; each continuation is a sequence sharing those cells, and as many as fit
    // (sequences, batch size, free cells) are decoded in one batch.
    std::vector<llama_token> full = head;
    full.push_back(context.back());
    if (!multi.empty()) {
      const int max_seqs = opts_.kv_unified ? opts_.n_parallel : score_seqs_;
      const auto free_cells = static_cast<std::size_t>(llama_n_ctx(kv.ctx)) - full.size();
      ensure_prefix(kv, full);
      BatchGuard b(n_batch_, 1);
      for (std::size_t start = 0; start < multi.size();) {
        b.clear();
        std::vector<std::pair<std::size_t, int32_t>> outs;  // continuation, first batch index
        std::size_t k = 0, cells = 0;
        for (; start + k < multi.size() && static_cast<int>(k) < max_seqs; ++k) {
          const auto& c = conts[multi[start + k]];
          const std::size_t n = c.size() - 1;
          if (k > 0 && (b.batch.n_tokens + static_cast<int32_t>(n) > n_batch_ || cells + n > free_cells)) break;
          const auto seq = static_cast<llama_seq_id>(k + 1);
          llama_memory_seq_rm(kv.mem(), seq, -1, -1);
          llama_memory_seq_cp(kv.mem(), kPrefixSeq, seq, -1, -1);
          outs.emplace_back(multi[start + k], b.batch.n_tokens);
          for (std::size_t i = 0; i < n; ++i) b.add(c[i], static_cast<llama_pos>(full.size() + i), seq, true);
          cells += n;
        }
        decode(kv, b.batch);
        for (auto [ci, first] : outs) {
          const auto& c = conts[ci];
          for (std::size_t i = 0; i + 1 < c.size(); ++i) {
            const float* lg = llama_get_logits_ith(kv.ctx, first + static_cast<int32_t>(i));
            res.logprobs[ci] += static_cast<double>(lg[c[i + 1]]) - log_sum_exp(lg, n_vocab);
          }
        }
        for (std::size_t j = 0; j < k; ++j) llama_memory_seq_rm(kv.mem(), static_cast<llama_seq_id>(j + 1), -1, -1);
        start += k;
      }
    }
    usage_.n_prompt_tokens += context.size();
    usage_.n_reused_tokens += reused;
    for (const auto& c : conts) usage_.n_scored_tokens += c.size();
    res.n_context_tokens = static_cast<int>(context.size());
    usage_.prompt_ms += ms_since(t0);
    return res;
  }

  static double log_sum_exp(const float* x, int32_t n) {
    float mx = x[0];
    for (int32_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
    double s = 0;
    for (int32_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - mx));
    return static_cast<double>(mx) + std::log(s);
  }

  LlamaBackendOptions opts_;
  std::shared_ptr<const Model> handle_;  // shared with whoever opened it
  llama_model* model_ = nullptr;         // handle_'s libllama model
  llama_context_ptr ctx_;
  const llama_vocab* vocab_ = nullptr;
  bool text_vocab_ = true;
  int n_ctx_ = 0;
  int n_ctx_seq_ = 0;
  int n_batch_ = 0;
  std::vector<llama_token> prefix_;         // what kPrefixSeq holds
  static constexpr int kScoreSeqs = 64;     // continuations decoded together when scoring
  static constexpr int kScoreCells = 4096;  // KV cells for them beside the context
  llama_context_ptr score_ctx_;
  int score_seqs_ = 1;                        // continuation sequences of score_ctx_
  std::vector<llama_token> score_prefix_;     // what kPrefixSeq of score_ctx_ holds
  std::vector<llama_token_data> candidates_;  // the whole vocabulary, for a full grammar mask
  mutable std::mutex mu_;
  Usage usage_;
};

}  // namespace

std::unique_ptr<Backend> make_llama_backend(std::shared_ptr<const Model> model, const LlamaBackendOptions& options) {
  if (!model) throw Error("make_llama_backend: no model");
  return std::make_unique<LlamaBackend>(std::move(model), options);
}

std::unique_ptr<Backend> make_llama_backend(const LlamaBackendOptions& options) {
  return make_llama_backend(Model::open(options.model), options);
}

}  // namespace lrgd::llm
