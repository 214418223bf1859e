// Delimited text formats: RecBole/UniSRec atomic files (.item, .inter) and plain CSV/TSV.
#include <algorithm>
#include <charconv>
#include <span>

#include "builder.h"
#include "line_reader.h"
#include "loaders.h"
#include "lrgd/error.h"

namespace lrgd::data::detail {

namespace {

// Splits `line` at `delim`. With `quotes`, fields may be RFC 4180 double-quoted ("" inside
// is one quote; unescaped text goes to `scratch`, reserved so views stay valid). Returns
// false for an unterminated quote.
bool split_fields(std::string_view line, char delim, bool quotes, std::vector<std::string_view>& out,
                  std::string& scratch) {
  out.clear();
  if (!quotes || line.find('"') == std::string_view::npos) {
    std::size_t start = 0;
    while (true) {
      const std::size_t end = line.find(delim, start);
      if (end == std::string_view::npos) {
        out.push_back(line.substr(start));
        return true;
      }
      out.push_back(line.substr(start, end - start));
      start = end + 1;
    }
  }
  scratch.clear();
  scratch.reserve(line.size());
  std::size_t i = 0;
  while (true) {
    if (i < line.size() && line[i] == '"') {
      const std::size_t begin = scratch.size();
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            scratch.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        scratch.push_back(line[i++]);
      }
      if (!closed) return false;
      // Text between the closing quote and the delimiter is kept (lenient).
      while (i < line.size() && line[i] != delim) scratch.push_back(line[i++]);
      out.emplace_back(scratch.data() + begin, scratch.size() - begin);
    } else {
      const std::size_t end = std::min(line.find(delim, i), line.size());
      out.push_back(line.substr(i, end - i));
      i = end;
    }
    if (i >= line.size()) return true;
    ++i;  // the delimiter
    if (i == line.size()) {
      out.emplace_back();
      return true;
    }
  }
}

// "Item_ID:token" -> "item_id"
std::string column_name(std::string_view raw) {
  std::string s(raw.substr(0, raw.find(':')));
  std::transform(s.begin(), s.end(), s.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  if (s.size() >= 3 && static_cast<unsigned char>(s[0]) == 0xEF && static_cast<unsigned char>(s[1]) == 0xBB &&
      static_cast<unsigned char>(s[2]) == 0xBF) {
    s.erase(0, 3);  // UTF-8 byte order mark
  }
  return s;
}

int find_column(const std::vector<std::string>& names, std::span<const std::string_view> wanted) {
  for (const auto w : wanted) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == w) return static_cast<int>(i);
    }
  }
  return -1;
}

constexpr std::string_view kUserCols[] = {"user_id", "user", "userid", "reviewerid", "uid"};
constexpr std::string_view kItemCols[] = {"item_id", "item", "itemid", "asin", "iid", "parent_asin"};
constexpr std::string_view kTimeCols[] = {"timestamp", "time", "unixreviewtime", "ts", "date"};
constexpr std::string_view kTitleCols[] = {"title", "name", "item_name", "text"};
constexpr std::string_view kBrandCols[] = {"brand"};
constexpr std::string_view kCategoryCols[] = {"categories", "category"};

bool parse_time(std::string_view s, double& t) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), t);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

char guess_delimiter(std::string_view first_line, const std::string& file) {
  if (first_line.find('\t') != std::string_view::npos) return '\t';
  if (file.size() >= 4 &&
      (file.ends_with(".tsv") || file.ends_with(".tsv.gz") || file.ends_with(".inter") || file.ends_with(".item"))) {
    return '\t';
  }
  return ',';
}

// Item file (RecBole .item or CSV item,title[,brand,category]): items in file order.
struct ItemTable {
  std::vector<Item> items;
  ItemLookup lookup;
};

ItemTable read_item_table(const std::filesystem::path& path, bool csv_quotes, const LoadOptions& opts, IssueLog& log) {
  ItemTable t;
  const std::string file = path.string();
  LineReader reader(path);
  std::string_view line;
  std::vector<std::string_view> fields;
  std::string scratch;
  int c_id = 0, c_title = 1, c_brand = -1, c_cat = -1;
  char delim = ',';
  bool first = true;
  std::size_t n_cols = 0;
  while (reader.next(line)) {
    if (first) {
      first = false;
      delim = guess_delimiter(line, file);
      split_fields(line, delim, csv_quotes, fields, scratch);
      std::vector<std::string> names;
      for (const auto f : fields) names.push_back(column_name(f));
      const int id = find_column(names, kItemCols);
      if (id >= 0) {  // a header line
        c_id = id;
        c_title = find_column(names, kTitleCols);
        c_brand = find_column(names, kBrandCols);
        c_cat = find_column(names, kCategoryCols);
        n_cols = names.size();
        continue;
      }
      n_cols = fields.size();
    }
    if (line.empty()) {
      log.note("blank_line", file, reader.line_number(), "blank line ignored");
      continue;
    }
    if (!split_fields(line, delim, csv_quotes, fields, scratch)) {
      log.skip("malformed_line", file, reader.line_number(), "", "unterminated quoted field");
      continue;
    }
    // A title may contain the delimiter in a TSV: fold extra fields into the title when the
    // title is the last column.
    if (fields.size() > n_cols && c_title == static_cast<int>(n_cols) - 1 && delim == '\t') {
      const auto begin = fields[static_cast<std::size_t>(c_title)].data();
      fields[static_cast<std::size_t>(c_title)] =
          std::string_view(begin, static_cast<std::size_t>(line.data() + line.size() - begin));
      fields.resize(n_cols);
    }
    // Only the id is required; absent text columns leave the text empty.
    if (fields.size() <= static_cast<std::size_t>(c_id)) {
      log.skip("malformed_line", file, reader.line_number(), "",
               "expected " + std::to_string(n_cols) + " fields, found " + std::to_string(fields.size()));
      continue;
    }
    const std::string_view id = fields[static_cast<std::size_t>(c_id)];
    if (id.empty()) {
      log.skip("missing_field", file, reader.line_number(), "item", "empty item id");
      continue;
    }
    if (t.lookup.find(id) != kNoItem) {
      log.skip("duplicate_item", file, reader.line_number(), "item",
               "item '" + std::string(id) + "' appears again; the first is kept");
      continue;
    }
    Item item;
    item.id.assign(id);
    auto get = [&](int c) {
      return (c >= 0 && static_cast<std::size_t>(c) < fields.size()) ? fields[static_cast<std::size_t>(c)]
                                                                     : std::string_view();
    };
    item.title = clean_text(get(c_title), opts.title_max_chars);
    item.brand = clean_text(get(c_brand), opts.title_max_chars);
    item.category = clean_text(get(c_cat), opts.title_max_chars);
    t.lookup.add(item.id, static_cast<ItemIndex>(t.items.size()));
    t.items.push_back(std::move(item));
  }
  if (first) throw InputError(file, 0, "", "empty file: expected an item table");
  return t;
}

// Interaction table: user, item, timestamp per line (CSV, or RecBole per-interaction .inter).
Dataset read_interaction_table(const std::filesystem::path& path, bool csv_quotes, bool header_required, int kcore,
                               Repeats repeats, IssueLog& log) {
  const std::string file = path.string();
  LineReader reader(path);
  std::string_view line;
  std::vector<std::string_view> fields;
  std::string scratch;
  int c_user = 0, c_item = 1, c_time = 2;
  char delim = ',';
  bool first = true;
  LogBuilder builder;
  while (reader.next(line)) {
    if (first) {
      first = false;
      delim = guess_delimiter(line, file);
      split_fields(line, delim, csv_quotes, fields, scratch);
      std::vector<std::string> names;
      for (const auto f : fields) names.push_back(column_name(f));
      const int u = find_column(names, kUserCols);
      const int i = find_column(names, kItemCols);
      double t = 0;
      const bool third_is_time = fields.size() >= 3 && parse_time(fields[2], t);
      if (u >= 0 && i >= 0) {
        c_user = u;
        c_item = i;
        c_time = find_column(names, kTimeCols);
        if (c_time < 0) {
          log.note("no_timestamp", file, 1, "no timestamp column: each user's items keep the file order");
        }
        continue;
      }
      if (header_required || !third_is_time) {
        throw InputError(file, 1, "header",
                         "expected a header naming user and item columns (e.g. 'user,item,timestamp') or rows of "
                         "user,item,timestamp[,rating]");
      }
    }
    if (line.empty()) {
      log.note("blank_line", file, reader.line_number(), "blank line ignored");
      continue;
    }
    if (!split_fields(line, delim, csv_quotes, fields, scratch)) {
      log.skip("malformed_line", file, reader.line_number(), "", "unterminated quoted field");
      continue;
    }
    const auto need = static_cast<std::size_t>(std::max({c_user, c_item, c_time})) + 1;
    if (fields.size() < need) {
      log.skip("malformed_line", file, reader.line_number(), "",
               "expected at least " + std::to_string(need) + " fields, found " + std::to_string(fields.size()));
      continue;
    }
    const std::string_view user = fields[static_cast<std::size_t>(c_user)];
    const std::string_view item = fields[static_cast<std::size_t>(c_item)];
    if (user.empty() || item.empty()) {
      log.skip("missing_field", file, reader.line_number(), user.empty() ? "user" : "item", "empty id");
      continue;
    }
    double t = 0;
    if (c_time >= 0 && !parse_time(fields[static_cast<std::size_t>(c_time)], t)) {
      log.skip("bad_timestamp", file, reader.line_number(), "timestamp",
               "'" + std::string(fields[static_cast<std::size_t>(c_time)]) + "' is not a number");
      continue;
    }
    builder.add(user, item, t, 0, reader.line_number());
  }
  if (first) throw InputError(file, 0, "", "empty file: expected interactions");
  Dataset ds = builder.build({file}, repeats, log);
  apply_kcore(ds, kcore, log, file, &builder.user_lines());
  remove_short_users(ds, log, file, builder.user_lines());
  order_items_by_first_use(ds);
  return ds;
}

// Joins item text onto a dataset whose items carry only ids.
void attach_items(Dataset& ds, const ItemTable& table, const std::string& items_file, IssueLog& log) {
  std::size_t n_missing = 0;
  std::string first;
  for (auto& item : ds.items) {
    const ItemIndex i = table.lookup.find(item.id);
    if (i == kNoItem) {
      if (n_missing++ == 0) first = item.id;
      continue;
    }
    const Item& src = table.items[static_cast<std::size_t>(i)];
    item.title = src.title;
    item.brand = src.brand;
    item.category = src.category;
  }
  if (n_missing > 0) {
    log.note("item_not_in_item_file", items_file, 0,
             "items not in the item file (first: '" + first + "'), kept without text", n_missing);
  }
}

// RecBole sequence form: user<TAB>space-separated history<TAB>target, header line first.
struct SeqFile {
  struct Row {
    std::string_view user;
    std::uint32_t begin;  // history = tokens[begin, end)
    std::uint32_t end;
    std::string_view target;
    std::uint64_t line;
  };
  std::string file;
  std::string text;
  std::vector<std::string_view> tokens;
  std::vector<Row> rows;
  std::span<const std::string_view> history(const Row& r) const { return {tokens.data() + r.begin, r.end - r.begin}; }
};

void read_seq_inter(const std::string& file, SeqFile& out, IssueLog& log) {
  out.file = file;
  out.text = read_text(file);
  std::string_view text = out.text;
  std::uint64_t line_no = 0;
  int c_user = 0, c_hist = 1, c_target = 2;
  std::vector<std::string_view> fields;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fields.clear();
    for (std::size_t start = 0;;) {
      const std::size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
      if (tab == std::string_view::npos) break;
      start = tab + 1;
    }
    if (line_no == 1) {
      std::vector<std::string> names;
      for (const auto f : fields) names.push_back(column_name(f));
      static constexpr std::string_view kHistCols[] = {"item_id_list", "item_list", "history"};
      c_user = find_column(names, kUserCols);
      c_hist = find_column(names, kHistCols);
      c_target = find_column(names, kItemCols);
      if (c_user < 0 || c_hist < 0 || c_target < 0) {
        throw InputError(file, 1, "header", "expected columns user_id, item_id_list and item_id");
      }
      continue;
    }
    if (line.empty()) {
      log.note("blank_line", file, line_no, "blank line ignored");
      continue;
    }
    const auto need = static_cast<std::size_t>(std::max({c_user, c_hist, c_target})) + 1;
    if (fields.size() < need) {
      log.skip("malformed_line", file, line_no, "",
               "expected 3 tab-separated fields, found " + std::to_string(fields.size()));
      continue;
    }
    SeqFile::Row row{fields[static_cast<std::size_t>(c_user)], static_cast<std::uint32_t>(out.tokens.size()), 0,
                     fields[static_cast<std::size_t>(c_target)], line_no};
    std::string_view hist = fields[static_cast<std::size_t>(c_hist)];
    while (!hist.empty()) {
      const std::size_t sp = hist.find(' ');
      const std::string_view tok = hist.substr(0, sp);
      if (!tok.empty()) out.tokens.push_back(tok);
      if (sp == std::string_view::npos) break;
      hist.remove_prefix(sp + 1);
    }
    row.end = static_cast<std::uint32_t>(out.tokens.size());
    if (row.user.empty() || row.target.empty()) {
      log.skip("missing_field", file, line_no, row.user.empty() ? "user_id" : "item_id", "empty field");
      out.tokens.resize(row.begin);
      continue;
    }
    out.rows.push_back(row);
  }
  if (line_no == 0) throw InputError(file, 0, "", "empty file: expected a header and user rows");
}

bool is_seq_inter(const std::filesystem::path& path) {
  LineReader reader(path);
  std::string_view line;
  if (!reader.next(line)) return false;
  return line.find("item_id_list") != std::string_view::npos || line.find("item_list") != std::string_view::npos;
}

// UniSRec's X.item2index / X.user2index: 'source id<TAB>index' per line, sorted by index
// (canonical integers by value first). A first line naming columns ('item_id:token<TAB>...')
// is skipped.
struct IndexEntry {
  std::string id;
  std::string index;
  std::uint64_t line;
};

std::vector<IndexEntry> read_index_file(const std::filesystem::path& path, const std::string& what, IssueLog& log) {
  const std::string file = path.string();
  LineReader reader(path);
  std::string_view line;
  std::vector<IndexEntry> out;
  IdIndex ids, indices;
  bool any = false;
  while (reader.next(line)) {
    const bool first = !any;
    any = true;
    if (line.empty()) {
      log.note("blank_line", file, reader.line_number(), "blank line ignored");
      continue;
    }
    const std::size_t tab = line.find('\t');
    if (tab == std::string_view::npos) {
      log.skip("malformed_line", file, reader.line_number(), "", "expected '" + what + " id<TAB>index'");
      continue;
    }
    const std::string_view id = line.substr(0, tab);
    const std::string_view index = line.substr(tab + 1);
    if (first && id.find(':') != std::string_view::npos && index.find(':') != std::string_view::npos) continue;
    if (id.empty() || index.empty()) {
      log.skip("missing_field", file, reader.line_number(), id.empty() ? what + "_id" : "index", "empty field");
      continue;
    }
    if (ids.find(id) >= 0 || indices.find(index) >= 0) {
      log.skip(
          "duplicate_" + what, file, reader.line_number(), ids.find(id) >= 0 ? what + "_id" : "index",
          what + " '" + std::string(id) + "' or index '" + std::string(index) + "' appears again; the first is kept");
      continue;
    }
    ids.add(id, 0);
    indices.add(index, 0);
    out.push_back(IndexEntry{std::string(id), std::string(index), reader.line_number()});
  }
  if (!any) throw InputError(file, 0, "", "empty file: expected '" + what + " id<TAB>index' lines");
  const auto by_index = [](const IndexEntry& a, const IndexEntry& b) { return id_less(a.index, b.index); };
  if (!std::is_sorted(out.begin(), out.end(), by_index)) std::stable_sort(out.begin(), out.end(), by_index);
  return out;
}

// UniSRec items: one per X.item2index line, in index order, id = the source id, alt_id = the
// index; text from `table` (X.text) by source id, or by index where the source id is absent.
std::vector<Item> index_items(const std::filesystem::path& item2index, ItemTable& table, bool have_items,
                              const std::string& items_file, IdIndex& by_index, IssueLog& log) {
  const auto entries = read_index_file(item2index, "item", log);
  std::vector<Item> items(entries.size());
  std::vector<char> used(table.items.size(), 0);
  for (std::size_t k = 0; k < entries.size(); ++k) {
    Item& item = items[k];
    item.id = entries[k].id;
    item.alt_id = entries[k].index;
    by_index.add(item.alt_id, static_cast<ItemIndex>(k));
    if (!have_items) continue;
    ItemIndex t = table.lookup.find(item.id);
    if (t == kNoItem) t = table.lookup.find(item.alt_id);
    if (t == kNoItem) continue;
    const Item& src = table.items[static_cast<std::size_t>(t)];
    item.title = src.title;
    item.brand = src.brand;
    item.category = src.category;
    used[static_cast<std::size_t>(t)] = 1;
  }
  const auto n_unused = static_cast<std::uint64_t>(std::count(used.begin(), used.end(), 0));
  if (have_items) {
    log.filtered("meta_not_in_dataset", items_file, n_unused,
                 "text lines for items that are not in " + item2index.filename().string());
  }
  return items;
}

}  // namespace

Dataset load_recbole(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log) {
  ItemTable table;
  const bool have_items = !files.items.empty();
  const std::string items_file = files.items.string();
  if (have_items) table = read_item_table(files.items, false, opts, log);

  if (!is_seq_inter(files.interactions.at(0))) {
    // Per-interaction atomic file: user_id, item_id, timestamp.
    Dataset ds = read_interaction_table(files.interactions[0], false, true, kcore, opts.repeats, log);
    if (have_items) attach_items(ds, table, items_file, log);
    return ds;
  }

  // Sequence form: the last file holds the longest sequences (test), the first (valid) the
  // same minus the test target.
  const bool paired = files.interactions.size() == 2;
  SeqFile first, last;
  read_seq_inter(files.interactions.front().string(), first, log);
  if (paired) read_seq_inter(files.interactions.back().string(), last, log);
  const std::string& first_file = first.file;
  const std::string& last_file = paired ? last.file : first.file;

  Dataset ds;
  Interner new_items;
  // UniSRec: the .inter files hold indices, X.item2index and X.user2index map them to ids.
  const bool item_index = !files.item2id.empty();
  const bool user_index = !files.user2id.empty();
  IdIndex by_index;
  if (item_index) {
    ds.items = index_items(files.item2id, table, have_items, items_file, by_index, log);
  } else if (have_items) {
    ds.items = std::move(table.items);
  }
  std::vector<IndexEntry> users_by_index;
  IdIndex user_lookup;
  std::vector<char> user_used;
  if (user_index) {
    users_by_index = read_index_file(files.user2id, "user", log);
    for (std::size_t k = users_by_index.size(); k-- > 0;)
      user_lookup.add(users_by_index[k].index, static_cast<std::int32_t>(k));
    user_used.assign(users_by_index.size(), 0);
  }
  const bool known_items = item_index || have_items;
  auto resolve = [&](std::string_view token, const std::string& file, std::uint64_t line, std::string_view user) {
    if (known_items) {
      const ItemIndex i = item_index ? by_index.find(token) : table.lookup.find(token);
      if (i == kNoItem) {
        log.skip("unknown_item", file, line, "item_id",
                 "user '" + std::string(user) + "': item '" + std::string(token) + "' is not in " +
                     (item_index ? files.item2id : files.items).filename().string());
      }
      return i;
    }
    return static_cast<ItemIndex>(new_items.intern(token));
  };

  // Users of the last file, by id; usually both files list users in the same order, so the
  // index is only built when a row does not line up.
  IdIndex last_index;
  bool last_indexed = false;
  std::vector<char> last_used(last.rows.size(), 0);
  auto find_last = [&](std::size_t k, std::string_view user) -> std::int32_t {
    if (k < last.rows.size() && last.rows[k].user == user) return static_cast<std::int32_t>(k);
    if (!last_indexed) {
      for (std::size_t j = last.rows.size(); j-- > 0;) last_index.add(last.rows[j].user, static_cast<std::int32_t>(j));
      last_indexed = true;
    }
    return last_index.find(user);
  };

  IdIndex seen_users;
  std::vector<std::string_view> tokens;
  std::vector<char> mark(ds.items.size(), 0);
  std::vector<std::size_t> repeat_pos;
  std::vector<std::uint64_t> user_lines;
  ds.sequences.reserve(first.rows.size());
  ds.user_ids.reserve(first.rows.size());
  for (std::size_t k = 0; k < first.rows.size(); ++k) {
    const SeqFile::Row& row = first.rows[k];
    const std::string_view user = row.user;
    if (seen_users.find(user) >= 0) {
      log.skip("duplicate_user", first_file, row.line, "user_id",
               "user '" + std::string(user) + "' appears again; the first is kept");
      continue;
    }
    seen_users.add(user, 0);
    std::int32_t user_k = -1;
    if (user_index) {
      user_k = user_lookup.find(user);
      if (user_k < 0) {
        log.skip("unknown_user", first_file, row.line, "user_id",
                 "user '" + std::string(user) + "' is not in " + files.user2id.filename().string());
        if (paired) {
          const std::int32_t j = find_last(k, user);
          if (j >= 0) last_used[static_cast<std::size_t>(j)] = 1;
        }
        continue;
      }
    }
    const auto vh = first.history(row);
    tokens.assign(vh.begin(), vh.end());
    tokens.push_back(row.target);
    const std::string* file = &first_file;
    std::uint64_t line = row.line;
    if (paired) {
      const std::int32_t j = find_last(k, user);
      if (j < 0) {
        log.skip("unpaired_user", first_file, row.line, "user_id",
                 "user '" + std::string(user) + "' is not in " + files.interactions.back().filename().string());
        continue;
      }
      if (last_used[static_cast<std::size_t>(j)]) {
        log.skip("duplicate_user", last_file, last.rows[static_cast<std::size_t>(j)].line, "user_id",
                 "user '" + std::string(user) + "' appears again; the first is kept");
        continue;
      }
      last_used[static_cast<std::size_t>(j)] = 1;
      const SeqFile::Row& t = last.rows[static_cast<std::size_t>(j)];
      const auto th = last.history(t);
      // Consistent when the shorter of (valid history + valid target) and the test history
      // ends the longer one (publishers cut histories to their last N items).
      const bool valid_longer = tokens.size() >= th.size();
      const bool consistent =
          valid_longer
              ? std::equal(th.begin(), th.end(), tokens.end() - static_cast<std::ptrdiff_t>(th.size()))
              : std::equal(tokens.begin(), tokens.end(), th.end() - static_cast<std::ptrdiff_t>(tokens.size()));
      if (!consistent) {
        log.skip("inconsistent_split", last_file, t.line, "item_id_list",
                 "user '" + std::string(user) +
                     "': the test history is not the validation history plus the validation target");
        continue;
      }
      if (!valid_longer) tokens.assign(th.begin(), th.end());
      tokens.push_back(t.target);
      file = &last_file;
      line = t.line;
    }
    std::vector<ItemIndex> seq;
    seq.reserve(tokens.size());
    for (const auto tok : tokens) {
      const ItemIndex i = resolve(tok, *file, line, user);
      if (i != kNoItem) seq.push_back(i);
    }
    find_repeats(seq, opts.repeats, mark, repeat_pos);
    for (const std::size_t r : repeat_pos) {
      const auto i = static_cast<std::size_t>(seq[r]);
      report_repeat(log, opts.repeats, *file, line, "item_id_list", user,
                    known_items ? std::string_view(ds.items[i].id) : std::string_view(new_items.strings()[i]));
    }
    drop_repeats(seq, opts.repeats, repeat_pos);
    if (user_index) {
      const auto uk = static_cast<std::size_t>(user_k);
      user_used[uk] = 1;
      ds.user_ids.push_back(users_by_index[uk].id);
      ds.user_alt_ids.emplace_back(user);
    } else {
      ds.user_ids.emplace_back(user);
    }
    ds.sequences.push_back(std::move(seq));
    user_lines.push_back(line);
  }
  for (std::size_t j = 0; j < last.rows.size(); ++j) {
    if (last_used[j]) continue;
    const std::string_view user = last.rows[j].user;
    find_last(last.rows.size(), user);  // builds the index
    const bool repeated = seen_users.find(user) >= 0 || last_index.find(user) != static_cast<std::int32_t>(j);
    log.skip(repeated ? "duplicate_user" : "unpaired_user", last_file, last.rows[j].line, "user_id",
             repeated ? "user '" + std::string(user) + "' appears again; the first is kept"
                      : "user '" + std::string(user) + "' is not in " + files.interactions.front().filename().string());
  }
  if (user_index) {
    const auto n_unused = static_cast<std::uint64_t>(std::count(user_used.begin(), user_used.end(), 0));
    log.note("user2id_unused", files.user2id.string(), 0, "users that are not in the .inter files", n_unused);
  }
  if (!known_items) {
    ds.items.resize(new_items.size());
    for (std::size_t i = 0; i < new_items.size(); ++i) ds.items[i].id = new_items.strings()[i];
  }
  apply_kcore(ds, kcore, log, last_file, &user_lines);
  remove_short_users(ds, log, last_file, user_lines);
  return ds;
}

Dataset load_csv(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log) {
  Dataset ds = read_interaction_table(files.interactions.at(0), true, false, kcore, opts.repeats, log);
  if (!files.items.empty()) {
    const ItemTable table = read_item_table(files.items, true, opts, log);
    attach_items(ds, table, files.items.string(), log);
  }
  return ds;
}

}  // namespace lrgd::data::detail
