// Fixed candidate files: `user<TAB>item item ...` per line (LLMRank's X.random).
#include <fstream>

#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/protocol.h"

namespace lrgd::protocol {

namespace {

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

}  // namespace

FixedCandidates load_candidate_file(const std::filesystem::path& path, const Dataset& ds, bool strict) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read candidate file " + file);
  FixedCandidates out;
  out.file_hash = sha256_file(path);
  out.by_user.resize(ds.n_users());

  // Ids as the files give them: the dataset's own ids first, then its second ids (LC-Rec:
  // reviewer ids and ASINs), so a candidate file written from either id space reads.
  const data::IdIndex users(ds.user_ids);
  const data::IdIndex items = data::index_item_ids(ds);
  data::IdIndex alt_users, alt_items;
  for (std::size_t u = ds.user_alt_ids.size(); u-- > 0;)
    if (!ds.user_alt_ids[u].empty()) alt_users.add(ds.user_alt_ids[u], static_cast<std::int32_t>(u));
  for (std::size_t i = ds.items.size(); i-- > 0;)
    if (!ds.items[i].alt_id.empty()) alt_items.add(ds.items[i].alt_id, static_cast<std::int32_t>(i));
  const auto find = [](const data::IdIndex& first, const data::IdIndex& second, std::string_view id) {
    const auto k = first.find(id);
    return k >= 0 ? k : second.find(id);
  };

  std::string line;
  std::uint64_t line_no = 0;
  std::vector<char> seen_user(ds.n_users(), 0);
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::size_t sep = line.find_first_of("\t ");
    if (sep == std::string::npos) {
      add_issue(out.issues, strict, "malformed_line", file, line_no, "", "expected 'user<TAB>item item ...'");
      continue;
    }
    const std::string_view user_id(line.data(), sep);
    const UserIndex found = find(users, alt_users, user_id);
    if (found < 0) {
      add_issue(out.issues, strict, "unknown_user", file, line_no, "user",
                "user '" + std::string(user_id) + "' is not in the dataset");
      continue;
    }
    const auto u = static_cast<std::size_t>(found);
    if (seen_user[u]) {
      add_issue(out.issues, strict, "duplicate_user", file, line_no, "user",
                "user '" + std::string(user_id) + "' appears again; the first line is kept");
      continue;
    }
    seen_user[u] = 1;
    auto& list = out.by_user[u];
    std::string_view rest(line.data() + sep + 1, line.size() - sep - 1);
    while (!rest.empty()) {
      const std::size_t a = rest.find_first_not_of(" \t,");
      if (a == std::string_view::npos) break;
      rest.remove_prefix(a);
      const std::size_t b = std::min(rest.find_first_of(" \t,"), rest.size());
      const std::string_view tok = rest.substr(0, b);
      rest.remove_prefix(b);
      const ItemIndex item = find(items, alt_items, tok);
      if (item < 0) {
        add_issue(out.issues, strict, "unknown_item", file, line_no, "item",
                  "item '" + std::string(tok) + "' is not in the dataset");
        continue;
      }
      list.push_back(item);
    }
  }
  if (in.bad()) throw IoError("read error on " + file);
  if (line_no == 0) throw InputError(file, 0, "", "empty candidate file");
  return out;
}

}  // namespace lrgd::protocol
