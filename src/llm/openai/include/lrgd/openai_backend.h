// OpenAI-compatible HTTP backend: vLLM, llama-server, Ollama and hosted APIs behind the
// lrgd::llm::Backend interface. See docs/backends.md for the retry policy and the
// request format per server dialect.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lrgd/llm.h"

namespace lrgd::llm {

// How output constraints (grammar, JSON schema, candidate list) are sent.
enum class ConstraintDialect {
  LlamaCpp,  // llama-server: `grammar` (GBNF) and `json_schema` fields
  Vllm,      // vLLM: `structured_outputs: {grammar | json}`
  OpenAi,    // hosted OpenAI: `response_format: {type: json_schema}`; no grammars
  None,      // the server takes no constraints (Grammar/JsonSchema throw NotSupported)
};

// How `score` computes log-probabilities.
enum class ScoreMethod {
  Auto,         // LlamaServer if the first endpoint answers GET /props like llama-server, else Echo
  LlamaServer,  // native /completion: continuation tokens forced by a token-id grammar, n_probs=1
  Echo,         // /v1/completions with echo=true and logprobs (vLLM, legacy OpenAI); raw-text contexts only
  None,         // score throws NotSupported
};

struct OpenAiConfig {
  // Base URLs ("http://127.0.0.1:8080", "https://api.openai.com/v1"); a trailing "/v1" is
  // optional. Requests are spread round-robin over them; a retry goes to the next one.
  std::vector<std::string> endpoints;
  // Environment variable holding the API key, read once by make_openai_backend. Unset or
  // empty: no Authorization header (local servers).
  std::string api_key_env = "OPENAI_API_KEY";
  // The request's "model" field. Empty: the first id listed by the first endpoint's /v1/models.
  std::string model;
  // Identity for caches and run records. Empty: "openai:<model>", plus "+distinct" when
  // distinct_candidates is in effect (its answers differ, so they must not share cache rows).
  std::string model_id;
  // true: raw-text prompts are sent as one user message to /v1/chat/completions (servers
  // without /v1/completions). false: raw text and token prompts go to /v1/completions.
  bool use_chat = false;
  int max_in_flight = 4;          // concurrent requests over all endpoints, >= 1
  double timeout_s = 120;         // per attempt: longest wait for the server to send data
  double connect_timeout_s = 10;  // per attempt
  // Per attempt: the whole answer must arrive within this time, however steadily it drips,
  // and be no larger than this; past either the attempt fails and is retried.
  double total_timeout_s = 600;
  std::uint64_t max_response_bytes = 64ull << 20;
  int max_retries = 4;          // retries after the first attempt (so at most max_retries + 1 attempts)
  double backoff_base_s = 0.5;  // delay before retry r (0-based): uniform in [d/2, d], d = min(cap, base * 2^r)
  double backoff_cap_s = 30;
  double retry_after_cap_s = 120;  // a 429/503 Retry-After longer than this is cut to it
  std::uint64_t seed = 0;          // jitter stream (lrgd::Rng), so retry timings are reproducible
  ConstraintDialect dialect = ConstraintDialect::LlamaCpp;
  ScoreMethod score_method = ScoreMethod::Auto;
  // OutputConstraint::CandidateList on llama-server or vLLM: false (default) sends one
  // request with candidate_list_grammar() (lrgd/grammar.h: one label per line), which
  // cannot forbid repeated labels; true sends one request per line, each grammar offering
  // only the labels not chosen yet and continuing the answer so far (assistant prefill
  // for chat prompts), so the labels are exactly distinct, as in the embedded backend, at
  // the cost of list_length round trips. Token-id prompts always use the single grammar.
  bool distinct_candidates = false;
};

// Checks the configuration: throws OptionError naming the field ("endpoints", "max_in_flight",
// "timeout_s", ...) for an empty endpoint list, a URL that is not http(s)://host[:port][/path],
// or out-of-range numbers.
void validate(const OpenAiConfig& config);

// Builds the backend. Throws OptionError (see validate); when config.model is empty, asks the
// first endpoint's /v1/models and throws IoError if that fails or lists no model.
//
// generate(): one HTTP request per prompt, max_in_flight at a time; each retried on
// connection errors, timeouts, 408/429/5xx and unparseable 200 bodies (see docs/backends.md).
// A prompt that still fails comes back with finish == Error and the last error message;
// other 4xx answers fail at once. Throws NotSupported only for a constraint the dialect
// cannot express. Thread-safe: concurrent calls share the usage counters.
// score(): see ScoreMethod; a continuation that fails after retries sets ScoreResult::error.
std::unique_ptr<Backend> make_openai_backend(const OpenAiConfig& config);

}  // namespace lrgd::llm
