// Integrity of lrgd's SQLite files (the LRGD memory, the response cache), checked at open.
#pragma once

#include <string>

struct sqlite3;

namespace lrgd {

// Runs PRAGMA quick_check on an open database: "" when it is sound, else SQLite's reason
// ("file is not a database", "database disk image is malformed", the pages at fault).
std::string sqlite_damage(sqlite3* db);

}  // namespace lrgd
