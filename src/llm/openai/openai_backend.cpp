// OpenAI-compatible backend: request building, response parsing, scoring.
#include "lrgd/openai_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "lrgd/error.h"
#include "lrgd/grammar.h"
#include "lrgd/parallel.h"
#include "openai/http_client.h"

namespace lrgd::llm {

using nlohmann::json;
using openai::HttpPool;
using openai::HttpResult;

void validate(const OpenAiConfig& c) {
  if (c.endpoints.empty()) throw OptionError("endpoints", "at least one base URL is needed");
  for (const auto& e : c.endpoints) openai::parse_endpoint(e);
  if (c.max_in_flight < 1 || c.max_in_flight > 4096) throw OptionError("max_in_flight", "must be in 1..4096");
  if (!(c.timeout_s > 0)) throw OptionError("timeout_s", "must be > 0");
  if (!(c.connect_timeout_s > 0)) throw OptionError("connect_timeout_s", "must be > 0");
  if (!(c.total_timeout_s > 0)) throw OptionError("total_timeout_s", "must be > 0");
  if (c.max_response_bytes < 1024) throw OptionError("max_response_bytes", "must be >= 1024");
  if (c.max_retries < 0 || c.max_retries > 100) throw OptionError("max_retries", "must be in 0..100");
  if (!(c.backoff_base_s >= 0)) throw OptionError("backoff_base_s", "must be >= 0");
  if (!(c.backoff_cap_s >= c.backoff_base_s)) throw OptionError("backoff_cap_s", "must be >= backoff_base_s");
  if (!(c.retry_after_cap_s >= 0)) throw OptionError("retry_after_cap_s", "must be >= 0");
  if (c.api_key_env.find('=') != std::string::npos) throw OptionError("api_key_env", "not a variable name");
}

namespace {

// Reads a non-negative integer field; 0 if absent or not a number.
std::int64_t get_int(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  return it->get<std::int64_t>();
}

double get_double(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  return it->get<double>();
}

// Token counts and timings from "usage" (OpenAI) and "timings" (llama-server).
void read_accounting(const json& body, double wall_ms, Generation& g) {
  if (body.contains("usage")) {
    const json& u = body.at("usage");
    g.n_prompt_tokens = static_cast<int>(get_int(u, "prompt_tokens"));
    g.n_generated_tokens = static_cast<int>(get_int(u, "completion_tokens"));
    if (u.is_object() && u.contains("prompt_tokens_details")) {
      g.n_reused_tokens = static_cast<int>(get_int(u.at("prompt_tokens_details"), "cached_tokens"));
    }
  }
  if (body.contains("timings") && body.at("timings").is_object()) {
    const json& t = body.at("timings");
    g.prompt_ms = get_double(t, "prompt_ms");
    g.generate_ms = get_double(t, "predicted_ms");
    g.n_reused_tokens = static_cast<int>(get_int(t, "cache_n"));
    if (g.n_prompt_tokens == 0) g.n_prompt_tokens = static_cast<int>(get_int(t, "prompt_n") + get_int(t, "cache_n"));
    if (g.n_generated_tokens == 0) g.n_generated_tokens = static_cast<int>(get_int(t, "predicted_n"));
  } else {
    g.generate_ms = wall_ms;  // no server timings: the request's wall time
  }
}

std::string check_choices(const json& j, bool chat) {
  if (!j.is_object() || !j.contains("choices") || !j.at("choices").is_array() || j.at("choices").empty()) {
    return "response has no choices";
  }
  const json& c = j.at("choices").at(0);
  if (!c.is_object()) return "choices[0] is not an object";
  if (chat) {
    if (!c.contains("message") || !c.at("message").is_object()) return "choices[0] has no message";
    const json& m = c.at("message");
    if (m.contains("content") && !m.at("content").is_string() && !m.at("content").is_null()) {
      return "choices[0].message.content is not text";
    }
  } else if (!c.contains("text") || !c.at("text").is_string()) {
    return "choices[0] has no text";
  }
  return "";
}

json messages_json(const std::vector<ChatMessage>& messages) {
  json a = json::array();
  for (const auto& m : messages) a.push_back({{"role", m.role}, {"content", m.content}});
  return a;
}

// Content is text: the server applies the chat template and tokenises with special parsing
// on, so every message's content is sent with its special-token spellings neutralised.
// Raw text is the caller's own (as in the embedded engine). Returns the spellings changed.
std::uint64_t neutralise(Prompt& prompt) {
  std::uint64_t n = 0;
  for (auto& m : prompt.messages) n += neutralise_special_spellings(m.content);
  return n;
}

// Number of Unicode code points in UTF-8 text (OpenAI-style text_offset units).
std::size_t n_code_points(const std::string& s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Labels in their given order, repeats dropped.
std::vector<std::string> distinct_labels(const std::vector<std::string>& labels) {
  std::vector<std::string> out;
  for (const auto& l : labels) {
    if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
  }
  return out;
}

// Lines of a candidate-list answer: list_length, at most one per distinct label.
int n_candidate_lines(const OutputConstraint& c, const std::vector<std::string>& distinct) {
  return std::min(c.list_length, static_cast<int>(distinct.size()));
}

class OpenAiBackend final : public Backend {
 public:
  OpenAiBackend(const OpenAiConfig& config, std::vector<openai::Endpoint> endpoints, std::string api_key)
      : cfg_(config),
        pool_(std::move(endpoints), std::move(api_key),
              openai::Timeouts{config.connect_timeout_s, config.timeout_s, config.total_timeout_s,
                               config.max_response_bytes},
              openai::RetryPolicy{config.max_retries, config.backoff_base_s, config.backoff_cap_s,
                                  config.retry_after_cap_s, config.seed},
              config.max_in_flight) {
    model_ = cfg_.model;
    if (model_.empty()) model_ = discover_model();
    // llama-server lists its -m path as the model: a run records the file's name, not where
    // it sits on the server's disk (which also differs between machines serving one file).
    std::string name = model_;
    if (cfg_.model.empty() && name.find('/') != std::string::npos && name.ends_with(".gguf"))
      name = std::filesystem::path(name).filename().string();
    model_id_ = cfg_.model_id.empty() ? "openai:" + name + (distinct_mode() ? "+distinct" : "") : cfg_.model_id;
  }

  std::vector<Generation> generate(std::span<const Prompt> prompts, const GenerationParams& params) override {
    const json extra = constraint_fields(params.constraint);  // throws before any request
    Usage u;
    std::vector<Prompt> sent(prompts.begin(), prompts.end());
    for (auto& p : sent) u.n_neutralised += neutralise(p);
    std::vector<Generation> out(prompts.size());
    parallel_for(prompts.size(), cfg_.max_in_flight, [&](std::size_t i) {
      try {
        out[i] = generate_one(sent[i], params, extra);
      } catch (const std::exception& e) {
        out[i] = Generation{};
        out[i].finish = FinishReason::Error;
        out[i].error = e.what();
      }
    });
    for (auto& g : out) {
      ++u.n_requests;
      if (!g.ok()) {
        g.context_overflow = is_context_overflow_message(g.error);  // servers say it only in words
        ++u.n_failed;
        continue;
      }
      u.n_prompt_tokens += static_cast<std::uint64_t>(std::max(0, g.n_prompt_tokens));
      u.n_reused_tokens += static_cast<std::uint64_t>(std::max(0, g.n_reused_tokens));
      u.n_generated_tokens += static_cast<std::uint64_t>(std::max(0, g.n_generated_tokens));
      u.prompt_ms += g.prompt_ms;
      u.generate_ms += g.generate_ms;
    }
    add_usage(u);
    return out;
  }

  std::vector<ScoreResult> score(std::span<const ScoreRequest> original) override {
    std::vector<ScoreRequest> requests(original.begin(), original.end());
    {
      Usage u;
      for (auto& r : requests) u.n_neutralised += neutralise(r.context);
      add_usage(u);
    }
    std::string error;
    const ScoreMethod method = resolve_score_method(error);
    if (!error.empty()) {  // the server could not be asked: every request fails, none is lost
      std::vector<ScoreResult> out(requests.size());
      for (std::size_t i = 0; i < requests.size(); ++i) {
        const std::size_t n = requests[i].continuations.size() + requests[i].token_continuations.size();
        out[i].logprobs.assign(n, 0.0);
        out[i].n_tokens.assign(n, 0);
        out[i].error = error;
      }
      Usage u;
      u.n_requests = u.n_failed = requests.size();
      add_usage(u);
      return out;
    }
    std::vector<ScoreResult> out;
    switch (method) {
      case ScoreMethod::LlamaServer:
        out = score_llama(requests);
        break;
      case ScoreMethod::Echo:
        out = score_echo(requests);
        break;
      case ScoreMethod::None:
      case ScoreMethod::Auto:
        throw NotSupported("score: the OpenAI-compatible backend " + model_id_ +
                           " is configured without a scoring method (score_method = none)");
    }
    for (auto& r : out)
      if (!r.ok()) r.context_overflow = is_context_overflow_message(r.error);  // servers say it only in words
    return out;
  }

  std::string model_id() const override { return model_id_; }

  Usage usage() const override {
    std::lock_guard lock(usage_mutex_);
    Usage u = usage_;
    u.n_failed_attempts = pool_.failed_attempts();
    return u;
  }

 private:
  void add_usage(const Usage& u) {
    std::lock_guard lock(usage_mutex_);
    usage_ += u;
  }

  std::string discover_model() {
    const HttpResult r = pool_.request_on(0, "/v1/models", nullptr, [](const json& j) -> std::string {
      if (!j.is_object() || !j.contains("data") || !j.at("data").is_array() || j.at("data").empty() ||
          !j.at("data").at(0).is_object() || !j.at("data").at(0).contains("id") ||
          !j.at("data").at(0).at("id").is_string()) {
        return "/v1/models lists no model";
      }
      return "";
    });
    if (!r.ok) throw IoError("cannot find the served model (set the model name to skip this): " + r.error);
    return r.body.at("data").at(0).at("id").get<std::string>();
  }

  // Request fields that carry an output constraint in this server dialect.
  json constraint_fields(const OutputConstraint& c) const {
    json f = json::object();
    const auto dialect = cfg_.dialect;
    switch (c.kind) {
      case OutputConstraint::Kind::None:
        break;
      case OutputConstraint::Kind::CandidateList: {
        const auto labels = distinct_labels(c.labels);
        const std::string g = candidate_list_grammar(labels, n_candidate_lines(c, labels));
        if (dialect == ConstraintDialect::LlamaCpp) f["grammar"] = g;
        if (dialect == ConstraintDialect::Vllm) f["structured_outputs"] = {{"grammar", g}};
        // OpenAi / None: sent unconstrained; the answer parser enforces the format.
        break;
      }
      case OutputConstraint::Kind::Grammar:
        if (dialect == ConstraintDialect::LlamaCpp) {
          f["grammar"] = c.grammar;
        } else if (dialect == ConstraintDialect::Vllm) {
          f["structured_outputs"] = {{"grammar", c.grammar}};
        } else {
          throw NotSupported("a GBNF grammar constraint needs a llama-server or vLLM endpoint (dialect llamacpp|vllm)");
        }
        break;
      case OutputConstraint::Kind::JsonSchema: {
        const json schema = json::parse(c.json_schema, nullptr, false);
        if (schema.is_discarded() || !schema.is_object()) {
          throw OptionError("constraint", "json_schema is not a JSON object");
        }
        if (dialect == ConstraintDialect::LlamaCpp) {
          f["json_schema"] = schema;
        } else if (dialect == ConstraintDialect::Vllm) {
          f["structured_outputs"] = {{"json", schema}};
        } else if (dialect == ConstraintDialect::OpenAi) {
          f["response_format"] = {{"type", "json_schema"},
                                  {"json_schema", {{"name", "answer"}, {"schema", schema}, {"strict", true}}}};
        } else {
          throw NotSupported("this endpoint takes no JSON-schema constraint (dialect none)");
        }
        break;
      }
    }
    return f;
  }

  Generation generate_one(const Prompt& prompt, const GenerationParams& params, const json& extra) {
    if (params.constraint.kind == OutputConstraint::Kind::CandidateList && distinct_mode() && !prompt.is_tokens()) {
      return generate_distinct(prompt, params);
    }
    bool chat = false;
    const json body = build_body(prompt, params, extra, "", params.max_tokens, chat);
    return send(body, chat);
  }

  bool distinct_mode() const {
    return cfg_.distinct_candidates &&
           (cfg_.dialect == ConstraintDialect::LlamaCpp || cfg_.dialect == ConstraintDialect::Vllm);
  }

  // The request body; `partial` is an answer prefix to continue (an assistant prefill for
  // chat, appended text for raw prompts). Sets `chat` to the endpoint kind.
  json build_body(const Prompt& prompt, const GenerationParams& params, const json& extra, const std::string& partial,
                  int max_tokens, bool& chat) const {
    json body = json::object();
    if (!model_.empty()) body["model"] = model_;
    chat = false;
    if (prompt.is_chat() || (!prompt.is_tokens() && cfg_.use_chat)) {
      chat = true;
      body["messages"] = prompt.is_chat() ? messages_json(prompt.messages)
                                          : json::array({{{"role", "user"}, {"content", prompt.text}}});
      if (!partial.empty()) {
        body["messages"].push_back({{"role", "assistant"}, {"content", partial}});
        if (cfg_.dialect == ConstraintDialect::Vllm) {
          body["continue_final_message"] = true;
          body["add_generation_prompt"] = false;
        }
      }
    } else if (prompt.is_tokens()) {
      body["prompt"] = prompt.tokens;
    } else {
      body["prompt"] = prompt.text + partial;
    }
    const bool openai_chat = chat && cfg_.dialect == ConstraintDialect::OpenAi;
    body[openai_chat ? "max_completion_tokens" : "max_tokens"] = max_tokens;
    body["temperature"] = params.temperature;
    if (params.top_p < 1.0f) body["top_p"] = params.top_p;
    if (params.top_k > 0) body["top_k"] = params.top_k;
    if (params.temperature > 0.0f) body["seed"] = params.seed;
    if (!params.stop.empty()) body["stop"] = params.stop;
    body["stream"] = false;
    for (const auto& [k, v] : extra.items()) body[k] = v;
    return body;
  }

  Generation send(const json& body, bool chat) {
    const HttpResult r = pool_.request(chat ? "/v1/chat/completions" : "/v1/completions", &body,
                                       [chat](const json& j) { return check_choices(j, chat); });
    Generation g;
    if (!r.ok) {
      g.finish = FinishReason::Error;
      g.error = r.error;
      return g;
    }
    const json& choice = r.body.at("choices").at(0);
    if (chat) {
      const json& m = choice.at("message");
      if (m.contains("content") && m.at("content").is_string()) g.text = m.at("content").get<std::string>();
    } else {
      g.text = choice.at("text").get<std::string>();
    }
    const std::string finish = choice.contains("finish_reason") && choice.at("finish_reason").is_string()
                                   ? choice.at("finish_reason").get<std::string>()
                                   : "stop";
    g.finish = finish == "length" ? FinishReason::Length : FinishReason::Stop;
    read_accounting(r.body, r.wall_ms, g);
    return g;
  }

  // CandidateList with distinct labels: one request per line, each constrained to the
  // labels not chosen yet and continuing the answer so far (the server's prompt cache
  // makes the repeated prefix cheap). Same output format as the single grammar, without
  // the optional trailing newline. Token counts and timings are summed over the steps.
  Generation generate_distinct(const Prompt& prompt, const GenerationParams& params) {
    std::vector<std::string> remaining = distinct_labels(params.constraint.labels);
    const int n_lines = n_candidate_lines(params.constraint, remaining);
    candidate_list_grammar(remaining, n_lines);  // validates (throws OptionError)
    Generation total;
    std::string answer;
    bool complete = true;
    for (int k = 0; k < n_lines; ++k) {
      const int budget = params.max_tokens - total.n_generated_tokens;
      if (budget <= 0) {
        complete = false;
        break;
      }
      // Line k >= 1 starts with the previous line's "\n", so an assistant prefill never ends
      // in whitespace (chat templates often trim it); the last "\n" is added at the end.
      const std::string head = k > 0 ? "\n" : "";
      std::string grammar = std::string("root ::= ") + (k > 0 ? "\"\\n\" " : "") + "label\nlabel ::=";
      for (std::size_t i = 0; i < remaining.size(); ++i) {
        grammar += (i ? " | \"" : " \"") + gbnf_escape(remaining[i]) + "\"";
      }
      grammar += "\n";
      json extra = json::object();
      if (cfg_.dialect == ConstraintDialect::LlamaCpp) extra["grammar"] = grammar;
      if (cfg_.dialect == ConstraintDialect::Vllm) extra["structured_outputs"] = {{"grammar", grammar}};
      bool chat = false;
      const json body = build_body(prompt, params, extra, answer, budget, chat);  // sets chat
      const Generation step = send(body, chat);
      if (!step.ok()) {
        Generation failed;
        failed.finish = FinishReason::Error;
        failed.error = "candidate line " + std::to_string(k + 1) + ": " + step.error;
        return failed;
      }
      total.n_prompt_tokens += step.n_prompt_tokens;
      total.n_reused_tokens += step.n_reused_tokens;
      total.n_generated_tokens += step.n_generated_tokens;
      total.prompt_ms += step.prompt_ms;
      total.generate_ms += step.generate_ms;
      // llama-server echoes an assistant prefill in the message content; vLLM does not. A
      // step's own text is a label or "\n" + label, so a leading copy of the answer so far
      // can only be the echo.
      std::string text = step.text;
      if (!answer.empty() && text.size() > answer.size() && text.compare(0, answer.size(), answer) == 0) {
        text.erase(0, answer.size());
      }
      answer += text;
      const auto it = text.compare(0, head.size(), head) == 0
                          ? std::find(remaining.begin(), remaining.end(), text.substr(head.size()))
                          : remaining.end();
      if (it == remaining.end()) {  // cut short (max_tokens, a stop string)
        complete = false;
        break;
      }
      remaining.erase(it);
    }
    if (complete) answer += "\n";
    total.text = answer;
    total.finish = complete ? FinishReason::Stop : FinishReason::Length;
    return total;
  }

  // ---- scoring ------------------------------------------------------------------------

  // The configured method; Auto asks the first endpoint's GET /props once (remembered
  // unless the server could not be reached: then `error` is set and Auto is returned).
  ScoreMethod resolve_score_method(std::string& error) {
    std::lock_guard lock(score_mutex_);
    if (score_method_ != ScoreMethod::Auto) return score_method_;
    if (cfg_.score_method != ScoreMethod::Auto) return score_method_ = cfg_.score_method;
    const HttpResult r = pool_.request_on(0, "/props", nullptr);
    if (r.ok && r.body.is_object() && r.body.contains("default_generation_settings")) {
      return score_method_ = ScoreMethod::LlamaServer;
    }
    if (r.ok || (r.status >= 400 && r.status < 500)) return score_method_ = ScoreMethod::Echo;
    error = "score: cannot tell which scoring method " + pool_.endpoints().at(0).url +
            " supports (set score_method): " + r.error;
    return ScoreMethod::Auto;
  }

  // One unit of scoring work: continuation j of request i.
  struct Piece {
    std::size_t request;
    std::size_t index;  // position in the request's result vectors
    std::string text;   // text continuation (empty when tokens are given)
    std::vector<std::int32_t> tokens;
    bool from_text;
    double logprob = 0;
    int n_tokens = 0;
    std::string error;
  };

  static std::vector<Piece> split_pieces(std::span<const ScoreRequest> requests) {
    std::vector<Piece> pieces;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      std::size_t k = 0;
      for (const auto& c : requests[i].continuations) pieces.push_back(Piece{i, k++, c, {}, true, 0.0, 0, {}});
      for (const auto& t : requests[i].token_continuations) pieces.push_back(Piece{i, k++, {}, t, false, 0.0, 0, {}});
    }
    return pieces;
  }

  std::vector<ScoreResult> collect(std::span<const ScoreRequest> requests, const std::vector<Piece>& pieces) {
    std::vector<ScoreResult> out(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const std::size_t n = requests[i].continuations.size() + requests[i].token_continuations.size();
      out[i].logprobs.assign(n, 0.0);
      out[i].n_tokens.assign(n, 0);
    }
    Usage u;
    for (const auto& p : pieces) {
      ScoreResult& r = out[p.request];
      r.logprobs[p.index] = p.logprob;
      r.n_tokens[p.index] = p.n_tokens;
      if (!p.error.empty() && r.error.empty()) r.error = "continuation " + std::to_string(p.index) + ": " + p.error;
      ++u.n_requests;
      if (!p.error.empty()) ++u.n_failed;
    }
    add_usage(u);
    return out;
  }

  // llama-server: the context as the prompt of /completion, the continuation's tokens forced
  // one by one by a grammar of token ids, n_probs = 1 so that each generated token carries
  // its log-probability under the model's raw distribution (before grammar and sampling).
  std::vector<ScoreResult> score_llama(std::span<const ScoreRequest> requests) {
    // 1. Contexts: raw text as is, token ids as an array, chat through /apply-template.
    std::vector<json> contexts(requests.size());
    std::vector<std::string> context_errors(requests.size());
    parallel_for(requests.size(), cfg_.max_in_flight, [&](std::size_t i) {
      try {
        context_for(requests[i].context, contexts[i], context_errors[i]);
      } catch (const std::exception& e) {
        context_errors[i] = e.what();
      }
    });
    return score_pieces(requests, contexts, context_errors);
  }

  // The /completion prompt for a context: raw text as is, token ids as an array, chat
  // rendered through the server's /apply-template.
  void context_for(const Prompt& p, json& context, std::string& error) {
    if (p.is_tokens()) {
      context = p.tokens;
    } else if (!p.is_chat()) {
      context = p.text;
    } else {
      const json body = {{"messages", messages_json(p.messages)}};
      const HttpResult r = pool_.request("/apply-template", &body, [](const json& j) -> std::string {
        return j.is_object() && j.contains("prompt") && j.at("prompt").is_string() ? "" : "no prompt in answer";
      });
      if (r.ok) {
        context = r.body.at("prompt");
      } else {
        error = "applying the chat template: " + r.error;
      }
    }
  }

  // Tokenizes text continuations (/tokenize) and forces each continuation.
  std::vector<ScoreResult> score_pieces(std::span<const ScoreRequest> requests, const std::vector<json>& contexts,
                                        const std::vector<std::string>& context_errors) {
    std::vector<Piece> pieces = split_pieces(requests);
    parallel_for(pieces.size(), cfg_.max_in_flight, [&](std::size_t k) {
      Piece& p = pieces[k];
      try {
        if (!context_errors[p.request].empty()) {
          p.error = context_errors[p.request];
          return;
        }
        if (p.from_text) {
          if (p.text.empty()) return;  // log P(empty) = 0
          const json body = {{"content", p.text}, {"add_special", false}, {"parse_special", false}};
          const HttpResult r = pool_.request("/tokenize", &body, [](const json& j) -> std::string {
            return j.is_object() && j.contains("tokens") && j.at("tokens").is_array() ? "" : "no tokens in answer";
          });
          if (!r.ok) {
            p.error = "tokenizing: " + r.error;
            return;
          }
          p.tokens = r.body.at("tokens").get<std::vector<std::int32_t>>();
        }
        if (p.tokens.empty()) return;
        force_tokens(contexts[p.request], p);
      } catch (const std::exception& e) {
        p.error = e.what();
      }
    });
    return collect(requests, pieces);
  }

  void force_tokens(const json& context, Piece& p) {
    std::string grammar = "root ::=";
    for (const auto t : p.tokens) grammar += " <[" + std::to_string(t) + "]>";
    const json body = {{"prompt", context},
                       {"n_predict", p.tokens.size()},
                       {"n_probs", 1},
                       {"temperature", 0},
                       {"grammar", grammar},
                       {"cache_prompt", true},
                       {"post_sampling_probs", false},
                       {"stream", false}};
    const HttpResult r = pool_.request("/completion", &body, [](const json& j) -> std::string {
      return j.is_object() && j.contains("completion_probabilities") && j.at("completion_probabilities").is_array()
                 ? ""
                 : "no completion_probabilities in answer";
    });
    if (!r.ok) {
      p.error = r.error;
      return;
    }
    const json& probs = r.body.at("completion_probabilities");
    if (probs.size() != p.tokens.size()) {
      p.error = "forced decoding returned " + std::to_string(probs.size()) + " of " + std::to_string(p.tokens.size()) +
                " tokens";
      return;
    }
    double sum = 0;
    for (std::size_t i = 0; i < probs.size(); ++i) {
      const json& e = probs.at(i);
      if (get_int(e, "id") != p.tokens[i] || !e.contains("logprob") || !e.at("logprob").is_number()) {
        p.error = "forced decoding diverged at token " + std::to_string(i);
        return;
      }
      sum += e.at("logprob").get<double>();
    }
    p.logprob = sum;
    p.n_tokens = static_cast<int>(p.tokens.size());
  }

  // /v1/completions with echo: the prompt is context + continuation; the log-probabilities
  // of the tokens from the continuation's start (by text_offset) are summed.
  std::vector<ScoreResult> score_echo(std::span<const ScoreRequest> requests) {
    for (const auto& r : requests) {
      if (r.context.is_chat() || r.context.is_tokens() || !r.token_continuations.empty()) {
        throw NotSupported("score with echo (" + model_id_ +
                           ") takes raw-text contexts and text continuations only; use a llama-server endpoint "
                           "(score_method llama-server) for chat or token scoring");
      }
    }
    std::vector<Piece> pieces = split_pieces(requests);
    parallel_for(pieces.size(), cfg_.max_in_flight, [&](std::size_t k) {
      Piece& p = pieces[k];
      try {
        if (p.text.empty()) return;
        score_echo_one(requests[p.request].context.text, p);
      } catch (const std::exception& e) {
        p.error = e.what();
      }
    });
    return collect(requests, pieces);
  }

  void score_echo_one(const std::string& context, Piece& p) {
    json body = {{"prompt", context + p.text}, {"max_tokens", 1}, {"echo", true}, {"logprobs", 1}, {"temperature", 0}};
    if (!model_.empty()) body["model"] = model_;
    const HttpResult r = pool_.request("/v1/completions", &body, [](const json& j) -> std::string {
      std::string e = check_choices(j, false);
      if (!e.empty()) return e;
      const json& c = j.at("choices").at(0);
      if (!c.contains("logprobs") || !c.at("logprobs").is_object()) return "no logprobs in answer (echo unsupported?)";
      const json& l = c.at("logprobs");
      for (const char* key : {"tokens", "token_logprobs", "text_offset"}) {
        if (!l.contains(key) || !l.at(key).is_array()) return std::string("logprobs has no ") + key;
      }
      if (l.at("tokens").size() != l.at("token_logprobs").size() ||
          l.at("tokens").size() != l.at("text_offset").size()) {
        return "logprobs arrays differ in length";
      }
      return "";
    });
    if (!r.ok) {
      p.error = r.error;
      return;
    }
    const json& l = r.body.at("choices").at(0).at("logprobs");
    const std::size_t ctx_len = n_code_points(context);
    const std::size_t end = ctx_len + n_code_points(p.text);
    double sum = 0;
    int n = 0;
    for (std::size_t i = 0; i < l.at("tokens").size(); ++i) {
      const std::int64_t off =
          l.at("text_offset").at(i).is_number() ? l.at("text_offset").at(i).get<std::int64_t>() : -1;
      const std::string tok = l.at("tokens").at(i).is_string() ? l.at("tokens").at(i).get<std::string>() : "";
      if (off < 0) continue;
      const auto uoff = static_cast<std::size_t>(off);
      const bool inside = uoff >= ctx_len && uoff < end;
      const bool straddles = uoff < ctx_len && uoff + n_code_points(tok) > ctx_len;
      if (!inside && !straddles) continue;
      const json& lp = l.at("token_logprobs").at(i);
      if (!lp.is_number()) {
        p.error = "echo returned no log-probability for continuation token " + std::to_string(n);
        return;
      }
      sum += lp.get<double>();
      ++n;
    }
    if (n == 0) {
      p.error = "echo returned no tokens for the continuation";
      return;
    }
    p.logprob = sum;
    p.n_tokens = n;
  }

  OpenAiConfig cfg_;
  HttpPool pool_;
  std::string model_;
  std::string model_id_;
  mutable std::mutex usage_mutex_;
  Usage usage_;
  std::mutex score_mutex_;
  ScoreMethod score_method_ = ScoreMethod::Auto;
};

}  // namespace

std::unique_ptr<Backend> make_openai_backend(const OpenAiConfig& config) {
  validate(config);
  std::vector<openai::Endpoint> endpoints;
  for (const auto& e : config.endpoints) endpoints.push_back(openai::parse_endpoint(e));
  std::string api_key;
  if (!config.api_key_env.empty()) {
    if (const char* v = std::getenv(config.api_key_env.c_str())) api_key = v;
  }
  return std::make_unique<OpenAiBackend>(config, std::move(endpoints), std::move(api_key));
}

}  // namespace lrgd::llm
