// The one interface the recommender talks to; the embedded libllama engine and the
// OpenAI-compatible client sit behind it. Contract shared by llm/, rec/, optim/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lrgd::llm {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

// A prompt is chat messages (the model's chat template is applied), raw text, or raw
// token ids (models without a text tokenizer, e.g. `lrgd model train`'s item-token models).
struct Prompt {
  std::vector<ChatMessage> messages;
  std::string text;
  std::vector<std::int32_t> tokens;

  static Prompt chat(std::vector<ChatMessage> m) { return Prompt{std::move(m), {}, {}}; }
  static Prompt raw(std::string t) { return Prompt{{}, std::move(t), {}}; }
  static Prompt ids(std::vector<std::int32_t> t) { return Prompt{{}, {}, std::move(t)}; }
  bool is_chat() const { return !messages.empty(); }
  bool is_tokens() const { return !tokens.empty(); }
};

// Restricts what the model may write.
struct OutputConstraint {
  enum class Kind { None, Grammar, JsonSchema, CandidateList };
  Kind kind = Kind::None;
  std::string grammar;      // GBNF, for Kind::Grammar
  std::string json_schema;  // for Kind::JsonSchema
  // Kind::CandidateList: the answer is `list_length` distinct labels from `labels`
  // ("1".."50" or exact titles), one bare label per line, each ending in "\n"
  // (lrgd/grammar.h).
  std::vector<std::string> labels;
  int list_length = 10;
};

struct GenerationParams {
  int max_tokens = 128;
  float temperature = 0.0f;  // 0: greedy
  float top_p = 1.0f;
  int top_k = 0;  // 0: off
  std::uint64_t seed = 0;
  std::vector<std::string> stop;
  OutputConstraint constraint;
  bool use_cache = true;  // response cache (greedy only unless forced by the backend config)
};

enum class FinishReason { Stop, Length, Error };
// "stop" | "length" | "error", as run records and the response cache write them.
std::string_view finish_name(FinishReason finish);
// The reason named `name`; false for any other text.
bool parse_finish(std::string_view name, FinishReason& out);

struct Generation {
  std::string text;
  FinishReason finish = FinishReason::Stop;
  std::string error;  // set when finish == Error: the request failed after retries
  // The failure was a prompt (with max_tokens) longer than the model's context: a shorter
  // prompt may succeed (the recommender's overflow policy drops history and asks again).
  bool context_overflow = false;
  int n_prompt_tokens = 0;
  int n_generated_tokens = 0;
  int n_reused_tokens = 0;  // prompt tokens served from a cached prefix
  double prompt_ms = 0;
  double generate_ms = 0;
  bool from_cache = false;  // served by the response cache
  bool ok() const { return finish != FinishReason::Error; }
};

// `score`: log-probability of each continuation given one shared context.
struct ScoreRequest {
  Prompt context;
  std::vector<std::string> continuations;                      // text continuations, or
  std::vector<std::vector<std::int32_t>> token_continuations;  // raw token ids
};

struct ScoreResult {
  std::vector<double> logprobs;   // sum of token log-probabilities, one per continuation
  std::vector<int> n_tokens;      // tokens in each continuation
  int n_context_tokens = 0;       // tokens of the shared context (decoded once, or reused)
  std::string error;              // non-empty when the request failed
  bool context_overflow = false;  // the failure was a context longer than the model's (as Generation's)
  bool ok() const { return error.empty(); }
};

// Whether a server's error text says that the prompt exceeds the model's context (the
// wordings of vLLM, llama-server, Ollama and OpenAI). Servers report it only as text; the
// OpenAI-compatible backend turns it into the typed context_overflow flags above.
bool is_context_overflow_message(std::string_view server_error);

// Token accounting and timings, summed over a backend's life (or a run).
struct Usage {
  std::uint64_t n_requests = 0;
  std::uint64_t n_failed = 0;
  std::uint64_t n_failed_attempts = 0;  // server attempts that failed (retried, or the last of a failure)
  std::uint64_t n_cache_hits = 0;
  std::uint64_t n_neutralised = 0;  // special-token spellings made text in content sent to a server
  std::uint64_t n_prompt_tokens = 0;
  std::uint64_t n_reused_tokens = 0;
  std::uint64_t n_generated_tokens = 0;
  std::uint64_t n_scored_tokens = 0;  // continuation tokens decoded by score()
  // Constrained greedy tokens checked against the grammar one token at a time, and those
  // of them that needed the whole vocabulary masked (the first choice was not allowed).
  std::uint64_t n_grammar_checks = 0;
  std::uint64_t n_grammar_full_masks = 0;
  double prompt_ms = 0;
  double generate_ms = 0;
  Usage& operator+=(const Usage& o);
  // What happened between two readings of a backend's usage().
  Usage operator-(const Usage& earlier) const;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // One result per prompt, in order. A failed prompt comes back with finish == Error;
  // only programmer errors throw.
  virtual std::vector<Generation> generate(std::span<const Prompt> prompts, const GenerationParams& params) = 0;
  // Throws NotSupported where the backend cannot score (e.g. a server without logprobs).
  virtual std::vector<ScoreResult> score(std::span<const ScoreRequest> requests) = 0;
  // Identifies the model for caches and run records (e.g. "gguf:<sha256>" or "openai:<name>").
  virtual std::string model_id() const = 0;
  virtual Usage usage() const = 0;
};

// Content is text, never control. A server tokenises what it is sent with special-token
// parsing on, so content that spells a special token (`<|im_end|>`, `<end_of_turn>`,
// `</s>`, `[INST]`, `<<SYS>>`, ...) would become that token. This inserts U+2060 WORD
// JOINER after the spelling's first character: the text reads the same, tokenises as
// text, and deleting every U+2060 gives the original back. Returns the spellings changed.
std::size_t neutralise_special_spellings(std::string& text);

}  // namespace lrgd::llm
