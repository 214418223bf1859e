// Shared test inputs: the real Games data and a tiny random model for end-to-end CLI runs.
#pragma once

#include <filesystem>

#include "lrgd/model_init.h"

namespace lrgd::test {

inline const std::filesystem::path kGames = std::filesystem::path(LRGD_SHARED_DATA_DIR) / "amazon18-games";

// A 1-layer, width-32 Mistral-style model (32k vocabulary: quick to load and to constrain).
inline std::filesystem::path tiny_model(const std::filesystem::path& dir) {
  model::ModelInitOptions o;
  o.arch = "mistral";
  o.n_layer = 1;
  o.n_embd = 32;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ctx = 2048;
  const auto path = dir / "tiny-mistral.gguf";
  model::init_model(o, path);
  return path;
}

}  // namespace lrgd::test
