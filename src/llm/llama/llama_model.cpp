#include "lrgd/llama_model.h"

#include <ggml-cpp.h>
#include <gguf.h>

#include <chrono>

#include "llama_common.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"

namespace lrgd::llm {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  ModelInfo& info = impl->info;
  impl->model = detail::load_model(path, &info.weight_buffers);
  const llama_model* m = impl->model.get();
  info.arch = detail::model_meta(m, "general.architecture");
  info.name = detail::model_meta(m, "general.name");
  char desc[256];
  llama_model_desc(m, desc, sizeof desc);
  info.description = desc;
  info.n_params = llama_model_n_params(m);
  info.n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(m));
  info.n_ctx_train = llama_model_n_ctx_train(m);
  info.n_embd = llama_model_n_embd(m);
  info.n_layer = llama_model_n_layer(m);
  info.has_text_vocab = detail::has_text_vocab(m);
  if (const char* tmpl = detail::chat_template(m)) info.chat_template = tmpl;
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

const std::filesystem::path& Model::path() const { return impl_->path; }
const ModelInfo& Model::info() const { return impl_->info; }

const std::string& Model::id() const {
  std::call_once(impl_->id_once, [this] { impl_->id = "gguf:" + sha256_file(impl_->path); });
  return impl_->id;
}

std::vector<std::int32_t> Model::tokenize(const std::string& text, bool plain) const {
  return detail::tokenize(detail::vocab(*this), text, !plain, !plain);
}

std::vector<std::int32_t> Model::chat_tokens(const std::vector<std::string>& roles,
                                             const std::vector<std::string>& contents) const {
  return detail::chat_tokens(detail::handle(*this), roles, contents);
}

GreedyResult generate_greedy(const Model& model, const std::string& prompt, int n_tokens, const LoadOptions& options) {
  GreedyResult r;
  const auto t0 = std::chrono::steady_clock::now();
  const llama_vocab* vocab = detail::vocab(model);
  r.prompt_tokens = detail::tokenize(vocab, prompt, true, true);
  if (r.prompt_tokens.empty()) throw Error("empty prompt after tokenisation");
  const int n_ctx = static_cast<int>(r.prompt_tokens.size()) + n_tokens + 1;
  auto ctx = detail::make_context(detail::handle(model), options, std::max(n_ctx, 64));
  r.context_ms = ms_since(t0);

  const auto t1 = std::chrono::steady_clock::now();
  auto batch = detail::sequence_batch(r.prompt_tokens, 0, false);
  if (llama_decode(ctx.get(), *batch) != 0) throw Error("llama_decode failed on the prompt");
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  const float* logits = llama_get_logits_ith(ctx.get(), -1);
  r.first_logits.assign(logits, logits + n_vocab);

  const bool text_vocab = model.info().has_text_vocab;
  llama_sampler_ptr sampler(llama_sampler_init_greedy());
  for (int i = 0; i < n_tokens; ++i) {
    llama_token tok = llama_sampler_sample(sampler.get(), ctx.get(), -1);
    r.tokens.push_back(tok);
    if (llama_vocab_is_eog(vocab, tok)) break;
    if (text_vocab) r.text += detail::token_to_piece(vocab, tok);
    batch = detail::sequence_batch({tok}, static_cast<int>(r.prompt_tokens.size()) + i, false);
    if (llama_decode(ctx.get(), *batch) != 0) throw Error("llama_decode failed while generating");
  }
  r.decode_ms = ms_since(t1);
  return r;
}

std::vector<float> reference_logits(const Model& model, const std::vector<std::int32_t>& tokens,
                                    const LoadOptions& options) {
  const int32_t n_vocab = llama_vocab_n_tokens(detail::vocab(model));
  LoadOptions o = options;
  o.n_batch = std::max(o.n_batch, static_cast<int>(tokens.size()));
  auto ctx = detail::make_context(detail::handle(model), o, std::max(static_cast<int>(tokens.size()) + 1, 64));
  if (llama_decode(ctx.get(), *detail::sequence_batch(tokens, 0, true)) != 0) throw Error("llama_decode failed");
  std::vector<float> out;
  out.reserve(tokens.size() * static_cast<std::size_t>(n_vocab));
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const float* lg = llama_get_logits_ith(ctx.get(), static_cast<int32_t>(i));
    out.insert(out.end(), lg, lg + n_vocab);
  }
  return out;
}

void quantize_model(const std::filesystem::path& in, const std::filesystem::path& out, const std::string& type,
                    int n_threads) {
  init_llama_once();
  llama_ftype ftype;
  if (type == "q4_0") {
    ftype = LLAMA_FTYPE_MOSTLY_Q4_0;
  } else if (type == "q4_1") {
    ftype = LLAMA_FTYPE_MOSTLY_Q4_1;
  } else if (type == "q8_0") {
    ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
  } else if (type == "q4_K") {
    ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M;
  } else if (type == "f16") {
    ftype = LLAMA_FTYPE_MOSTLY_F16;
  } else {
    throw OptionError("--type", "unknown type '" + type + "' (q4_0, q4_1, q8_0, q4_K or f16)");
  }
  if (!std::filesystem::is_regular_file(in)) throw IoError("model file not found: " + in.string());
  auto params = llama_model_quantize_default_params();
  params.ftype = ftype;
  params.nthread = detail::resolve_threads(n_threads);
  params.allow_requantize = true;  // the real models ship quantised
  std::filesystem::path tmp = out;
  tmp += ".partial";
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  if (llama_model_quantize(in.c_str(), tmp.c_str(), &params) != 0) {
    std::filesystem::remove(tmp);
    throw IoError("llama.cpp could not quantise " + in.string() + " to " + type +
                  " (run with LRGD_LLAMA_LOG=1 for details)");
  }
  std::filesystem::rename(tmp, out);
}

}  // namespace lrgd::llm

namespace lrgd::llm {

ItemModelMeta read_item_model_meta(const std::filesystem::path& path) {
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  const gguf_context_ptr owner(gguf_init_from_file(path.c_str(), params));
  if (!owner) throw IoError("cannot read GGUF " + path.string());
  gguf_context* g = owner.get();
  ItemModelMeta meta;
  // A key of another type (not written by lrgd) counts as absent: gguf_get_val_* would abort.
  const auto find = [&](const char* key, gguf_type type) {
    const auto k = gguf_find_key(g, key);
    return k >= 0 && gguf_get_kv_type(g, k) == type ? k : -1;
  };
  if (const auto k = find("lrgd.item_model.layout", GGUF_TYPE_UINT32); k >= 0) {
    meta.layout = gguf_get_val_u32(g, k);
    if (const auto n = find("lrgd.item_model.n_items", GGUF_TYPE_UINT32); n >= 0) meta.n_items = gguf_get_val_u32(g, n);
    if (const auto d = find("lrgd.item_model.dataset", GGUF_TYPE_STRING); d >= 0) meta.dataset = gguf_get_val_str(g, d);
    if (const auto h = find("lrgd.item_model.data_hash", GGUF_TYPE_STRING); h >= 0)
      meta.data_hash = gguf_get_val_str(g, h);
  }
  return meta;
}

}  // namespace lrgd::llm
