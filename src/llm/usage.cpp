#include "lrgd/llm.h"

namespace lrgd::llm {

Usage& Usage::operator+=(const Usage& o) {
  n_requests += o.n_requests;
  n_failed += o.n_failed;
  n_cache_hits += o.n_cache_hits;
  n_prompt_tokens += o.n_prompt_tokens;
  n_reused_tokens += o.n_reused_tokens;
  n_generated_tokens += o.n_generated_tokens;
  prompt_ms += o.prompt_ms;
  generate_ms += o.generate_ms;
  return *this;
}

}  // namespace lrgd::llm
