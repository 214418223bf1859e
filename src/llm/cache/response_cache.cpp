// CachedBackend: SQLite (WAL) response cache in front of any Backend.
#include "lrgd/response_cache.h"

#include <sqlite3.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>

#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/json_fields.h"
#include "lrgd/sqlite.h"

namespace lrgd::llm {

namespace {

constexpr int kSchemaVersion = 1;

// Length-prefixed canonical encoding: unambiguous for any bytes (prompts may hold invalid
// UTF-8, which JSON cannot), stable across platforms (shortest round-trip float text).
class KeyWriter {
 public:
  void str(std::string_view name, std::string_view value) {
    out_ += name;
    out_ += '=';
    out_ += std::to_string(value.size());
    out_ += ':';
    out_ += value;
    out_ += ';';
  }
  void num(std::string_view name, std::int64_t value) { str(name, std::to_string(value)); }
  void num(std::string_view name, std::uint64_t value) { str(name, std::to_string(value)); }
  void real(std::string_view name, double value) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof(buf), value);
    str(name, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  }
  void prompt(const Prompt& p) {
    if (p.is_chat()) {
      num("n_messages", static_cast<std::uint64_t>(p.messages.size()));
      for (const auto& m : p.messages) {
        str("role", m.role);
        str("content", m.content);
      }
    } else if (p.is_tokens()) {
      num("n_tokens", static_cast<std::uint64_t>(p.tokens.size()));
      std::string ids;
      for (auto t : p.tokens) ids += std::to_string(t) + ",";
      str("tokens", ids);
    } else {
      str("text", p.text);
    }
  }
  std::string digest() const { return sha256_hex(out_); }

 private:
  std::string out_;
};

const char* kind_name(OutputConstraint::Kind kind) {
  switch (kind) {
    case OutputConstraint::Kind::None:
      return "none";
    case OutputConstraint::Kind::Grammar:
      return "grammar";
    case OutputConstraint::Kind::JsonSchema:
      return "json_schema";
    case OutputConstraint::Kind::CandidateList:
      return "candidate_list";
  }
  return "?";
}

std::int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string cache_key(const std::string& model_id, const Prompt& prompt, const GenerationParams& params) {
  KeyWriter w;
  w.num("v", std::int64_t{kSchemaVersion});
  w.str("kind", "generate");
  w.str("model", model_id);
  w.prompt(prompt);
  w.num("max_tokens", std::int64_t{params.max_tokens});
  w.real("temperature", static_cast<double>(params.temperature));
  w.real("top_p", static_cast<double>(params.top_p));
  w.num("top_k", std::int64_t{params.top_k});
  if (params.temperature > 0.0f) w.num("seed", params.seed);
  w.num("n_stop", static_cast<std::uint64_t>(params.stop.size()));
  for (const auto& s : params.stop) w.str("stop", s);
  const auto& c = params.constraint;
  w.str("constraint", kind_name(c.kind));
  switch (c.kind) {
    case OutputConstraint::Kind::None:
      break;
    case OutputConstraint::Kind::Grammar:
      w.str("grammar", c.grammar);
      break;
    case OutputConstraint::Kind::JsonSchema:
      w.str("json_schema", c.json_schema);
      break;
    case OutputConstraint::Kind::CandidateList:
      w.num("list_length", std::int64_t{c.list_length});
      w.num("n_labels", static_cast<std::uint64_t>(c.labels.size()));
      for (const auto& l : c.labels) w.str("label", l);
      break;
  }
  return w.digest();
}

std::string cache_key(const std::string& model_id, const ScoreRequest& request) {
  KeyWriter w;
  w.num("v", std::int64_t{kSchemaVersion});
  w.str("kind", "score");
  w.str("model", model_id);
  w.prompt(request.context);
  w.num("n_continuations", static_cast<std::uint64_t>(request.continuations.size()));
  for (const auto& c : request.continuations) w.str("continuation", c);
  w.num("n_token_continuations", static_cast<std::uint64_t>(request.token_continuations.size()));
  for (const auto& tc : request.token_continuations) {
    std::string ids;
    for (auto t : tc) ids += std::to_string(t) + ",";
    w.str("token_continuation", ids);
  }
  return w.digest();
}

// ---------------------------------------------------------------------------------------
// SQLite handle and prepared statements.

struct CachedBackend::Db : sqlite::Database {
  explicit Db(const std::filesystem::path& path)
      : Database(path, "response cache",
                 "it holds only answers that can be asked again: delete it (or run with --no-cache) and it is rebuilt",
                 /*serialized=*/true) {}
  ~Db() {
    sqlite3_finalize(select);
    sqlite3_finalize(insert);
  }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3_stmt* select = nullptr;
  sqlite3_stmt* insert = nullptr;

  int user_version() {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(handle(), "PRAGMA user_version", -1, &st, nullptr) != SQLITE_OK) fail("read schema version");
    int v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
  }

  // Returns false if absent. The caller holds the mutex.
  bool lookup(const std::string& key, std::string& value, std::string& text) {
    sqlite3_reset(select);
    sqlite3_bind_text(select, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    const int rc = sqlite3_step(select);
    if (rc == SQLITE_DONE) return false;
    if (rc != SQLITE_ROW) fail("lookup");
    const auto* v = static_cast<const char*>(sqlite3_column_blob(select, 0));
    value.assign(v ? v : "", static_cast<std::size_t>(sqlite3_column_bytes(select, 0)));
    const auto* t = static_cast<const char*>(sqlite3_column_blob(select, 1));
    text.assign(t ? t : "", static_cast<std::size_t>(sqlite3_column_bytes(select, 1)));
    sqlite3_reset(select);
    return true;
  }

  void store(const std::string& key, const char* kind, const std::string& model_id, const std::string& value,
             const std::string& text) {
    sqlite3_reset(insert);
    sqlite3_bind_text(insert, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(insert, 3, model_id.data(), static_cast<int>(model_id.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(insert, 4, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert, 5, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 6, now_unix());
    if (sqlite3_step(insert) != SQLITE_DONE) {
      sqlite3_reset(insert);
      fail("store");
    }
    sqlite3_reset(insert);
  }
};

CachedBackend::CachedBackend(std::unique_ptr<Backend> inner, const std::filesystem::path& path, CacheOptions options)
    : inner_(std::move(inner)), path_(path), options_(options) {
  if (!inner_) throw Error("CachedBackend: inner backend is null");
  if (!options_.enabled) return;
  db_ = std::make_unique<Db>(path);
  const int version = db_->user_version();
  if (version == 0) {
    sqlite::Transaction tx(*db_, sqlite::Transaction::Kind::Immediate);
    db_->exec(
        "CREATE TABLE IF NOT EXISTS responses ("
        " key TEXT PRIMARY KEY,"
        " kind TEXT NOT NULL,"
        " model_id TEXT NOT NULL,"
        " value TEXT NOT NULL,"
        " text BLOB NOT NULL,"
        " created_at INTEGER NOT NULL)");
    db_->exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    tx.commit();
  } else if (version != kSchemaVersion) {
    throw IoError("response cache " + db_->path() + ": unknown schema version " + std::to_string(version) +
                  " (this build reads version " + std::to_string(kSchemaVersion) + ")");
  }
  if (sqlite3_prepare_v2(db_->handle(), "SELECT value, text FROM responses WHERE key = ?1", -1, &db_->select,
                         nullptr) != SQLITE_OK) {
    db_->fail("prepare select");
  }
  if (sqlite3_prepare_v2(db_->handle(),
                         "INSERT OR REPLACE INTO responses (key, kind, model_id, value, text, created_at)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         -1, &db_->insert, nullptr) != SQLITE_OK) {
    db_->fail("prepare insert");
  }
}

CachedBackend::~CachedBackend() = default;

std::string CachedBackend::model_id() const { return inner_->model_id(); }

CacheStats CachedBackend::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

Usage CachedBackend::usage() const {
  Usage u = inner_->usage();
  std::lock_guard lock(mutex_);
  u.n_requests += stats_.n_hits;
  u.n_cache_hits += stats_.n_hits;
  return u;
}

namespace {

std::string encode_generation(const Generation& g) {
  const nlohmann::json j = {{"finish", std::string(finish_name(g.finish))},
                            {"n_prompt_tokens", g.n_prompt_tokens},
                            {"n_generated_tokens", g.n_generated_tokens},
                            {"n_reused_tokens", g.n_reused_tokens},
                            {"prompt_ms", g.prompt_ms},
                            {"generate_ms", g.generate_ms}};
  return j.dump();
}

// A cached row's JSON, read with checked fields: a missing field (where one is required), a
// field of another type or out of range makes the row malformed.
constexpr json_fields::Where kRow{"response cache row", 0};

// Returns false on a malformed row (treated as a miss; it is overwritten later).
bool decode_generation(const std::string& value, std::string text, Generation& g) {
  namespace jf = json_fields;
  const auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  try {
    // Only answers are stored: a row saying "error" (or anything else) is malformed.
    if (!parse_finish(jf::get_string(j, "finish", kRow), g.finish) || g.finish == FinishReason::Error) return false;
    g.n_prompt_tokens = jf::get_integer_or<int>(j, "n_prompt_tokens", kRow, 0);
    g.n_generated_tokens = jf::get_integer_or<int>(j, "n_generated_tokens", kRow, 0);
    g.n_reused_tokens = jf::get_integer_or<int>(j, "n_reused_tokens", kRow, 0);
    g.prompt_ms = jf::get_number_or(j, "prompt_ms", kRow, 0.0);
    g.generate_ms = jf::get_number_or(j, "generate_ms", kRow, 0.0);
  } catch (const InputError&) {
    return false;
  }
  g.text = std::move(text);
  g.from_cache = true;
  return true;
}

std::string encode_score(const ScoreResult& r) {
  const nlohmann::json j = {
      {"logprobs", r.logprobs}, {"n_tokens", r.n_tokens}, {"n_context_tokens", r.n_context_tokens}};
  return j.dump();
}

bool decode_score(const std::string& value, std::size_t n_expected, ScoreResult& r) {
  namespace jf = json_fields;
  const auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  try {
    r.logprobs = jf::get_number_list(j, "logprobs", kRow);
    r.n_tokens = jf::get_integer_list<int>(j, "n_tokens", kRow);
    // Rows written before score-mode accounting have no context count.
    r.n_context_tokens = jf::get_integer_or<int>(j, "n_context_tokens", kRow, 0);
  } catch (const InputError&) {
    return false;
  }
  return r.logprobs.size() == n_expected && r.n_tokens.size() == n_expected;
}

void report_write_error(CacheStats& stats, const std::string& what) {
  if (stats.n_write_errors == 0) std::fprintf(stderr, "lrgd: response cache: results not stored: %s\n", what.c_str());
  ++stats.n_write_errors;
  stats.last_write_error = what;
}

}  // namespace

std::vector<Generation> CachedBackend::generate(std::span<const Prompt> prompts, const GenerationParams& params) {
  const bool cacheable = options_.enabled && params.use_cache && (params.temperature <= 0.0f || options_.cache_sampled);
  if (!cacheable || prompts.empty()) {
    {
      std::lock_guard lock(mutex_);
      stats_.n_bypassed += prompts.size();
    }
    return inner_->generate(prompts, params);
  }

  const std::string model = inner_->model_id();
  const std::size_t n = prompts.size();
  std::vector<std::string> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = cache_key(model, prompts[i], params);

  std::vector<Generation> out(n);
  std::vector<bool> done(n, false);
  std::uint64_t n_hits = 0;
  if (options_.read) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(*db_);
    std::string value, text;
    for (std::size_t i = 0; i < n; ++i) {
      if (db_->lookup(keys[i], value, text) && decode_generation(value, text, out[i])) {
        done[i] = true;
        ++n_hits;
      }
    }
    tx.commit();
  }

  // Misses, each distinct key once; repeats within the batch copy the first answer.
  std::vector<Prompt> todo;
  std::vector<std::size_t> todo_index;  // position in `out` of each todo prompt
  std::unordered_map<std::string, std::size_t> first_of;
  std::vector<std::pair<std::size_t, std::size_t>> repeats;  // (out index, todo index)
  for (std::size_t i = 0; i < n; ++i) {
    if (done[i]) continue;
    const auto [it, inserted] = first_of.emplace(keys[i], todo.size());
    if (inserted) {
      todo.push_back(prompts[i]);
      todo_index.push_back(i);
    } else {
      repeats.emplace_back(i, it->second);
    }
  }

  std::vector<Generation> fresh;
  if (!todo.empty()) fresh = inner_->generate(todo, params);
  if (fresh.size() != todo.size()) throw Error("CachedBackend: inner backend returned a wrong number of results");

  for (std::size_t t = 0; t < todo.size(); ++t) out[todo_index[t]] = fresh[t];
  for (const auto& [i, t] : repeats) {
    out[i] = fresh[t];
    if (out[i].ok()) {
      out[i].from_cache = true;
      ++n_hits;
    }
  }

  std::lock_guard lock(mutex_);
  stats_.n_hits += n_hits;
  stats_.n_misses += todo.size();
  if (options_.write) {
    try {
      sqlite::Transaction tx(*db_, sqlite::Transaction::Kind::Immediate);
      for (std::size_t t = 0; t < todo.size(); ++t) {
        if (!fresh[t].ok()) continue;
        db_->store(keys[todo_index[t]], "generate", model, encode_generation(fresh[t]), fresh[t].text);
        ++stats_.n_stored;
      }
      tx.commit();
    } catch (const std::exception& e) {
      report_write_error(stats_, e.what());
    }
  }
  return out;
}

std::vector<ScoreResult> CachedBackend::score(std::span<const ScoreRequest> requests) {
  if (!options_.enabled || !options_.cache_scores || requests.empty()) {
    {
      std::lock_guard lock(mutex_);
      stats_.n_bypassed += requests.size();
    }
    return inner_->score(requests);
  }
  const std::string model = inner_->model_id();
  const std::size_t n = requests.size();
  std::vector<std::string> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = cache_key(model, requests[i]);

  std::vector<ScoreResult> out(n);
  std::vector<bool> done(n, false);
  std::uint64_t n_hits = 0;
  if (options_.read) {
    std::lock_guard lock(mutex_);
    sqlite::Transaction tx(*db_);
    std::string value, text;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t n_expected = requests[i].continuations.size() + requests[i].token_continuations.size();
      if (db_->lookup(keys[i], value, text) && decode_score(value, n_expected, out[i])) {
        done[i] = true;
        ++n_hits;
      }
    }
    tx.commit();
  }

  std::vector<ScoreRequest> todo;
  std::vector<std::size_t> todo_index;
  for (std::size_t i = 0; i < n; ++i) {
    if (done[i]) continue;
    todo.push_back(requests[i]);
    todo_index.push_back(i);
  }
  std::vector<ScoreResult> fresh;
  if (!todo.empty()) fresh = inner_->score(todo);  // NotSupported propagates
  if (fresh.size() != todo.size()) throw Error("CachedBackend: inner backend returned a wrong number of results");
  for (std::size_t t = 0; t < todo.size(); ++t) out[todo_index[t]] = fresh[t];

  std::lock_guard lock(mutex_);
  stats_.n_hits += n_hits;
  stats_.n_misses += todo.size();
  if (options_.write) {
    try {
      sqlite::Transaction tx(*db_, sqlite::Transaction::Kind::Immediate);
      for (std::size_t t = 0; t < todo.size(); ++t) {
        if (!fresh[t].ok()) continue;
        db_->store(keys[todo_index[t]], "score", model, encode_score(fresh[t]), std::string());
        ++stats_.n_stored;
      }
      tx.commit();
    } catch (const std::exception& e) {
      report_write_error(stats_, e.what());
    }
  }
  return out;
}

std::unique_ptr<CachedBackend> make_cached_backend(std::unique_ptr<Backend> inner, const std::filesystem::path& path,
                                                   CacheOptions options) {
  return std::make_unique<CachedBackend>(std::move(inner), path, options);
}

}  // namespace lrgd::llm
