#include "lrgd/model_init.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "chat_templates.h"
#include "lrgd/error.h"
#include "lrgd/file.h"
#include "lrgd/gguf_file.h"
#include "lrgd/rng.h"

namespace lrgd::model {

namespace {

std::string default_vocab_for(const std::string& arch) {
  if (arch == "qwen2") return "qwen2";
  if (arch == "phi3") return "phi-3";
  if (arch == "mistral") return "llama-spm";
  return "llama-bpe";
}

int effective_ff(const ModelInitOptions& o) { return o.n_ff > 0 ? o.n_ff : ((o.n_embd * 8 / 3 + 31) / 32) * 32; }

// One tensor to write: shape in ggml order (ne0 = row length), data in f32 before conversion.
struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> ne;
  bool is_matrix;  // converted to the chosen type; vectors stay f32
  float fill;      // for vectors: constant value (norm weights 1, biases drawn if fill < 0)
};

}  // namespace

std::filesystem::path default_vocab_dir() {
  if (const char* env = std::getenv("LRGD_VOCAB_DIR"); env != nullptr && *env != '\0') return env;
  return LRGD_DEFAULT_VOCAB_DIR;
}

std::filesystem::path resolve_vocab(const std::string& vocab, const std::string& arch) {
  const std::string name = vocab.empty() ? default_vocab_for(arch) : vocab;
  std::filesystem::path p(name);
  if (name.find('/') != std::string::npos || p.extension() == ".gguf") {
    if (!std::filesystem::is_regular_file(p)) throw OptionError("--vocab", "vocabulary file not found: " + name);
    return p;
  }
  const auto dir = default_vocab_dir();
  auto candidate = dir / ("ggml-vocab-" + name + ".gguf");
  if (!std::filesystem::is_regular_file(candidate))
    throw OptionError("--vocab", "no vocabulary named '" + name + "' (looked for " + candidate.string() +
                                     "; set LRGD_VOCAB_DIR or pass a .gguf path)");
  return candidate;
}

void validate(const ModelInitOptions& o) {
  if (o.arch != "llama" && o.arch != "qwen2" && o.arch != "phi3" && o.arch != "mistral")
    throw OptionError("--arch", "unknown architecture '" + o.arch + "' (expected llama, qwen2, phi3 or mistral)");
  if (o.n_layer < 1) throw OptionError("--layers", "must be at least 1");
  if (o.n_embd < 8) throw OptionError("--width", "must be at least 8");
  if (o.n_head < 1) throw OptionError("--heads", "must be at least 1");
  if (o.n_embd % o.n_head != 0)
    throw OptionError("--heads", std::to_string(o.n_head) + " heads do not divide width " + std::to_string(o.n_embd));
  if ((o.n_embd / o.n_head) % 2 != 0) throw OptionError("--heads", "head size width/heads must be even for RoPE");
  if (o.n_head_kv < 1) throw OptionError("--kv-heads", "must be at least 1");
  if (o.n_head % o.n_head_kv != 0)
    throw OptionError("--kv-heads",
                      std::to_string(o.n_head_kv) + " kv-heads do not divide " + std::to_string(o.n_head) + " heads");
  if (o.n_ff < 0) throw OptionError("--ff", "must be positive (or 0 for the default)");
  if (o.n_ctx < 16) throw OptionError("--ctx", "context length must be at least 16");
  if (!(o.init_std > 0.0f)) throw OptionError("--init-std", "must be positive");
  const auto t = gguf::storage_type(o.type);
  if (t.quantized) {
    const auto blk = t.block_size;
    const std::string need = o.type + " needs ";
    if (o.n_embd % blk != 0) throw OptionError("--type", need + "width divisible by " + std::to_string(blk));
    if (effective_ff(o) % blk != 0) throw OptionError("--type", need + "ff width divisible by " + std::to_string(blk));
  }
}

ModelInitReport init_model(const ModelInitOptions& o, const std::filesystem::path& out) {
  validate(o);
  const auto wtype = gguf::storage_type(o.type);
  const auto vocab_file = resolve_vocab(o.vocab, o.arch);

  const std::int64_t n_vocab = gguf::array_length(vocab_file, "tokenizer.ggml.tokens");
  if (n_vocab < 0)
    throw InputError(vocab_file.string(), 0, "tokenizer.ggml.tokens", "vocabulary file has no token list");

  const std::string arch = o.arch == "mistral" ? "llama" : o.arch;  // Mistral GGUFs use the llama graph
  const int n_ff = effective_ff(o);
  const std::int64_t head_dim = o.n_embd / o.n_head;
  const std::int64_t n_embd_kv = head_dim * o.n_head_kv;

  gguf::Writer w;
  w.copy_keys(vocab_file, "tokenizer.");
  const std::string name = o.name.empty() ? "lrgd-random-" + o.arch : o.name;
  w.set_str("general.architecture", arch);
  w.set_str("general.name", name);
  w.set_u32("general.file_type", wtype.file_type);
  w.set_u32("general.quantization_version", gguf::quantization_version());
  w.set_u64("lrgd.seed", o.seed);
  auto key = [&](const char* suffix) { return arch + "." + suffix; };
  w.set_u32(key("context_length"), static_cast<uint32_t>(o.n_ctx));
  w.set_u32(key("embedding_length"), static_cast<uint32_t>(o.n_embd));
  w.set_u32(key("block_count"), static_cast<uint32_t>(o.n_layer));
  w.set_u32(key("feed_forward_length"), static_cast<uint32_t>(n_ff));
  w.set_u32(key("attention.head_count"), static_cast<uint32_t>(o.n_head));
  w.set_u32(key("attention.head_count_kv"), static_cast<uint32_t>(o.n_head_kv));
  w.set_f32(key("attention.layer_norm_rms_epsilon"), o.rms_eps);
  w.set_f32(key("rope.freq_base"), o.rope_theta);
  w.set_u32(key("rope.dimension_count"), static_cast<uint32_t>(head_dim));
  w.set_u32(key("vocab_size"), static_cast<uint32_t>(n_vocab));
  if (o.arch == "mistral") w.set_u32(key("attention.sliding_window"), static_cast<uint32_t>(o.sliding_window));
  if (!w.has("tokenizer.chat_template")) w.set_str("tokenizer.chat_template", default_chat_template(o.arch));

  std::vector<TensorSpec> specs;
  specs.push_back({"token_embd.weight", {o.n_embd, n_vocab}, true, 0});
  specs.push_back({"output_norm.weight", {o.n_embd}, false, 1.0f});
  if (!o.tied) specs.push_back({"output.weight", {o.n_embd, n_vocab}, true, 0});
  for (int l = 0; l < o.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    specs.push_back({b + "attn_norm.weight", {o.n_embd}, false, 1.0f});
    if (o.arch == "phi3") {
      specs.push_back({b + "attn_qkv.weight", {o.n_embd, o.n_embd + 2 * n_embd_kv}, true, 0});
    } else {
      specs.push_back({b + "attn_q.weight", {o.n_embd, o.n_embd}, true, 0});
      specs.push_back({b + "attn_k.weight", {o.n_embd, n_embd_kv}, true, 0});
      specs.push_back({b + "attn_v.weight", {o.n_embd, n_embd_kv}, true, 0});
      if (o.arch == "qwen2") {
        specs.push_back({b + "attn_q.bias", {o.n_embd}, false, -1.0f});
        specs.push_back({b + "attn_k.bias", {n_embd_kv}, false, -1.0f});
        specs.push_back({b + "attn_v.bias", {n_embd_kv}, false, -1.0f});
      }
    }
    specs.push_back({b + "attn_output.weight", {o.n_embd, o.n_embd}, true, 0});
    specs.push_back({b + "ffn_norm.weight", {o.n_embd}, false, 1.0f});
    if (o.arch == "phi3") {
      specs.push_back({b + "ffn_up.weight", {o.n_embd, 2 * static_cast<std::int64_t>(n_ff)}, true, 0});
    } else {
      specs.push_back({b + "ffn_gate.weight", {o.n_embd, n_ff}, true, 0});
      specs.push_back({b + "ffn_up.weight", {o.n_embd, n_ff}, true, 0});
    }
    specs.push_back({b + "ffn_down.weight", {n_ff, o.n_embd}, true, 0});
  }

  std::int64_t n_params = 0;
  for (const auto& s : specs) {
    std::int64_t n = 1;
    for (auto d : s.ne) n *= d;
    n_params += n;
    // Each tensor has its own stream so a shape change elsewhere does not reshuffle it.
    Rng rng = Rng::derive(o.seed, s.name);
    std::vector<float> values(static_cast<std::size_t>(n));
    if (s.is_matrix || s.fill < 0) {
      const float scale = s.is_matrix ? o.init_std : 0.1f;
      for (auto& v : values) v = static_cast<float>(rng.normal()) * scale;
    } else {
      std::fill(values.begin(), values.end(), s.fill);
    }
    w.add_tensor(s.name, s.ne, values, s.is_matrix ? &wtype : nullptr);
  }
  w.write(out);

  ModelInitReport r;
  r.path = out;
  r.arch = o.arch;
  r.vocab_file = vocab_file.string();
  r.n_vocab = n_vocab;
  r.n_params = n_params;
  r.file_bytes = std::filesystem::file_size(out);
  return r;
}

}  // namespace lrgd::model
