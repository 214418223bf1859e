// Response cache: a Backend decorator that answers repeated identical requests from a
// local SQLite file, so reruns, resumes and ablations sharing calls cost nothing.
//
// Key: SHA-256 of a canonical JSON of (kind, model_id, prompt, parameters) — see
// cache_key() and docs/backends.md. Only successful results are stored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "lrgd/llm.h"

namespace lrgd::llm {

struct CacheOptions {
  bool enabled = true;         // false: a plain pass-through (nothing read or written)
  bool cache_sampled = false;  // also cache temperature > 0 (the seed is part of the key)
  bool cache_scores = true;    // cache score() results too
  bool read = true;            // false: never answer from the cache (refresh), still write
  bool write = true;           // false: read-only use
};

struct CacheStats {
  std::uint64_t n_hits = 0;
  std::uint64_t n_misses = 0;        // cacheable requests not found
  std::uint64_t n_stored = 0;        // results written
  std::uint64_t n_bypassed = 0;      // not cacheable (sampled, use_cache = false, disabled)
  std::uint64_t n_write_errors = 0;  // results returned but not stored (last_write_error says why)
  std::string last_write_error;
};

// Cache key of a generation: sha256 hex of the canonical JSON
// {"v":1,"kind":"generate","model":model_id,"prompt":{...},"params":{...}}; params holds
// max_tokens, temperature, top_p, top_k, stop, constraint and, when temperature > 0, seed.
// `use_cache` is not part of it.
std::string cache_key(const std::string& model_id, const Prompt& prompt, const GenerationParams& params);
// Cache key of one score request.
std::string cache_key(const std::string& model_id, const ScoreRequest& request);

class CachedBackend final : public Backend {
 public:
  // Opens (creating if needed) the SQLite file at `path` in WAL mode; the parent folder is
  // created. Throws IoError if it cannot be opened or has an unknown schema version.
  // Several processes may share one file (busy timeout 30 s).
  CachedBackend(std::unique_ptr<Backend> inner, const std::filesystem::path& path, CacheOptions options = {});
  ~CachedBackend() override;
  CachedBackend(const CachedBackend&) = delete;
  CachedBackend& operator=(const CachedBackend&) = delete;

  // Hits come back with from_cache = true (stored text, finish and token counts); misses
  // go to the inner backend as one batch, in order. A generation is cacheable when the
  // cache is enabled, params.use_cache is true and temperature <= 0 (or cache_sampled).
  // Failed results (finish == Error) are never stored, so a rerun retries them. Throws
  // IoError if the cache cannot be read; a failed write is counted in stats(), not thrown.
  std::vector<Generation> generate(std::span<const Prompt> prompts, const GenerationParams& params) override;
  // As generate(), for ScoreRequests (when options.cache_scores); failed ones not stored.
  std::vector<ScoreResult> score(std::span<const ScoreRequest> requests) override;
  std::string model_id() const override;
  // The inner backend's usage plus, per hit, n_requests and n_cache_hits (tokens and
  // timings of hits are not added: they cost nothing this run).
  Usage usage() const override;

  CacheStats stats() const;
  Backend& inner() { return *inner_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Db;
  std::unique_ptr<Backend> inner_;
  std::filesystem::path path_;
  CacheOptions options_;
  std::unique_ptr<Db> db_;
  mutable std::mutex mutex_;  // guards db_ and stats_
  CacheStats stats_;
};

// Convenience: wraps `inner` in a CachedBackend. Throws as the constructor.
std::unique_ptr<CachedBackend> make_cached_backend(std::unique_ptr<Backend> inner, const std::filesystem::path& path,
                                                   CacheOptions options = {});

}  // namespace lrgd::llm
