#include "gguf_io.h"

#include "lrgd/gguf_file.h"

namespace lrgd::train::detail {

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

namespace {

void add_tensors(gguf::Writer& w, const Tensors& tensors) {
  for (const auto& [name, t] : tensors) w.add_tensor(name, t.ne, t.data);
}

}  // namespace

void write_model(const std::filesystem::path& path, const TrainOptions& o, const Shapes& s, const ModelMeta& meta,
                 const Tensors& tensors) {
  gguf::Writer w;
  w.set_str("general.architecture", "llama");
  w.set_str("general.name", meta.name);
  w.set_u32("general.file_type", 0);
  w.set_u32("llama.context_length", static_cast<std::uint32_t>(o.n_ctx));
  w.set_u32("llama.embedding_length", static_cast<std::uint32_t>(s.n_embd));
  w.set_u32("llama.block_count", static_cast<std::uint32_t>(s.n_layer));
  w.set_u32("llama.feed_forward_length", static_cast<std::uint32_t>(s.n_ff));
  w.set_u32("llama.attention.head_count", static_cast<std::uint32_t>(s.n_head));
  w.set_u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(s.n_head_kv));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", o.rms_eps);
  w.set_f32("llama.rope.freq_base", o.rope_theta);
  w.set_u32("llama.rope.dimension_count", static_cast<std::uint32_t>(s.n_embd / s.n_head));
  w.set_u32("llama.vocab_size", static_cast<std::uint32_t>(s.n_vocab));
  w.set_str("tokenizer.ggml.model", "no_vocab");
  w.set_u32("lrgd.item_model.layout", item_model::kLayoutVersion);
  w.set_u32("lrgd.item_model.n_items", static_cast<std::uint32_t>(meta.n_items));
  w.set_u32("lrgd.item_model.first_item_token", static_cast<std::uint32_t>(item_model::kFirstItemToken));
  w.set_str("lrgd.item_model.dataset", meta.dataset);
  w.set_str("lrgd.item_model.data_hash", meta.data_hash);
  w.set_u64("lrgd.train.seed", meta.seed);
  w.set_u32("lrgd.train.epochs", static_cast<std::uint32_t>(meta.epochs));
  w.set_i64("lrgd.train.step", meta.step);
  w.set_str("lrgd.train.fingerprint", meta.fingerprint);
  add_tensors(w, tensors);
  w.write(path);
}

void write_state(const std::filesystem::path& path, const std::map<std::string, std::int64_t>& ints,
                 const std::map<std::string, std::string>& strings, const Tensors& tensors) {
  gguf::Writer w;
  for (const auto& [k, v] : ints) w.set_i64(k, v);
  for (const auto& [k, v] : strings) w.set_str(k, v);
  add_tensors(w, tensors);
  w.write(path);
}

StateFile read_state(const std::filesystem::path& path) { return gguf::read_f32_file(path); }

}  // namespace lrgd::train::detail
