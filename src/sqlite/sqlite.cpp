#include "lrgd/sqlite.h"

#include <sqlite3.h>

#include "lrgd/error.h"

namespace lrgd::sqlite {

std::string damage(sqlite3* db) {
  std::string result;
  char* err = nullptr;
  const auto collect = [](void* out, int, char** values, char**) {
    auto& r = *static_cast<std::string*>(out);
    r += (r.empty() ? "" : "; ") + std::string(values[0] != nullptr ? values[0] : "?");
    return 0;
  };
  const int rc = sqlite3_exec(db, "PRAGMA quick_check", collect, &result, &err);
  if (rc != SQLITE_OK) {
    std::string why = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return why;
  }
  return result == "ok" ? std::string() : result;
}

Database::Database(const std::filesystem::path& path, std::string label, const std::string& damaged_advice,
                   bool serialized)
    : path_(path.string()), label_(std::move(label)) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | (serialized ? SQLITE_OPEN_FULLMUTEX : 0);
  if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    if (db_ != nullptr) sqlite3_close_v2(db_);
    throw IoError(label_ + " " + path_ + ": cannot open: " + why);
  }
  sqlite3_busy_timeout(db_, 30000);
  if (const auto why = damage(db_); !why.empty()) {
    sqlite3_close_v2(db_);
    throw IoError(label_ + " " + path_ + " is damaged (" + why + "); " + damaged_advice);
  }
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
  } catch (...) {
    sqlite3_close_v2(db_);
    throw;
  }
}

Database::~Database() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

void Database::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err != nullptr ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    // A schema statement is long: its start says which one failed.
    throw IoError(label_ + " " + path_ + ": " + (sql.size() > 60 ? sql.substr(0, 57) + "..." : sql) + ": " + why);
  }
}

void Database::fail(const std::string& what) const {
  throw IoError(label_ + " " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Transaction::Transaction(Database& db, Kind kind) : db_(db) {
  db_.exec(kind == Kind::Immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
  if (open_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  db_.exec("COMMIT");
  open_ = false;
}

}  // namespace lrgd::sqlite
