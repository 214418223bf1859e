// Shared test inputs: the real Games data and the tests' tiny random models (one builder).
#pragma once

#include <filesystem>
#include <sstream>
#include <string>

#include "lrgd/hash.h"
#include "lrgd/model_init.h"
#include "temp_dir.h"

namespace lrgd::test {

inline const std::filesystem::path kGames = std::filesystem::path(LRGD_SHARED_DATA_DIR) / "amazon18-games";

// The tests' common small shape: 2 layers, width 64, 4 heads, 2 KV heads, f32. A test
// changes only what it needs (vocabulary size, init_std for sharper attention, type).
inline model::ModelInitOptions tiny_options(const std::string& arch = "llama") {
  model::ModelInitOptions o;
  o.arch = arch;
  o.n_layer = 2;
  o.n_embd = 64;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ctx = 2048;
  return o;
}

// The model of these options, written once per ctest run into the build's test cache
// (TestCacheReset empties it first) and named by every option, so two shapes never share a
// file; init_model renames a private temporary file, so parallel tests see whole files.
inline std::filesystem::path cached_model(const model::ModelInitOptions& o) {
  std::ostringstream key;
  key << o.arch << '|' << o.vocab << '|' << o.n_layer << '|' << o.n_embd << '|' << o.n_head << '|' << o.n_head_kv << '|'
      << o.n_ff << '|' << o.n_ctx << '|' << o.type << '|' << o.tied << '|' << o.seed << '|' << o.init_std << '|'
      << o.rope_theta << '|' << o.rms_eps << '|' << o.sliding_window << '|' << o.name;
  const auto path = build_cache(o.arch + "-" + o.type + "-" + sha256_hex(key.str()).substr(0, 16) + ".gguf");
  if (!std::filesystem::exists(path)) model::init_model(o, path);
  return path;
}

// A 1-layer, width-32 Mistral-style model (32k vocabulary: quick to load and to constrain),
// written into `dir` (the CLI tests damage, lock or replace files beside it).
inline std::filesystem::path tiny_model(const std::filesystem::path& dir) {
  auto o = tiny_options("mistral");
  o.n_layer = 1;
  o.n_embd = 32;
  const auto path = dir / "tiny-mistral.gguf";
  model::init_model(o, path);
  return path;
}

}  // namespace lrgd::test
