// The embedded backend: libllama in-process, many prompts decoded as parallel sequences
// in one batch, shared prefixes decoded once and copied (KV sequence copy), constrained
// candidate lists, and scoring of continuations against one cached context.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "lrgd/llama_model.h"
#include "lrgd/llm.h"

namespace lrgd::llm {

struct LlamaBackendOptions {
  std::filesystem::path model;
  int n_threads = 0;         // 0: all cores
  int n_parallel = 8;        // sequences decoded together
  int n_ctx = 0;             // total KV cells shared by all sequences; 0: n_parallel * n_ctx_seq
  int n_ctx_seq = 0;         // the most one prompt + answer may take; 0: min(model context, 4096)
  int n_batch = 2048;        // tokens per llama_decode call
  bool kv_f32 = false;       // exact comparisons
  bool prefix_reuse = true;  // decode the common prefix of a batch once; keep it across calls
  bool flash_attn = false;
  // Greedy constrained decoding checks the grammar on the chosen token only and masks the
  // whole vocabulary only when it is rejected (same tokens; off: mask every step).
  bool lazy_grammar = true;
  // One KV buffer for all sequences (prefix copies are metadata only, but every token
  // attends over all sequences' cells) or one per sequence (copies move data, attention
  // stays per sequence: much faster for many long prompts). See bench/bench_llm.cpp.
  bool kv_unified = false;
};

// Throws IoError if the model cannot be loaded, OptionError on impossible sizes.
// Context overflow is reported per prompt (Generation::finish == Error naming both sizes),
// never by cutting the prompt.
// The first opens options.model; the second uses a model already open (options.model is
// then ignored), so a backend, the tokenisers and the analyser share one copy of the weights.
std::unique_ptr<Backend> make_llama_backend(const LlamaBackendOptions& options);
std::unique_ptr<Backend> make_llama_backend(std::shared_ptr<const Model> model, const LlamaBackendOptions& options);

}  // namespace lrgd::llm
