// GGUF files of item models, checkpoints and optimizer state (f32 tensors only).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lrgd/gguf_file.h"
#include "lrgd/train.h"

namespace lrgd::train::detail {

using Tensor = gguf::Tensor;  // f32, shape in ggml order (ne0 = row length)
// Named tensors in write order.
using Tensors = std::vector<std::pair<std::string, Tensor>>;

struct Shapes {
  std::int64_t n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int n_ff = 0;
  bool tied = true;
};

Shapes shapes_of(const TrainOptions& o, std::size_t n_items);
// Names and shapes of an item model's tensors, in file order.
std::vector<std::pair<std::string, std::vector<std::int64_t>>> tensor_layout(const Shapes& s);

struct ModelMeta {
  std::string name;
  std::string dataset;
  std::string data_hash;
  std::size_t n_items = 0;
  std::uint64_t seed = 0;
  int epochs = 0;
  std::int64_t step = 0;
  std::string fingerprint;
};

// Writes an item model GGUF (llama arch, no_vocab) through a temporary file renamed into place.
void write_model(const std::filesystem::path& path, const TrainOptions& o, const Shapes& s, const ModelMeta& meta,
                 const Tensors& tensors);
// Writes a GGUF of f32 tensors plus integer/string keys (optimizer state).
void write_state(const std::filesystem::path& path, const std::map<std::string, std::int64_t>& ints,
                 const std::map<std::string, std::string>& strings, const Tensors& tensors);
using StateFile = gguf::F32File;
StateFile read_state(const std::filesystem::path& path);

}  // namespace lrgd::train::detail
