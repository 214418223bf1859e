#include "gguf_io.h"

#include <ggml-cpp.h>
#include <ggml.h>
#include <gguf.h>

#include <cstring>
#include <memory>

#include "lrgd/error.h"
#include "lrgd/file.h"

namespace lrgd::train::detail {

namespace {

void add_tensors_and_write(gguf_context* g, const Tensors& tensors, const std::filesystem::path& path) {
  ggml_init_params gp{ggml_tensor_overhead() * (tensors.size() + 4), nullptr, true};
  ggml_context_ptr meta(ggml_init(gp));
  for (const auto& [name, t] : tensors) {
    std::int64_t n = 1;
    for (auto d : t.ne) n *= d;
    if (n != static_cast<std::int64_t>(t.data.size())) throw Error("tensor " + name + ": shape and data disagree");
    ggml_tensor* tensor = nullptr;
    switch (t.ne.size()) {
      case 1:
        tensor = ggml_new_tensor_1d(meta.get(), GGML_TYPE_F32, t.ne[0]);
        break;
      case 2:
        tensor = ggml_new_tensor_2d(meta.get(), GGML_TYPE_F32, t.ne[0], t.ne[1]);
        break;
      default:
        throw Error("tensor " + name + ": only 1-d and 2-d tensors are written");
    }
    ggml_set_name(tensor, name.c_str());
    gguf_add_tensor(g, tensor);
    gguf_set_tensor_data(g, name.c_str(), t.data.data());
  }
  const std::filesystem::path tmp = private_temp_path(path);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  if (!gguf_write_to_file(g, tmp.c_str(), false)) throw IoError("cannot write " + tmp.string());
  std::filesystem::rename(tmp, path);
}

}  // namespace

Shapes shapes_of(const TrainOptions& o, std::size_t n_items) {
  Shapes s;
  s.n_vocab = item_model::vocab_size(n_items);
  s.n_embd = o.n_embd;
  s.n_layer = o.n_layer;
  s.n_head = o.n_head;
  s.n_head_kv = o.n_head_kv;
  s.n_ff = o.n_ff > 0 ? o.n_ff : ((o.n_embd * 8 / 3 + 31) / 32) * 32;
  s.tied = o.tied;
  return s;
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> tensor_layout(const Shapes& s) {
  const std::int64_t e = s.n_embd;
  const std::int64_t kv = e / s.n_head * s.n_head_kv;
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> out;
  out.push_back({"token_embd.weight", {e, s.n_vocab}});
  out.push_back({"output_norm.weight", {e}});
  if (!s.tied) out.push_back({"output.weight", {e, s.n_vocab}});
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    out.push_back({b + "attn_norm.weight", {e}});
    out.push_back({b + "attn_q.weight", {e, e}});
    out.push_back({b + "attn_k.weight", {e, kv}});
    out.push_back({b + "attn_v.weight", {e, kv}});
    out.push_back({b + "attn_output.weight", {e, e}});
    out.push_back({b + "ffn_norm.weight", {e}});
    out.push_back({b + "ffn_gate.weight", {e, s.n_ff}});
    out.push_back({b + "ffn_up.weight", {e, s.n_ff}});
    out.push_back({b + "ffn_down.weight", {s.n_ff, e}});
  }
  return out;
}

void write_model(const std::filesystem::path& path, const TrainOptions& o, const Shapes& s, const ModelMeta& meta,
                 const Tensors& tensors) {
  gguf_context_ptr ctx(gguf_init_empty());
  gguf_context* g = ctx.get();
  gguf_set_val_str(g, "general.architecture", "llama");
  gguf_set_val_str(g, "general.name", meta.name.c_str());
  gguf_set_val_u32(g, "general.file_type", 0);
  gguf_set_val_u32(g, "llama.context_length", static_cast<std::uint32_t>(o.n_ctx));
  gguf_set_val_u32(g, "llama.embedding_length", static_cast<std::uint32_t>(s.n_embd));
  gguf_set_val_u32(g, "llama.block_count", static_cast<std::uint32_t>(s.n_layer));
  gguf_set_val_u32(g, "llama.feed_forward_length", static_cast<std::uint32_t>(s.n_ff));
  gguf_set_val_u32(g, "llama.attention.head_count", static_cast<std::uint32_t>(s.n_head));
  gguf_set_val_u32(g, "llama.attention.head_count_kv", static_cast<std::uint32_t>(s.n_head_kv));
  gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", o.rms_eps);
  gguf_set_val_f32(g, "llama.rope.freq_base", o.rope_theta);
  gguf_set_val_u32(g, "llama.rope.dimension_count", static_cast<std::uint32_t>(s.n_embd / s.n_head));
  gguf_set_val_u32(g, "llama.vocab_size", static_cast<std::uint32_t>(s.n_vocab));
  gguf_set_val_str(g, "tokenizer.ggml.model", "no_vocab");
  gguf_set_val_u32(g, "lrgd.item_model.layout", item_model::kLayoutVersion);
  gguf_set_val_u32(g, "lrgd.item_model.n_items", static_cast<std::uint32_t>(meta.n_items));
  gguf_set_val_u32(g, "lrgd.item_model.first_item_token", static_cast<std::uint32_t>(item_model::kFirstItemToken));
  gguf_set_val_str(g, "lrgd.item_model.dataset", meta.dataset.c_str());
  gguf_set_val_str(g, "lrgd.item_model.data_hash", meta.data_hash.c_str());
  gguf_set_val_u64(g, "lrgd.train.seed", meta.seed);
  gguf_set_val_u32(g, "lrgd.train.epochs", static_cast<std::uint32_t>(meta.epochs));
  gguf_set_val_i64(g, "lrgd.train.step", meta.step);
  gguf_set_val_str(g, "lrgd.train.fingerprint", meta.fingerprint.c_str());
  add_tensors_and_write(g, tensors, path);
}

void write_state(const std::filesystem::path& path, const std::map<std::string, std::int64_t>& ints,
                 const std::map<std::string, std::string>& strings, const Tensors& tensors) {
  gguf_context_ptr ctx(gguf_init_empty());
  for (const auto& [k, v] : ints) gguf_set_val_i64(ctx.get(), k.c_str(), v);
  for (const auto& [k, v] : strings) gguf_set_val_str(ctx.get(), k.c_str(), v.c_str());
  add_tensors_and_write(ctx.get(), tensors, path);
}

StateFile read_state(const std::filesystem::path& path) {
  ggml_context* raw = nullptr;
  gguf_init_params p{false, &raw};
  gguf_context_ptr g(gguf_init_from_file(path.c_str(), p));
  ggml_context_ptr data(raw);
  if (!g) throw IoError("cannot read training state " + path.string());
  StateFile s;
  for (std::int64_t i = 0; i < gguf_get_n_kv(g.get()); ++i) {
    const std::string key = gguf_get_key(g.get(), i);
    const auto type = gguf_get_kv_type(g.get(), i);
    if (type == GGUF_TYPE_INT64) s.ints[key] = gguf_get_val_i64(g.get(), i);
    if (type == GGUF_TYPE_STRING) s.strings[key] = gguf_get_val_str(g.get(), i);
  }
  for (std::int64_t i = 0; i < gguf_get_n_tensors(g.get()); ++i) {
    const std::string name = gguf_get_tensor_name(g.get(), i);
    const ggml_tensor* t = ggml_get_tensor(raw, name.c_str());
    if (t == nullptr || t->type != GGML_TYPE_F32) throw InputError(path.string(), 0, name, "not an f32 tensor");
    Tensor out;
    for (int d = 0; d < ggml_n_dims(t); ++d) out.ne.push_back(t->ne[d]);
    out.data.resize(static_cast<std::size_t>(ggml_nelements(t)));
    std::memcpy(out.data.data(), t->data, ggml_nbytes(t));
    s.tensors.emplace(name, std::move(out));
  }
  return s;
}

}  // namespace lrgd::train::detail
