// Dataset loaders and statistics: LC-Rec JSON, RecBole/UniSRec atomic files, raw Amazon
// Review 2018 JSON lines and plain CSV/TSV, all into one lrgd::data::Dataset.
// File formats, ordering rules and the content hash are specified in docs/formats.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lrgd/dataset.h"

namespace lrgd::data {

enum class Format { Auto, LcRec, RecBole, AmazonRaw, Csv };

// "auto" | "lcrec" | "recbole" | "amazon-raw" | "csv". Throws OptionError("--format") otherwise.
Format parse_format(std::string_view name);
// The name parse_format accepts for `format`.
std::string_view format_name(Format format);

// What a loader does when a user has an item again (--repeats): keep every occurrence (a
// repeat purchase is an event of the sequence; counted as "repeat_interaction", data kept),
// or keep only the first or the last occurrence (the others counted as "duplicate_interaction").
enum class Repeats { Keep, First, Last };

// "keep" | "first" | "last". Throws OptionError("--repeats") otherwise.
Repeats parse_repeats(std::string_view name);
std::string_view repeats_name(Repeats repeats);

// Users with fewer items cannot be split leave-one-out (train, validation, test): every
// loader removes them and counts them as "short_user".
inline constexpr std::size_t kMinUserItems = 3;

struct LoadOptions {
  Format format = Format::Auto;
  // k-core filter: repeatedly remove users and items with fewer than k interactions until
  // none is left. -1: the format's default, 5 for amazon-raw and csv (raw logs), 0 (off) for
  // lcrec and recbole (published already filtered). 0 or 1: off.
  int kcore = -1;
  // Item text longer than this many Unicode code points is cut (0: never).
  std::size_t title_max_chars = 0;
  // false: a problem on one line or record is skipped and counted in Dataset::issues.
  // true: the first problem that would drop data throws InputError instead.
  bool strict = false;
  // A user's repeated item: kept (default), or only its first or last occurrence.
  Repeats repeats = Repeats::Keep;
  // csv only: the item file (item,title[,brand,category]) when `path` names the interaction
  // file and the item file is not beside it under a recognised name.
  std::filesystem::path items_file;
};

// The files that load_dataset reads for a path.
struct DetectedFiles {
  Format format = Format::Auto;
  std::string name;                                 // dataset name, from the file names
  std::vector<std::filesystem::path> interactions;  // lcrec: X.inter.json; recbole: *.valid/test.inter
                                                    // or one per-interaction .inter; raw: review files
  std::filesystem::path items;                      // may be empty (no item text); UniSRec: X.text
  std::filesystem::path item2id;                    // lcrec: X.item2id; recbole: X.item2index (UniSRec); optional
  std::filesystem::path user2id;                    // lcrec: X.user2id; recbole: X.user2index (UniSRec); optional
};

// Finds the format and files for a directory or a file (rules in docs/formats.md).
// Throws IoError if `path` does not exist, InputError if nothing recognisable is there or
// if the choice is ambiguous (e.g. two review files in one folder), OptionError("--format")
// if `format` is forced and the files for it are missing.
DetectedFiles detect_files(const std::filesystem::path& path, Format format = Format::Auto);

// Loads a dataset. Sequences are chronological (oldest first), every user has at least
// kMinUserItems items; a user's repeated item is kept or not as opts.repeats says. Skipped records are counted in
// Dataset::issues. Throws InputError (file, line, field) for unusable input (malformed single-document JSON, an empty
// file, a truncated .gz, any skip when opts.strict), IoError if a file cannot be read.
Dataset load_dataset(const std::filesystem::path& path, const LoadOptions& opts = {});

// Item text cleaning: decodes HTML character references (named, &#NNN; and &#xHH;), turns
// every run of whitespace (ASCII and U+00A0) into one space, trims both ends, then keeps at
// most `max_chars` code points (0: all). Invalid UTF-8 bytes are kept as they are.
std::string clean_text(std::string_view raw, std::size_t max_chars = 0);

// The dataset content hash: SHA-256 (hex) of the canonical serialisation of items, users and
// sequences defined in docs/formats.md. Independent of the source format and of `name`.
std::string compute_content_hash(const Dataset& dataset);

// Maps source ids (item or user ids) to dense indices. Canonical non-negative integers
// below 2^26 ("0", "17", not "017") go through a table, other ids through a hash map.
class IdIndex {
 public:
  IdIndex() = default;
  // Index i for ids[i]; a repeated id keeps its first index.
  explicit IdIndex(const std::vector<std::string>& ids);
  // Adds `id` -> `index`; an id already present is overwritten.
  void add(std::string_view id, std::int32_t index);
  // The index of `id`, or -1 if absent.
  std::int32_t find(std::string_view id) const;

 private:
  struct Hash {
    using is_transparent = void;
    // Not noexcept: libstdc++ then caches hash codes in the nodes, which keeps lookups in
    // tables of string keys from re-hashing every node of a bucket.
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::int32_t> by_number_;
  std::unordered_map<std::string, std::int32_t, Hash, std::equal_to<>> by_string_;
};

// An IdIndex of the dataset's item ids (Item::id).
IdIndex index_item_ids(const Dataset& dataset);

// The user with this id: the dataset's internal id (user_ids) or, where the files give one,
// its own id (user_alt_ids, e.g. an Amazon reviewer id). -1 if neither matches.
std::int32_t find_user(const Dataset& dataset, std::string_view id);

// The paper's Table 1 for one dataset.
struct DatasetStats {
  std::size_t n_users = 0;
  std::size_t n_items = 0;
  std::size_t n_interactions = 0;
  double sparsity = 0;        // 1 - interactions / (users * items)
  double seq_len_mean = 0;    // items per user
  double seq_len_median = 0;  // mean of the two middle values for an even count
  std::size_t seq_len_min = 0;
  std::size_t seq_len_max = 0;
  double item_degree_mean = 0;  // interactions per item
  std::size_t n_items_with_title = 0;
  double title_coverage = 0;  // n_items_with_title / n_items
};

DatasetStats compute_stats(const Dataset& dataset);

}  // namespace lrgd::data
