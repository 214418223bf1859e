// Writing and reading GGUF files (ggml's gguf API, private to lrgd_model): the one writer of
// random-weight models (lrgd/model_init.h) and of trained item models and their optimizer
// state (lrgd_train). Writes are atomic: a private temporary file renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lrgd::gguf {

// An f32 tensor: shape in ggml order (ne0 = row length), 1-d or 2-d.
struct Tensor {
  std::vector<std::int64_t> ne;
  std::vector<float> data;
};

// How a tensor is stored: f32, f16, q8_0, q4_0, q4_1 or q4_K (quantised on write).
struct StorageType {
  std::string name;
  int ggml_type = 0;
  std::int64_t block_size = 1;  // row lengths must be a multiple of it
  bool quantized = false;
  std::uint32_t file_type = 0;  // general.file_type of a file whose matrices all use it
};
// Throws OptionError("--type") for an unknown name.
StorageType storage_type(const std::string& name);
std::uint32_t quantization_version();  // general.quantization_version of quantised files

// The length of a GGUF array key (e.g. "tokenizer.ggml.tokens"); -1 if absent.
// Throws InputError if the file is not a readable GGUF.
std::int64_t array_length(const std::filesystem::path& path, const std::string& key);

class Writer {
 public:
  Writer();
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void set_u32(const std::string& key, std::uint32_t value);
  void set_u64(const std::string& key, std::uint64_t value);
  void set_i64(const std::string& key, std::int64_t value);
  void set_f32(const std::string& key, float value);
  void set_str(const std::string& key, const std::string& value);
  bool has(const std::string& key) const;
  // Copies the keys of another GGUF whose names start with `prefix` (a tokenizer's
  // "tokenizer.*"). Throws InputError if the file is not a readable GGUF.
  void copy_keys(const std::filesystem::path& from, const std::string& prefix);

  // `values` (f32) stored as `type` (default f32; a quantised type is quantised row by row).
  // Throws Error if the shape and the values disagree or the tensor is not 1-d or 2-d.
  void add_tensor(const std::string& name, const std::vector<std::int64_t>& ne, std::span<const float> values,
                  const StorageType* type = nullptr);
  void write(const std::filesystem::path& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A GGUF of f32 tensors with integer and string keys (optimizer state).
struct F32File {
  std::map<std::string, std::int64_t> ints;
  std::map<std::string, std::string> strings;
  std::map<std::string, Tensor> tensors;
};
// Throws IoError if unreadable, InputError naming the tensor if one is not f32.
F32File read_f32_file(const std::filesystem::path& path);

}  // namespace lrgd::gguf
