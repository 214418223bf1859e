// The in-memory dataset every loader produces and every later stage reads.
// Contract shared by data/, sampling, rec/ and optim/: extend, do not rename.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lrgd::data {

using ItemIndex = std::int32_t;  // dense 0..n_items-1, in the loader's documented order (docs/formats.md)
using UserIndex = std::int32_t;  // dense 0..n_users-1
inline constexpr ItemIndex kNoItem = -1;

struct Item {
  std::string id;     // the id in the source files (LC-Rec id, ASIN, ...)
  std::string title;  // cleaned: HTML entities decoded, whitespace collapsed; may be empty
  std::string brand;
  std::string category;
  std::string alt_id;  // a second id where the files give one (LC-Rec: the ASIN from X.item2id); may be empty
};

// Counted problems met while loading (never silent): what, where, how many.
struct LoadIssue {
  std::string kind;  // e.g. "malformed_json", "unknown_item", "short_user", "missing_title"
  std::string file;
  std::uint64_t line = 0;  // first occurrence
  std::string detail;
  std::uint64_t count = 0;
  bool dropped = true;  // true: records were skipped; false: data kept (e.g. an item without title)
};

struct Dataset {
  std::string name;                       // e.g. "Games"
  std::vector<Item> items;                // by ItemIndex
  std::vector<std::string> user_ids;      // by UserIndex
  std::vector<std::string> user_alt_ids;  // by UserIndex where the files give one (LC-Rec: reviewerID), else empty
  std::string format;                     // the loader that read it: "lcrec", "recbole", "amazon-raw", "csv"
  std::string repeats;                    // how a user's repeated item was loaded (--repeats): "keep", "first", "last"
  std::vector<std::vector<ItemIndex>> sequences;  // by UserIndex, chronological, oldest first
  std::string content_hash;                       // sha256 over the canonical content (see docs/formats.md)
  std::vector<LoadIssue> issues;                  // skips reported at the end of loading

  std::size_t n_users() const { return sequences.size(); }
  std::size_t n_items() const { return items.size(); }
  std::size_t n_interactions() const {
    std::size_t n = 0;
    for (const auto& s : sequences) n += s.size();
    return n;
  }
};

}  // namespace lrgd::data
