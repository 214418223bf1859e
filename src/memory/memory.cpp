// The demonstration memory in SQLite (see lrgd/memory.h).
#include "lrgd/memory.h"

#include <sqlite3.h>

#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "lrgd/error.h"
#include "lrgd/sqlite.h"

namespace lrgd::memory {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kColumns =
    "dataset, variant, user, path, round, text, demo, score, target_rank, effective, similarity, collapsed, "
    "perturbation_path, perturbation_round, model, generator_tokens, recommender_tokens";

}  // namespace

struct Store::Db : sqlite::Database {
  explicit Db(const std::filesystem::path& path)
      : Database(path, "memory",
                 "its rows cannot be trusted: restore it from a copy, or move it away to start a new memory") {}
};

namespace {

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
      throw IoError("memory: cannot prepare '" + sql + "': " + sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  void text(int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
};

std::string col_text(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_text(s, i);
  return p != nullptr
             ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
             : std::string();
}

Entry read_row(sqlite3_stmt* s) {
  Entry e;
  e.dataset = col_text(s, 0);
  e.variant = col_text(s, 1);
  e.user = col_text(s, 2);
  e.path = sqlite3_column_int(s, 3);
  e.round = sqlite3_column_int(s, 4);
  e.text = col_text(s, 5);
  e.demo = col_text(s, 6);
  e.score = sqlite3_column_double(s, 7);
  e.target_rank = sqlite3_column_int(s, 8);
  e.effective = sqlite3_column_int(s, 9) != 0;
  e.similarity = sqlite3_column_double(s, 10);
  e.collapsed = sqlite3_column_int(s, 11) != 0;
  e.perturbation_path = sqlite3_column_int(s, 12);
  e.perturbation_round = sqlite3_column_int(s, 13);
  e.model = col_text(s, 14);
  e.generator_tokens = static_cast<std::uint64_t>(sqlite3_column_int64(s, 15));
  e.recommender_tokens = static_cast<std::uint64_t>(sqlite3_column_int64(s, 16));
  return e;
}

// WHERE clause of a filter; binds in order dataset, variant, user.
std::string where(const Filter& f) {
  std::string w = " WHERE 1";
  // A key is "name:hash"; a bare name matches every version of that dataset. A whole key
  // is an equality, so the primary key's index answers it (the optimiser asks per user).
  if (!f.dataset.empty())
    w += f.dataset.find(':') != std::string::npos ? " AND dataset = ?"
                                                  : " AND (dataset = ? OR substr(dataset, 1, length(?) + 1) = ?)";
  if (!f.variant.empty()) w += " AND variant = ?";
  if (!f.user.empty()) w += " AND user = ?";
  if (f.effective_only) w += " AND effective = 1";
  return w;
}

void bind_filter(Stmt& st, const Filter& f) {
  int i = 1;
  if (!f.dataset.empty()) {
    st.text(i++, f.dataset);
    if (f.dataset.find(':') == std::string::npos) {
      st.text(i++, f.dataset);
      st.text(i++, f.dataset + ":");
    }
  }
  if (!f.variant.empty()) st.text(i++, f.variant);
  if (!f.user.empty()) st.text(i++, f.user);
}

}  // namespace

Store::Store(const std::filesystem::path& path) : path_(path), db_(std::make_unique<Db>(path)) {
  db_->exec(
      "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS rounds (dataset TEXT NOT NULL, variant TEXT NOT NULL, user TEXT NOT NULL,"
      " path INTEGER NOT NULL, round INTEGER NOT NULL, text TEXT NOT NULL, demo TEXT NOT NULL, score REAL NOT NULL,"
      " target_rank INTEGER NOT NULL, effective INTEGER NOT NULL, similarity REAL NOT NULL, collapsed INTEGER NOT "
      "NULL, perturbation_path INTEGER NOT NULL, perturbation_round INTEGER NOT NULL, model TEXT NOT NULL,"
      " generator_tokens INTEGER NOT NULL, recommender_tokens INTEGER NOT NULL,"
      " PRIMARY KEY (dataset, variant, user, path, round));");
  db_->exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', '" + std::to_string(kSchemaVersion) + "')");
  Stmt st(db_->handle(), "SELECT value FROM meta WHERE key = 'schema'");
  if (sqlite3_step(st.s) != SQLITE_ROW || col_text(st.s, 0) != std::to_string(kSchemaVersion))
    throw IoError("memory " + path.string() + ": unknown schema version");
}

Store::~Store() = default;

void Store::put(std::span<const Entry> entries) {
  if (entries.empty()) return;
  sqlite::Transaction tx(*db_, sqlite::Transaction::Kind::Immediate);
  {
    Stmt st(db_->handle(),
            std::string("INSERT OR REPLACE INTO rounds (") + kColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    for (const auto& e : entries) {
      sqlite3_reset(st.s);
      st.text(1, e.dataset);
      st.text(2, e.variant);
      st.text(3, e.user);
      sqlite3_bind_int(st.s, 4, e.path);
      sqlite3_bind_int(st.s, 5, e.round);
      st.text(6, e.text);
      st.text(7, e.demo);
      sqlite3_bind_double(st.s, 8, e.score);
      sqlite3_bind_int(st.s, 9, e.target_rank);
      sqlite3_bind_int(st.s, 10, e.effective ? 1 : 0);
      sqlite3_bind_double(st.s, 11, e.similarity);
      sqlite3_bind_int(st.s, 12, e.collapsed ? 1 : 0);
      sqlite3_bind_int(st.s, 13, e.perturbation_path);
      sqlite3_bind_int(st.s, 14, e.perturbation_round);
      st.text(15, e.model);
      sqlite3_bind_int64(st.s, 16, static_cast<sqlite3_int64>(e.generator_tokens));
      sqlite3_bind_int64(st.s, 17, static_cast<sqlite3_int64>(e.recommender_tokens));
      if (sqlite3_step(st.s) != SQLITE_DONE) db_->fail("insert");
    }
  }
  tx.commit();
}

std::vector<Entry> Store::list(const Filter& filter) const {
  Stmt st(db_->handle(), std::string("SELECT ") + kColumns + " FROM rounds" + where(filter) +
                             " ORDER BY dataset, variant, user, path, round");
  bind_filter(st, filter);
  std::vector<Entry> out;
  int rc = 0;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) out.push_back(read_row(st.s));
  if (rc != SQLITE_DONE) db_->fail("select");
  return out;
}

std::vector<Entry> Store::best_per_user(const Filter& filter) const {
  std::map<std::tuple<std::string, std::string, std::string>, Entry> best;
  for (auto& e : list(filter)) {
    const auto key = std::make_tuple(e.dataset, e.variant, e.user);
    const auto it = best.find(key);
    if (it == best.end()) {
      best.emplace(key, std::move(e));
      continue;
    }
    const Entry& b = it->second;
    if (e.score > b.score || (e.score == b.score && std::tie(e.round, e.path) < std::tie(b.round, b.path)))
      it->second = std::move(e);
  }
  std::vector<Entry> out;
  for (auto& [k, e] : best) out.push_back(std::move(e));
  return out;
}

std::size_t Store::count(const Filter& filter) const {
  Stmt st(db_->handle(), "SELECT COUNT(*) FROM rounds" + where(filter));
  bind_filter(st, filter);
  if (sqlite3_step(st.s) != SQLITE_ROW) db_->fail("count");
  return static_cast<std::size_t>(sqlite3_column_int64(st.s, 0));
}

std::string to_json(const Entry& e) {
  nlohmann::ordered_json j;
  j["dataset"] = e.dataset;
  j["variant"] = e.variant;
  j["user"] = e.user;
  j["path"] = e.path;
  j["round"] = e.round;
  j["score"] = e.score;
  j["target_rank"] = e.target_rank == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(e.target_rank);
  j["effective"] = e.effective;
  j["similarity"] = e.similarity;
  j["collapsed"] = e.collapsed;
  j["perturbation"] = e.perturbation_path < 0
                          ? nlohmann::ordered_json(nullptr)
                          : nlohmann::ordered_json({{"path", e.perturbation_path}, {"round", e.perturbation_round}});
  j["model"] = e.model;
  j["generator_tokens"] = e.generator_tokens;
  j["recommender_tokens"] = e.recommender_tokens;
  j["demo"] = nlohmann::ordered_json::parse(e.demo.empty() ? "null" : e.demo, nullptr, false);
  j["text"] = e.text;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace lrgd::memory
