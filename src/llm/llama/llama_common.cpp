#include "llama_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "lrgd/error.h"

namespace lrgd::llm {

namespace {

bool g_verbose = false;
// Set while this thread loads a model: libllama reports the weight buffers only in its log
// ("load_tensors:   CPU_REPACK model buffer size =    12.34 MiB"), on the loading thread.
thread_local std::vector<WeightBuffer>* t_weight_buffers = nullptr;

void capture_weight_buffer(const char* text) {
  const char* at = std::strstr(text, " model buffer size = ");
  if (at == nullptr) return;
  const char* colon = std::strchr(text, ':');
  if (colon == nullptr || colon > at) return;
  std::string type(colon + 1, at);
  type.erase(0, type.find_first_not_of(' '));
  double mib = 0;
  if (std::sscanf(at + std::strlen(" model buffer size = "), "%lf", &mib) != 1) return;
  t_weight_buffers->push_back({type, mib});
}

void log_callback(ggml_log_level level, const char* text, void*) {
  if (g_verbose || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
  if (t_weight_buffers != nullptr && text != nullptr) capture_weight_buffer(text);
}

}  // namespace

namespace {
std::mutex g_registry;                // ggml's backend registry is global and unguarded
ggml_backend_reg_t g_blas = nullptr;  // found once, before anything can unlist it
}  // namespace

void init_llama_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* verbose = std::getenv("LRGD_LLAMA_LOG");
    g_verbose = verbose != nullptr && std::string(verbose) == "1";
    llama_log_set(log_callback, nullptr);
    llama_backend_init();
    for (std::size_t i = 0; i < ggml_backend_reg_count(); ++i)
      if (std::string_view(ggml_backend_reg_name(ggml_backend_reg_get(i))) == "BLAS") g_blas = ggml_backend_reg_get(i);
  });
}

std::unique_lock<std::mutex> detail::registry_lock() {
  init_llama_once();
  return std::unique_lock<std::mutex>(g_registry);
}

std::string CpuBackendInfo::summary() const {
  std::string s;
  for (const auto& f : features) s += (s.empty() ? "" : " ") + f;
  s += " | weight buffers: CPU";
  for (const auto& b : extra_buffer_types) s += " " + b;
  return s;
}

CpuBackendInfo cpu_backend_info() {
  const auto lock = detail::registry_lock();
  CpuBackendInfo info;
  ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (dev == nullptr) return info;
  ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
  using get_features_t = ggml_backend_feature* (*)(ggml_backend_reg_t);
  if (auto get_features =
          reinterpret_cast<get_features_t>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features"))) {
    for (const ggml_backend_feature* f = get_features(reg); f != nullptr && f->name != nullptr; ++f) {
      // Value "1" for a flag; others (e.g. SVE_CNT) carry a number worth showing.
      const std::string value = f->value != nullptr ? f->value : "";
      info.features.push_back(value == "1" || value.empty() ? std::string(f->name)
                                                            : std::string(f->name) + "=" + value);
      if (std::strncmp(f->name, "AMX", 3) == 0) info.has_amx = true;
    }
  }
  using get_extra_t = ggml_backend_buffer_type_t* (*)(ggml_backend_dev_t);
  if (auto get_extra =
          reinterpret_cast<get_extra_t>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts"))) {
    for (ggml_backend_buffer_type_t* b = get_extra(dev); b != nullptr && *b != nullptr; ++b) {
      const std::string name = ggml_backend_buft_name(*b);
      info.extra_buffer_types.push_back(name);
      if (name.find("AMX") != std::string::npos) info.has_amx = true;
    }
  }
  return info;
}

namespace detail {

int resolve_threads(int n_threads) {
  if (n_threads > 0) return n_threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

llama_model_ptr load_model(const std::filesystem::path& path, std::vector<WeightBuffer>* weight_buffers) {
  init_llama_once();
  if (!std::filesystem::is_regular_file(path)) throw IoError("model file not found: " + path.string());
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  std::vector<WeightBuffer> buffers;
  t_weight_buffers = &buffers;
  llama_model_ptr model;
  {
    const auto lock = registry_lock();  // loading reads the registry's devices
    model.reset(llama_model_load_from_file(path.c_str(), mp));
  }
  t_weight_buffers = nullptr;
  if (weight_buffers != nullptr) *weight_buffers = std::move(buffers);
  if (!model)
    throw IoError("llama.cpp could not load model " + path.string() + " (run with LRGD_LLAMA_LOG=1 for details)");
  return model;
}

ggml_backend_reg_t blas_backend() {
  init_llama_once();
  return g_blas;
}

ContextBackends::ContextBackends(bool blas) : lock_(registry_lock()) {
  if (!blas) {
    unlisted_ = g_blas;
    if (unlisted_ != nullptr) ggml_backend_unload(unlisted_);
  }
}

ContextBackends::~ContextBackends() {
  if (unlisted_ != nullptr) ggml_backend_register(unlisted_);
}

llama_context_ptr make_context(llama_model* model, const LoadOptions& o, int n_ctx,
                               ggml_backend_sched_eval_callback cb_eval, void* cb_eval_user_data) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n_ctx);
  cp.n_batch = static_cast<uint32_t>(o.n_batch);
  cp.n_ubatch = static_cast<uint32_t>(std::min(o.n_batch, 512));
  cp.n_seq_max = static_cast<uint32_t>(std::max(1, o.n_seq));
  cp.n_threads = resolve_threads(o.n_threads);
  cp.n_threads_batch = cp.n_threads;
  cp.flash_attn_type = o.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.kv_unified = o.kv_unified;
  cp.no_perf = true;
  cp.cb_eval = cb_eval;
  cp.cb_eval_user_data = cb_eval_user_data;
  if (o.kv_f32) {
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
  }
  // Inference keeps ggml's own kernels (quantised dot products); BLAS is training's.
  const ContextBackends backends(/*blas=*/false);
  llama_context_ptr ctx(llama_init_from_model(model, cp));
  if (!ctx) throw Error("llama.cpp could not create a context (n_ctx=" + std::to_string(n_ctx) + ")");
  return ctx;
}

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text, bool add_special,
                                  bool parse_special) {
  const auto len = static_cast<int32_t>(text.size());
  int32_t n = -llama_tokenize(vocab, text.data(), len, nullptr, 0, add_special, parse_special);
  std::vector<llama_token> out(static_cast<std::size_t>(std::max(n, 0)));
  if (n > 0) {
    const int32_t got = llama_tokenize(vocab, text.data(), len, out.data(), n, add_special, parse_special);
    if (got < 0) throw Error("tokenisation failed");
    out.resize(static_cast<std::size_t>(got));
  }
  return out;
}

std::string token_to_piece(const llama_vocab* vocab, llama_token token) {
  char buf[256];
  int32_t n = llama_token_to_piece(vocab, token, buf, sizeof buf, 0, false);
  if (n >= 0) return std::string(buf, static_cast<std::size_t>(n));
  std::string big(static_cast<std::size_t>(-n), '\0');
  n = llama_token_to_piece(vocab, token, big.data(), -n, 0, false);
  big.resize(static_cast<std::size_t>(std::max(n, 0)));
  return big;
}

const char* chat_template(const llama_model* model) {
  if (const char* own = llama_model_chat_template(model, nullptr)) return own;
  // Architectures whose instruction-tuned releases all share one turn format.
  const std::string arch = model_meta(model, "general.architecture");
  if (arch == "gemma" || arch == "gemma2" || arch == "gemma3") return "gemma";
  return nullptr;
}

std::string apply_chat_template(const llama_model* model, const std::vector<std::string>& roles,
                                const std::vector<std::string>& contents) {
  const char* tmpl = chat_template(model);
  if (tmpl == nullptr) throw Error("the model has no chat template; send raw text prompts");
  std::vector<llama_chat_message> msgs;
  std::size_t total = 256;
  for (std::size_t m = 0; m < contents.size(); ++m) {
    msgs.push_back({roles[m].c_str(), contents[m].c_str()});
    total += contents[m].size() * 2 + 64;
  }
  std::string buf(total, '\0');
  int32_t n =
      llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), true, buf.data(), static_cast<int32_t>(buf.size()));
  if (n < 0) throw Error("llama.cpp does not support this model's chat template");
  if (static_cast<std::size_t>(n) > buf.size()) {
    buf.resize(static_cast<std::size_t>(n));
    n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), true, buf.data(), static_cast<int32_t>(buf.size()));
  }
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

void drop_double_bos(const llama_vocab* vocab, std::vector<llama_token>& t) {
  const llama_token bos = llama_vocab_bos(vocab);
  if (t.size() >= 2 && t[0] == bos && t[1] == bos) t.erase(t.begin());
}

std::vector<llama_token> chat_tokens(const llama_model* model, const std::vector<std::string>& roles,
                                     const std::vector<std::string>& contents) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  // Control text: the same words tokenise differently with special parsing on and off.
  std::vector<bool> hazard(contents.size(), false);
  int n = 0;
  for (std::size_t m = 0; m < contents.size(); ++m) {
    hazard[m] = tokenize(vocab, contents[m], false, true) != tokenize(vocab, contents[m], false, false);
    n += hazard[m] ? 1 : 0;
  }
  if (n == 0) {
    auto t = tokenize(vocab, apply_chat_template(model, roles, contents), true, true);
    drop_double_bos(vocab, t);
    return t;
  }
  // Render with a marker in place of each such message, then tokenise the template around
  // the markers with special parsing and the messages without.
  std::vector<std::string> shown = contents;
  std::vector<std::string> marker(contents.size());
  for (std::size_t m = 0; m < contents.size(); ++m)
    if (hazard[m]) shown[m] = marker[m] = "\x1flrgd-message-" + std::to_string(m) + "\x1f";
  const std::string text = apply_chat_template(model, roles, shown);
  std::vector<llama_token> out;
  if (llama_vocab_get_add_bos(vocab)) out.push_back(llama_vocab_bos(vocab));
  const auto append = [&](std::vector<llama_token> t) { out.insert(out.end(), t.begin(), t.end()); };
  std::size_t pos = 0;
  for (std::size_t m = 0; m < contents.size(); ++m) {
    if (!hazard[m]) continue;
    const auto at = text.find(marker[m], pos);
    if (at == std::string::npos || text.find(marker[m], at + marker[m].size()) != std::string::npos)
      throw Error("the chat template does not show message " + std::to_string(m + 1) +
                  " exactly once, so its text cannot be kept out of control tokens");
    append(tokenize(vocab, text.substr(pos, at - pos), false, true));
    append(tokenize(vocab, contents[m], false, false));
    pos = at + marker[m].size();
  }
  append(tokenize(vocab, text.substr(pos), false, true));
  if (llama_vocab_get_add_eos(vocab)) out.push_back(llama_vocab_eos(vocab));
  drop_double_bos(vocab, out);
  return out;
}

std::string model_meta(const llama_model* model, const char* key) {
  char buf[512];
  const int32_t n = llama_model_meta_val_str(model, key, buf, sizeof buf);
  if (n < 0) return {};
  if (static_cast<std::size_t>(n) < sizeof buf) return std::string(buf, static_cast<std::size_t>(n));
  std::string big(static_cast<std::size_t>(n) + 1, '\0');
  llama_model_meta_val_str(model, key, big.data(), big.size());
  big.resize(static_cast<std::size_t>(n));
  return big;
}

bool has_text_vocab(const llama_model* model) {
  return llama_vocab_type(llama_model_get_vocab(model)) != LLAMA_VOCAB_TYPE_NONE;
}

BatchPtr sequence_batch(const std::vector<llama_token>& tokens, int pos0, bool all_logits) {
  const auto n = static_cast<int32_t>(tokens.size());
  BatchPtr b(new llama_batch(llama_batch_init(std::max(n, 1), 0, 1)));
  for (int32_t i = 0; i < n; ++i) {
    b->token[i] = tokens[static_cast<std::size_t>(i)];
    b->pos[i] = static_cast<llama_pos>(pos0 + i);
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = 0;
    b->logits[i] = all_logits || i + 1 == n ? 1 : 0;
  }
  b->n_tokens = n;
  return b;
}

}  // namespace detail
}  // namespace lrgd::llm
