// libllama in-process: the Model handle (a GGUF opened once and shared), greedy generation,
// tokenisation, model info. No llama.h in this header: callers never see libllama types.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lrgd::llm {

struct LoadOptions {
  int n_threads = 0;  // 0: all cores
  int n_ctx = 0;      // 0: min(model's context length, 4096)
  int n_seq = 1;      // parallel sequences the context holds
  int n_batch = 2048;
  bool kv_f32 = false;      // f32 KV cache (exact comparisons, attention analysis)
  bool flash_attn = false;  // flash attention (off: attention probabilities are materialised)
  bool kv_unified = true;   // one KV buffer shared by all sequences
};

// One buffer that holds model weights, as libllama allocated it at load ("CPU", "CPU_Mapped",
// "CPU_REPACK", "AMX", ...): tells which matrix-multiply code will run on the weights.
struct WeightBuffer {
  std::string type;
  double mib = 0;
};

struct ModelInfo {
  std::string arch;
  std::string name;
  std::string description;  // llama.cpp's one-line description
  std::uint64_t n_params = 0;
  std::int32_t n_vocab = 0;
  std::int32_t n_ctx_train = 0;
  std::int32_t n_embd = 0;
  std::int32_t n_layer = 0;
  bool has_text_vocab = true;                // false for item-token models (tokenizer.ggml.model = no_vocab)
  std::string chat_template;                 // empty if the model has none
  std::vector<WeightBuffer> weight_buffers;  // where the loaded weights live
};

// A GGUF opened once through libllama and shared by everything that needs it: the embedded
// backend, tokenisation, chat templates, model info, attention capture. Loading a real model
// takes seconds and hundreds of MiB, and each of these used to load the file again (`lrgd
// dual` loaded it five times). Const use is thread-safe: libllama's model and vocabulary
// are read-only once loaded, and each user makes its own context.
class Model {
 public:
  // Throws IoError if the file is missing or libllama cannot load it.
  static std::shared_ptr<const Model> open(const std::filesystem::path& path);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::filesystem::path& path() const;
  const ModelInfo& info() const;
  // "gguf:" + the file's SHA-256 (the model id of results and caches), hashed on first use.
  const std::string& id() const;

  // Tokenises text as the embedded backend does for raw prompts (BOS where the model wants
  // it, special-token text parsed); plain = true: as plain text (no BOS, no special tokens).
  std::vector<std::int32_t> tokenize(const std::string& text, bool plain = false) const;
  // The tokens of a chat prompt as the embedded backend sends it: the model's chat template,
  // whose own markup may become special tokens, around message texts that never do.
  std::vector<std::int32_t> chat_tokens(const std::vector<std::string>& roles,
                                        const std::vector<std::string>& contents) const;

  // libllama's handles, defined in src/llm/llama/llama_common.h for this library's sources.
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What the linked ggml CPU backend was compiled with and may use for weights.
struct CpuBackendInfo {
  std::vector<std::string> features;            // compiled-in CPU features ("AVX2", "AVX512", ...)
  std::vector<std::string> extra_buffer_types;  // weight layouts besides plain CPU ("CPU_REPACK", ...)
  bool has_amx = false;  // the AMX buffer type (crashes on quantised weights, upstream issue 20824)
  // "AVX AVX2 ... | weights: CPU_REPACK", one line for --version and model info.
  std::string summary() const;
};
CpuBackendInfo cpu_backend_info();

// The lrgd.item_model.* metadata of an item-token model (`lrgd model train`, lrgd/item_model.h).
struct ItemModelMeta {
  std::uint32_t layout = 0;  // 0: not an item-token model
  std::uint64_t n_items = 0;
  std::string dataset;
  std::string data_hash;  // content hash of the dataset it was trained on
};
// Reads only the GGUF header (no weights, no vocabulary): cheap for any model size.
// Throws IoError if the file is not a readable GGUF.
ItemModelMeta read_item_model_meta(const std::filesystem::path& model);

// Greedy generation result of one prompt.
struct GreedyResult {
  std::vector<std::int32_t> prompt_tokens;
  std::vector<std::int32_t> tokens;  // generated
  std::string text;                  // detokenised generated text (empty for no-vocab models)
  std::vector<float> first_logits;   // logits of the prompt's last position (n_vocab floats)
  double context_ms = 0;             // creating the context (the model is already open)
  double decode_ms = 0;
};

// Silences libllama's logging unless LRGD_LLAMA_LOG=1; initialises the backend once.
void init_llama_once();

// Greedily generates `n_tokens` after `prompt` (raw text, BOS added as the model wants) in
// a fresh context. Throws Error on decode failure.
GreedyResult generate_greedy(const Model& model, const std::string& prompt, int n_tokens,
                             const LoadOptions& options = {});

// Reference path for tests: decodes `tokens` in a fresh context, no batching or cache
// tricks, and returns the logits of every position (tokens.size() * n_vocab floats).
std::vector<float> reference_logits(const Model& model, const std::vector<std::int32_t>& tokens,
                                    const LoadOptions& options = {});

// Re-quantises a GGUF with libllama's quantize API (`type`: q4_0 | q4_1 | q8_0 | q4_K | f16):
// every matrix to that type (requantising already quantised ones), written atomically to
// `out`. Throws OptionError for an unknown type, IoError when libllama fails.
void quantize_model(const std::filesystem::path& in, const std::filesystem::path& out, const std::string& type,
                    int n_threads = 0);

}  // namespace lrgd::llm
