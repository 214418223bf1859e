// lrgd's SQLite files (the LRGD memory, the response cache): one way to open them, run a
// statement, and group writes in a transaction; every error names the file.
#pragma once

#include <filesystem>
#include <string>

struct sqlite3;

namespace lrgd::sqlite {

// Runs PRAGMA quick_check on an open database: "" when it is sound, else SQLite's reason
// ("file is not a database", "database disk image is malformed", the pages at fault).
std::string damage(sqlite3* db);

// An open SQLite file: created if absent (and its folder), a 30 s busy timeout, checked with
// quick_check before anything reads or writes it, then WAL journal with synchronous=NORMAL.
// `label` names the file's role in errors ("memory /x/memory.sqlite: insert: <SQLite's
// reason>"); `damaged_advice` follows "is damaged (<reason>); " when the check fails.
class Database {
 public:
  Database(const std::filesystem::path& path, std::string label, const std::string& damaged_advice,
           bool serialized = false);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }
  // Runs `sql` (one or more statements without results); throws IoError naming the file.
  void exec(const std::string& sql);
  // Throws IoError: "<label> <path>: <what>: <SQLite's last error>".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_, label_;
};

// BEGIN (IMMEDIATE: take the write lock now) on construction; ROLLBACK on destruction unless
// commit() ran, so an exception anywhere in between leaves the file as it was.
class Transaction {
 public:
  enum class Kind { Deferred, Immediate };
  explicit Transaction(Database& db, Kind kind = Kind::Deferred);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool open_ = true;
};

}  // namespace lrgd::sqlite
