// Fixed candidate files (lrgd's / LLMRank's `user<TAB>item item ...`, MoRE's JSON) and
// user-list files: reading against a dataset's ids, and writing a prepared split's sets.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "lrgd/error.h"
#include "lrgd/file.h"
#include "lrgd/hash.h"
#include "lrgd/protocol.h"

namespace lrgd::protocol {

namespace {

using ojson = nlohmann::ordered_json;

void add_issue(std::vector<data::LoadIssue>& issues, bool strict, const std::string& kind, const std::string& file,
               std::uint64_t line, const std::string& field, const std::string& detail) {
  if (strict) throw InputError(file, line, field, detail + " (" + kind + ")");
  for (auto& issue : issues) {
    if (issue.kind == kind) {
      ++issue.count;
      return;
    }
  }
  issues.push_back(data::LoadIssue{kind, file, line, detail, 1, true});
}

// Ids as the files give them: the dataset's own ids first, then its second ids (LC-Rec:
// reviewer ids and ASINs), so a file written from either id space reads.
class IdResolver {
 public:
  explicit IdResolver(const Dataset& ds) : users_(ds.user_ids), items_(data::index_item_ids(ds)) {
    for (std::size_t u = ds.user_alt_ids.size(); u-- > 0;)
      if (!ds.user_alt_ids[u].empty()) alt_users_.add(ds.user_alt_ids[u], static_cast<std::int32_t>(u));
    for (std::size_t i = ds.items.size(); i-- > 0;)
      if (!ds.items[i].alt_id.empty()) alt_items_.add(ds.items[i].alt_id, static_cast<std::int32_t>(i));
  }
  UserIndex user(std::string_view id) const {
    const auto k = users_.find(id);
    return k >= 0 ? k : alt_users_.find(id);
  }
  ItemIndex item(std::string_view id) const {
    const auto k = items_.find(id);
    return k >= 0 ? k : alt_items_.find(id);
  }

 private:
  data::IdIndex users_, items_, alt_users_, alt_items_;
};

std::uint64_t line_of(std::string_view text, std::size_t offset) {
  return 1 + static_cast<std::uint64_t>(std::count(text.begin(), text.begin() + std::min(offset, text.size()), '\n'));
}

// The lines of a JSON document's values, asked for in document order: each value's text is
// searched after the previous one's, and lines are counted on from there (one pass in all).
class DocumentLines {
 public:
  explicit DocumentLines(std::string_view text) : text_(text) {}
  std::uint64_t next(std::string_view shown) {
    const std::size_t at = text_.find(shown, from_);
    const std::size_t to = at == std::string_view::npos ? from_ : at;
    line_ += static_cast<std::uint64_t>(std::count(text_.begin() + counted_, text_.begin() + to, '\n'));
    counted_ = to;
    if (at != std::string_view::npos) from_ = at + shown.size();
    return line_;
  }

 private:
  std::string_view text_;
  std::size_t from_ = 0, counted_ = 0;
  std::uint64_t line_ = 1;
};

// f(line, line_no) for every line of `text`, a trailing '\r' removed.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::uint64_t line_no = 0;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t nl = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    f(line, ++line_no);
  }
}

// A JSON id: a string, or a non-negative integer as MoRE's RecBole ids are.
std::optional<std::string> json_id(const ojson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return std::to_string(v.get<std::int64_t>());
  return std::nullopt;
}

// nlohmann's DOM parser throws a number too large for a double (out_of_range 406) without
// its offset; this parser keeps the offset of any error, so every error names its line.
class PositionedDomParser : public nlohmann::detail::json_sax_dom_parser<ojson> {
 public:
  explicit PositionedDomParser(ojson& document) : json_sax_dom_parser(document, false) {}
  template <class Exception>
  bool parse_error(std::size_t offset, const std::string& /*token*/, const Exception& e) {
    error_offset = offset;
    error = e.what();
    return false;
  }
  std::size_t error_offset = 0;
  std::string error;
};

// The whole file as JSON; a syntax error or an out-of-range number names its line.
ojson parse_json(const std::string& text, const std::string& file) {
  ojson doc;
  PositionedDomParser sax(doc);
  if (!ojson::sax_parse(text, &sax) || !sax.error.empty())
    throw InputError(file, line_of(text, sax.error_offset > 0 ? sax.error_offset - 1 : 0), "",
                     "malformed JSON: " + (sax.error.empty() ? std::string("unreadable") : sax.error));
  return doc;
}

void load_more(const std::string& text, const std::string& file, const IdResolver& ids, FixedCandidates& out) {
  const ojson doc = parse_json(text, file);
  if (!doc.is_object() || doc.empty())
    throw InputError(file, 1, "", "expected MoRE's layout {user: {\"-1\": {\"candidate_set\": [...]}}}");
  DocumentLines lines(text);
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::uint64_t line = lines.next(ojson(it.key()).dump());
    const UserIndex u = ids.user(it.key());
    if (u < 0) throw InputError(file, line, "user", "user '" + it.key() + "' is not in the dataset");
    const auto su = static_cast<std::size_t>(u);
    if (!out.by_user[su].empty()) throw InputError(file, line, "user", "user '" + it.key() + "' appears again");
    const ojson& entry = it.value();
    if (!entry.is_object() || !entry.contains("-1") || !entry["-1"].is_object())
      throw InputError(file, line, "-1", "user '" + it.key() + "': expected an object with the key \"-1\"");
    const ojson& test = entry["-1"];
    if (!test.contains("candidate_set") || !test["candidate_set"].is_array() || test["candidate_set"].empty())
      throw InputError(file, line, "candidate_set", "user '" + it.key() + "': expected a non-empty array");
    for (const auto& v : test["candidate_set"]) {
      const auto id = json_id(v);
      if (!id) throw InputError(file, line, "candidate_set", "user '" + it.key() + "': an item id is not an id");
      const ItemIndex i = ids.item(*id);
      if (i < 0) throw InputError(file, line, "candidate_set", "item '" + *id + "' is not in the dataset");
      out.by_user[su].push_back(i);
    }
    if (test.contains("target_item")) {
      const auto id = json_id(test["target_item"]);
      const ItemIndex t = id ? ids.item(*id) : data::kNoItem;
      if (t < 0) throw InputError(file, line, "target_item", "target item is not an item of the dataset");
      out.target_by_user[su] = t;
    }
    out.line_by_user[su] = line;
  }
}

}  // namespace

FixedCandidates load_candidate_file(const std::filesystem::path& path, const Dataset& ds, bool strict) {
  const std::string file = path.string();
  const std::string text = read_file(path);
  FixedCandidates out;
  out.file_hash = sha256_hex(text);
  out.by_user.resize(ds.n_users());
  out.line_by_user.assign(ds.n_users(), 0);
  out.target_by_user.assign(ds.n_users(), data::kNoItem);
  const IdResolver ids(ds);
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw InputError(file, 0, "", "empty candidate file");
  if (text[first] == '{') {
    out.layout = FixedCandidates::Layout::More;
    load_more(text, file, ids, out);
    return out;
  }

  std::vector<char> seen_user(ds.n_users(), 0);
  for_each_line(text, [&](std::string_view line, std::uint64_t line_no) {
    if (line.find_first_not_of(" \t") == std::string::npos) return;
    const std::size_t sep = line.find_first_of("\t ");
    if (sep == std::string::npos) {
      add_issue(out.issues, strict, "malformed_line", file, line_no, "", "expected 'user<TAB>item item ...'");
      return;
    }
    const std::string_view user_id = line.substr(0, sep);
    const UserIndex found = ids.user(user_id);
    if (found < 0) throw InputError(file, line_no, "user", "user '" + std::string(user_id) + "' is not in the dataset");
    const auto u = static_cast<std::size_t>(found);
    if (seen_user[u]) {
      add_issue(out.issues, strict, "duplicate_user", file, line_no, "user",
                "user '" + std::string(user_id) + "' appears again; the first line is kept");
      return;
    }
    seen_user[u] = 1;
    out.line_by_user[u] = line_no;
    auto& list = out.by_user[u];
    std::string_view rest = line.substr(sep + 1);
    while (!rest.empty()) {
      const std::size_t a = rest.find_first_not_of(" \t,");
      if (a == std::string_view::npos) break;
      rest.remove_prefix(a);
      const std::size_t b = std::min(rest.find_first_of(" \t,"), rest.size());
      const std::string_view tok = rest.substr(0, b);
      rest.remove_prefix(b);
      const ItemIndex item = ids.item(tok);
      if (item < 0) throw InputError(file, line_no, "item", "item '" + std::string(tok) + "' is not in the dataset");
      list.push_back(item);
    }
  });
  return out;
}

void write_candidate_file(const PreparedSplit& split, const Dataset& ds, std::string_view format,
                          const std::filesystem::path& path) {
  const auto item_id = [&](ItemIndex i) -> const std::string& { return ds.items[static_cast<std::size_t>(i)].id; };
  std::string out;
  if (format == "tsv" || format == "llmrank") {
    const bool negatives_only = format == "llmrank";
    for (const auto& u : split.users) {
      out += u.user_id;
      out += '\t';
      bool first = true;
      for (const ItemIndex i : u.test_candidates) {
        if (negatives_only && i == u.test_target) continue;
        if (!first) out += ' ';
        out += item_id(i);
        first = false;
      }
      out += '\n';
    }
  } else if (format == "more") {
    ojson doc = ojson::object();
    for (const auto& u : split.users) {
      ojson inters = ojson::array(), set = ojson::array();
      for (const ItemIndex i : u.test_history) inters.push_back(item_id(i));
      for (const ItemIndex i : u.test_candidates) set.push_back(item_id(i));
      doc[u.user_id]["-1"] = {
          {"inters", std::move(inters)}, {"target_item", item_id(u.test_target)}, {"candidate_set", std::move(set)}};
    }
    out = doc.dump(1) + "\n";
  } else {
    throw OptionError("--candidate-format", "unknown format '" + std::string(format) + "' (tsv, llmrank, more)");
  }
  write_file_atomic(path, out);
}

UserList load_user_list(const std::filesystem::path& path, const Dataset& ds) {
  const std::string file = path.string();
  const std::string text = read_file(path);
  const IdResolver ids(ds);
  UserList list;
  list.file_hash = sha256_hex(text);
  auto& out = list.users;
  std::vector<char> seen(ds.n_users(), 0);
  auto add = [&](const std::string& id, std::uint64_t line) {
    const UserIndex u = ids.user(id);
    if (u < 0) throw InputError(file, line, "user", "user '" + id + "' is not in the dataset");
    if (seen[static_cast<std::size_t>(u)]) throw InputError(file, line, "user", "user '" + id + "' appears again");
    seen[static_cast<std::size_t>(u)] = 1;
    out.push_back(u);
  };
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    const ojson doc = parse_json(text, file);
    DocumentLines lines(text);
    for (const auto& v : doc) {
      const std::string shown = v.dump();
      const std::uint64_t line = lines.next(shown);
      const auto id = json_id(v);
      if (!id) throw InputError(file, line, "user", "expected a user id, found " + shown);
      add(*id, line);
    }
  } else {
    for_each_line(text, [&](std::string_view line, std::uint64_t line_no) {
      const auto a = line.find_first_not_of(" \t");
      if (a == std::string_view::npos || line[a] == '#') return;
      const auto b = line.find_last_not_of(" \t");
      add(std::string(line.substr(a, b - a + 1)), line_no);
    });
  }
  if (out.empty()) throw InputError(file, 0, "", "the user list names no user");
  return list;
}

}  // namespace lrgd::protocol
