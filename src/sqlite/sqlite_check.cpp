#include "lrgd/sqlite_check.h"

#include <sqlite3.h>

namespace lrgd {

std::string sqlite_damage(sqlite3* db) {
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

}  // namespace lrgd
