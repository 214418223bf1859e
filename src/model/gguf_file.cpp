#include "lrgd/gguf_file.h"

#include <ggml-cpp.h>
#include <ggml.h>
#include <gguf.h>

#include <cstring>

#include "lrgd/error.h"
#include "lrgd/file.h"

namespace lrgd::gguf {

StorageType storage_type(const std::string& name) {
  // general.file_type values are libllama's LLAMA_FTYPE_MOSTLY_* (q4_K: Q4_K_M).
  static const struct {
    const char* name;
    ggml_type type;
    std::uint32_t file_type;
  } kTypes[] = {{"f32", GGML_TYPE_F32, 0},   {"f16", GGML_TYPE_F16, 1},   {"q8_0", GGML_TYPE_Q8_0, 7},
                {"q4_0", GGML_TYPE_Q4_0, 2}, {"q4_1", GGML_TYPE_Q4_1, 3}, {"q4_K", GGML_TYPE_Q4_K, 15}};
  for (const auto& t : kTypes)
    if (name == t.name)
      return StorageType{name, static_cast<int>(t.type), ggml_blck_size(t.type), ggml_is_quantized(t.type),
                         t.file_type};
  throw OptionError("--type", "unknown weight type '" + name + "' (expected f32, f16, q8_0, q4_0, q4_1 or q4_K)");
}

std::uint32_t quantization_version() { return GGML_QNT_VERSION; }

std::int64_t array_length(const std::filesystem::path& path, const std::string& key) {
  gguf_init_params params{true, nullptr};
  const gguf_context_ptr g(gguf_init_from_file(path.c_str(), params));
  if (!g) throw InputError(path.string(), 0, "", "not a readable GGUF");
  const int64_t id = gguf_find_key(g.get(), key.c_str());
  if (id < 0 || gguf_get_kv_type(g.get(), id) != GGUF_TYPE_ARRAY) return -1;
  return static_cast<std::int64_t>(gguf_get_arr_n(g.get(), id));
}

struct Writer::Impl {
  gguf_context_ptr ctx{gguf_init_empty()};
  // Metadata-only ggml contexts (one per 64 tensors): tensor data lives in `buffers`, handed
  // to gguf by pointer, so every buffer must outlive the write.
  std::vector<ggml_context_ptr> metas;
  std::size_t in_last_meta = 0;
  std::vector<std::vector<std::uint8_t>> buffers;
};

Writer::Writer() : impl_(std::make_unique<Impl>()) {}
Writer::~Writer() = default;

void Writer::set_u32(const std::string& key, std::uint32_t value) {
  gguf_set_val_u32(impl_->ctx.get(), key.c_str(), value);
}
void Writer::set_u64(const std::string& key, std::uint64_t value) {
  gguf_set_val_u64(impl_->ctx.get(), key.c_str(), value);
}
void Writer::set_i64(const std::string& key, std::int64_t value) {
  gguf_set_val_i64(impl_->ctx.get(), key.c_str(), value);
}
void Writer::set_f32(const std::string& key, float value) { gguf_set_val_f32(impl_->ctx.get(), key.c_str(), value); }
void Writer::set_str(const std::string& key, const std::string& value) {
  gguf_set_val_str(impl_->ctx.get(), key.c_str(), value.c_str());
}
bool Writer::has(const std::string& key) const { return gguf_find_key(impl_->ctx.get(), key.c_str()) >= 0; }

void Writer::copy_keys(const std::filesystem::path& from, const std::string& prefix) {
  gguf_init_params params{true, nullptr};
  const gguf_context_ptr src(gguf_init_from_file(from.c_str(), params));
  if (!src) throw InputError(from.string(), 0, "", "not a readable GGUF");
  // gguf_set_kv copies every key (replacing ours of the same name); keep only `prefix`'s.
  gguf_context_ptr copy(gguf_init_empty());
  gguf_set_kv(copy.get(), src.get());
  for (int64_t i = gguf_get_n_kv(copy.get()) - 1; i >= 0; --i) {
    const std::string key = gguf_get_key(copy.get(), i);
    if (key.rfind(prefix, 0) != 0) gguf_remove_key(copy.get(), key.c_str());
  }
  gguf_set_kv(impl_->ctx.get(), copy.get());
}

void Writer::add_tensor(const std::string& name, const std::vector<std::int64_t>& ne, std::span<const float> values,
                        const StorageType* storage) {
  std::int64_t n = 1;
  for (auto d : ne) n *= d;
  if (n != static_cast<std::int64_t>(values.size())) throw Error("tensor " + name + ": shape and data disagree");
  if (ne.size() != 1 && ne.size() != 2) throw Error("tensor " + name + ": only 1-d and 2-d tensors are written");
  constexpr std::size_t kPerMeta = 64;
  if (impl_->metas.empty() || impl_->in_last_meta == kPerMeta) {
    ggml_init_params gp{ggml_tensor_overhead() * kPerMeta, nullptr, true};
    impl_->metas.emplace_back(ggml_init(gp));
    impl_->in_last_meta = 0;
  }
  ++impl_->in_last_meta;
  const auto type = storage == nullptr ? GGML_TYPE_F32 : static_cast<ggml_type>(storage->ggml_type);
  ggml_context* meta = impl_->metas.back().get();
  ggml_tensor* tensor =
      ne.size() == 1 ? ggml_new_tensor_1d(meta, type, ne[0]) : ggml_new_tensor_2d(meta, type, ne[0], ne[1]);
  ggml_set_name(tensor, name.c_str());
  auto& buf = impl_->buffers.emplace_back(ggml_nbytes(tensor));
  if (type == GGML_TYPE_F32) {
    std::memcpy(buf.data(), values.data(), buf.size());
  } else {
    ggml_quantize_chunk(type, values.data(), buf.data(), 0, ne.size() == 1 ? 1 : ne[1], ne[0], nullptr);
  }
  gguf_add_tensor(impl_->ctx.get(), tensor);
  gguf_set_tensor_data(impl_->ctx.get(), name.c_str(), buf.data());
}

void Writer::write(const std::filesystem::path& path) const {
  const std::filesystem::path tmp = private_temp_path(path);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  if (!gguf_write_to_file(impl_->ctx.get(), tmp.c_str(), false)) throw IoError("cannot write " + tmp.string());
  std::filesystem::rename(tmp, path);
}

F32File read_f32_file(const std::filesystem::path& path) {
  ggml_context* raw = nullptr;
  gguf_init_params p{false, &raw};
  gguf_context_ptr g(gguf_init_from_file(path.c_str(), p));
  ggml_context_ptr data(raw);
  if (!g) throw IoError("cannot read GGUF " + path.string());
  F32File s;
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

}  // namespace lrgd::gguf
