// Shared steps of every loader: id lookup and ordering, building sequences from an
// interaction log, k-core filtering, removal of short users, the content hash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "issues.h"
#include "lrgd/data.h"
#include "lrgd/dataset.h"

namespace lrgd::data::detail {

// true if `text` is a canonical non-negative decimal integer below 10^9 ("0", "17"; not "017").
bool parse_small_uint(std::string_view text, std::uint32_t& value);

// The id order of JSON-keyed files: canonical integers by value first, then other ids by bytes.
bool id_less(std::string_view a, std::string_view b);

// Not noexcept on purpose: libstdc++ then caches hash codes in the nodes, so a lookup does not
// re-hash the string keys of a bucket.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIndexMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

using ItemLookup = IdIndex;

// Interns strings into dense indices in first-seen order.
class Interner {
 public:
  std::int32_t intern(std::string_view s);
  const std::vector<std::string>& strings() const { return strings_; }
  std::size_t size() const { return strings_.size(); }

 private:
  StringIndexMap map_;
  std::vector<std::string> strings_;
  std::int32_t last_ = -1;  // the last id interned: files often repeat it on consecutive lines
};

// Interaction log of raw formats: records (user, item, time) in reading order.
class LogBuilder {
 public:
  void add(std::string_view user, std::string_view item, double time, std::uint32_t file, std::uint64_t line);
  std::size_t size() const { return records_.size(); }

  // Users in order of first appearance; each user's items sorted by (time, reading order);
  // a repeated (user, item) is handled as `repeats` says (apply_repeats). Items are indexed in order of first use when
  // users are scanned in order. `files` names the files by the `file` numbers given to add().
  Dataset build(const std::vector<std::string>& files, Repeats repeats, IssueLog& log);
  // After build(): the line of each user's first record, by UserIndex.
  std::vector<std::uint64_t>& user_lines() { return user_lines_; }

 private:
  struct Record {
    double time;
    std::uint64_t line;
    std::int32_t user;
    std::int32_t item;
    std::uint32_t file;
  };
  Interner users_;
  Interner items_;
  std::vector<Record> records_;
  std::vector<std::uint64_t> user_lines_;
};

// --repeats on one user's sequence: fills `repeats` with the positions (ascending) of the
// occurrences that repeat an item, the later ones for Keep and First, the earlier ones for
// Last. `mark` is scratch (grown as needed), all 0 on entry and on return.
void find_repeats(const std::vector<ItemIndex>& seq, Repeats mode, std::vector<char>& mark,
                  std::vector<std::size_t>& repeats);
// Removes the positions `repeats` (from find_repeats) from `seq`, unless mode is Keep.
void drop_repeats(std::vector<ItemIndex>& seq, Repeats mode, const std::vector<std::size_t>& repeats);

// Counts one repeated occurrence: kept ("repeat_interaction", a note) or dropped
// ("duplicate_interaction", a skip: an error when strict).
void report_repeat(IssueLog& log, Repeats mode, const std::string& file, std::uint64_t line, std::string_view field,
                   std::string_view user, std::string_view item);

// k-core (k > 1): removes users and items with fewer than k interactions until stable,
// counting what it removed (kinds "kcore_user", "kcore_item", "kcore_interaction").
// Item indices are compacted in their existing order. `user_lines` (if not empty) is kept
// aligned with the users.
void apply_kcore(Dataset& ds, int k, IssueLog& log, const std::string& file,
                 std::vector<std::uint64_t>* user_lines = nullptr);

// Removes users with fewer than kMinUserItems items (skip "short_user", line by `user_lines`
// when given: the line of each user in `file`).
void remove_short_users(Dataset& ds, IssueLog& log, const std::string& file,
                        const std::vector<std::uint64_t>& user_lines = {});

// Renumbers items in order of first use when users are scanned in order; unused items last
// in their existing order (they are only kept by formats with an item file).
void order_items_by_first_use(Dataset& ds);

// Notes items without a title ("missing_title"; one issue, counted) and fills issues and the
// content hash. Call last.
void finish_dataset(Dataset& ds, IssueLog& log, const std::string& items_file);

}  // namespace lrgd::data::detail
