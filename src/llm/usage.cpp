#include "lrgd/llm.h"

namespace lrgd::llm {

Usage& Usage::operator+=(const Usage& o) {
  n_requests += o.n_requests;
  n_failed += o.n_failed;
  n_failed_attempts += o.n_failed_attempts;
  n_cache_hits += o.n_cache_hits;
  n_neutralised += o.n_neutralised;
  n_prompt_tokens += o.n_prompt_tokens;
  n_reused_tokens += o.n_reused_tokens;
  n_generated_tokens += o.n_generated_tokens;
  n_scored_tokens += o.n_scored_tokens;
  n_grammar_checks += o.n_grammar_checks;
  n_grammar_full_masks += o.n_grammar_full_masks;
  prompt_ms += o.prompt_ms;
  generate_ms += o.generate_ms;
  return *this;
}

Usage Usage::operator-(const Usage& e) const {
  Usage d;
  d.n_requests = n_requests - e.n_requests;
  d.n_failed = n_failed - e.n_failed;
  d.n_failed_attempts = n_failed_attempts - e.n_failed_attempts;
  d.n_cache_hits = n_cache_hits - e.n_cache_hits;
  d.n_neutralised = n_neutralised - e.n_neutralised;
  d.n_prompt_tokens = n_prompt_tokens - e.n_prompt_tokens;
  d.n_reused_tokens = n_reused_tokens - e.n_reused_tokens;
  d.n_generated_tokens = n_generated_tokens - e.n_generated_tokens;
  d.n_scored_tokens = n_scored_tokens - e.n_scored_tokens;
  d.n_grammar_checks = n_grammar_checks - e.n_grammar_checks;
  d.n_grammar_full_masks = n_grammar_full_masks - e.n_grammar_full_masks;
  d.prompt_ms = prompt_ms - e.prompt_ms;
  d.generate_ms = generate_ms - e.generate_ms;
  return d;
}

}  // namespace lrgd::llm
