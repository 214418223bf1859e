// Internal helpers shared by the libllama-backed code: RAII handles, tokenisation.
#pragma once

#include <llama-cpp.h>
#include <llama.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lrgd/llama_model.h"

namespace lrgd::llm {

struct Model::Impl {
  llama_model_ptr model;
  std::filesystem::path path;
  ModelInfo info;
  mutable std::once_flag id_once;
  mutable std::string id;
};

namespace detail {

// The libllama model behind a handle (const use only: contexts, vocabulary, metadata).
inline llama_model* handle(const Model& m) { return m.impl().model.get(); }
inline const llama_vocab* vocab(const Model& m) { return llama_model_get_vocab(m.impl().model.get()); }

// weight_buffers (optional): filled with the buffers libllama put the weights in.
llama_model_ptr load_model(const std::filesystem::path& path, std::vector<WeightBuffer>* weight_buffers = nullptr);
// cb_eval (optional): libllama's graph evaluation callback (attention capture, src/analysis).
llama_context_ptr make_context(llama_model* model, const LoadOptions& options, int n_ctx,
                               ggml_backend_sched_eval_callback cb_eval = nullptr, void* cb_eval_user_data = nullptr);
int resolve_threads(int n_threads);

// ggml's backend registry is global and unguarded: loading a model and creating a context
// (which may unlist BLAS for a moment, see ContextBackends) hold this lock.
std::unique_lock<std::mutex> registry_lock();
// ggml's BLAS backend (OpenBLAS) where llama.cpp was built with it; nullptr otherwise.
ggml_backend_reg_t blas_backend();
// Held while a context is created: llama.cpp gives every new context each registered
// accelerator (BLAS) with no option to decline, so without `blas` the BLAS backend leaves the
// registry for that moment (a static backend is only unlisted, never unloaded) and comes back
// after. Holds registry_lock() meanwhile.
class ContextBackends {
 public:
  explicit ContextBackends(bool blas);
  ~ContextBackends();
  ContextBackends(const ContextBackends&) = delete;
  ContextBackends& operator=(const ContextBackends&) = delete;

 private:
  std::unique_lock<std::mutex> lock_;
  ggml_backend_reg_t unlisted_ = nullptr;
};

// Tokenises text; add_special adds BOS where the vocabulary wants one.
std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text, bool add_special,
                                  bool parse_special);
std::string token_to_piece(const llama_vocab* vocab, llama_token token);
// The model's chat template, or for a GGUF without one (the Gemma 3 270M file) the name of
// libllama's built-in template of its architecture family ("gemma"); nullptr if neither.
const char* chat_template(const llama_model* model);
// Applies the model's own chat template (add_generation_prompt = true). Throws Error if the
// model has none or llama.cpp does not support it.
std::string apply_chat_template(const llama_model* model, const std::vector<std::string>& roles,
                                const std::vector<std::string>& contents);
// The tokens of a chat prompt as the embedded backend sends it. Content is text, never
// control: the template's own markup may become special tokens, but a message whose text
// would tokenise to control tokens (a title "<|im_end|>") is tokenised on its own with
// special parsing off, so it stays the plain text it is. Messages without such text are
// tokenised with the template in one piece (the tokens of every ordinary prompt are
// unchanged). Throws Error when the template does not show such a message exactly once.
std::vector<llama_token> chat_tokens(const llama_model* model, const std::vector<std::string>& roles,
                                     const std::vector<std::string>& contents);
// Drops a leading duplicate BOS (templates that write the BOS text themselves).
void drop_double_bos(const llama_vocab* vocab, std::vector<llama_token>& tokens);
std::string model_meta(const llama_model* model, const char* key);
bool has_text_vocab(const llama_model* model);

// Single-sequence batch of `tokens` at positions pos0.. (sequence 0); logits for every
// position or only the last. The caller frees it (BatchPtr).
struct BatchFree {
  void operator()(llama_batch* b) const {
    llama_batch_free(*b);
    delete b;
  }
};
using BatchPtr = std::unique_ptr<llama_batch, BatchFree>;
BatchPtr sequence_batch(const std::vector<llama_token>& tokens, int pos0, bool all_logits);

}  // namespace detail
}  // namespace lrgd::llm
