// Writes GGUF models with seeded random weights (tests, benchmarks, demos).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace lrgd::model {

struct ModelInitOptions {
  std::string arch = "llama";  // llama | qwen2 | phi3 | mistral
  // Tokenizer: a name (llama-bpe, qwen2, phi-3, llama-spm) looked up in the vocab folder,
  // or a path to any llama.cpp ggml-vocab-*.gguf. Empty: the architecture's usual one.
  std::string vocab;
  int n_layer = 2;
  int n_embd = 64;
  int n_head = 4;
  int n_head_kv = 2;
  int n_ff = 0;  // 0: about 8/3 * n_embd rounded up to a multiple of 32
  int n_ctx = 2048;
  std::string type = "f32";  // f32 | f16 | q8_0 | q4_0 | q4_1 | q4_K (norms and biases stay f32)
  bool tied = false;         // no `output` tensor: output shares token_embd
  std::uint64_t seed = 42;
  float init_std = 0.02f;
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  int sliding_window = 4096;  // written for mistral only
  std::string name;           // general.name; default "lrgd-random-<arch>"
};

struct ModelInitReport {
  std::filesystem::path path;
  std::string arch;
  std::string vocab_file;
  std::int64_t n_vocab = 0;
  std::int64_t n_params = 0;
  std::uint64_t file_bytes = 0;
};

// Folder searched for named vocabularies: $LRGD_VOCAB_DIR, else the build's default.
std::filesystem::path default_vocab_dir();

// Resolves a vocabulary name or path to a file. Throws OptionError("--vocab") if absent.
std::filesystem::path resolve_vocab(const std::string& vocab_or_arch_default, const std::string& arch);

// Validates shapes; throws OptionError naming the offending option (--heads, --kv-heads...).
void validate(const ModelInitOptions& opts);

// Writes the model. Throws OptionError on impossible shapes, IoError if it cannot write.
ModelInitReport init_model(const ModelInitOptions& opts, const std::filesystem::path& out);

}  // namespace lrgd::model
