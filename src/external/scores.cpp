// Score files of other tools (docs/formats.md, "Score files"): reading, checking them
// against the run's candidates, and the ranker that replays them.
#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/external.h"
#include "lrgd/file.h"
#include "lrgd/hash.h"
#include "lrgd/json_fields.h"

namespace lrgd::external {

namespace {

using Key = std::pair<UserIndex, std::uint32_t>;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// Resolves ids against the dataset and throws InputError naming the file and line.
class Resolver {
 public:
  Resolver(const data::Dataset& ds, std::string path)
      : ds_(ds), path_(std::move(path)), items_(data::index_item_ids(ds)), users_(ds.user_ids) {
    if (!ds.user_alt_ids.empty()) alt_users_ = data::IdIndex(ds.user_alt_ids);
  }

  UserIndex user(std::string_view id, std::uint64_t line) const {
    std::int32_t u = users_.find(id);
    if (u < 0 && !ds_.user_alt_ids.empty()) u = alt_users_.find(id);
    if (u < 0) throw InputError(path_, line, "user", fmt::format("user '{}' is not in the dataset {}", id, ds_.name));
    return u;
  }

  ItemIndex item(std::string_view id, std::uint64_t line, const char* field) const {
    const std::int32_t i = items_.find(id);
    if (i < 0) throw InputError(path_, line, field, fmt::format("item '{}' is not in the dataset {}", id, ds_.name));
    return i;
  }

  const std::string& path() const { return path_; }

 private:
  const data::Dataset& ds_;
  std::string path_;
  data::IdIndex items_;
  data::IdIndex users_;
  data::IdIndex alt_users_;
};

using ojson = nlohmann::ordered_json;

// An id given as a JSON string or integer.
std::string id_of(const ojson& v, const std::string& path, std::uint64_t line, const char* field) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  throw InputError(path, line, field, "expected an id (a string or an integer), found " + v.dump());
}

void read_jsonl_line(std::string_view text, std::uint64_t line, const Resolver& r, ScoreFile& out) {
  const std::string& path = r.path();
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // Python's json.dumps writes NaN and Infinity, which JSON does not have.
    for (const char* w : {"NaN", "Infinity"})
      if (text.find(w) != std::string_view::npos)
        throw InputError(path, line, "scores",
                         std::string("non-finite score (") + w + "): scores must be finite numbers");
    throw InputError(path, line, "", std::string("not a JSON object (truncated or malformed line): ") + e.what());
  }
  const json_fields::Where at{path, line};
  const auto& user = json_fields::field(j, "user", at);
  const auto& trial = json_fields::field(j, "trial", at);
  const bool has_ranking = j.contains("ranking");
  const bool has_scores = j.contains("scores");
  if (has_ranking == has_scores)
    throw InputError(path, line, has_ranking ? "scores" : "ranking",
                     has_ranking ? "a line gives a ranking or scores, not both" : "missing: give ranking or scores");
  Entry e;
  e.user = r.user(id_of(user, path, line, "user"), line);
  e.trial = json_fields::as_integer<std::uint32_t>(trial, "trial", at);
  e.line = line;
  e.is_ranking = has_ranking;
  if (has_ranking) {
    const auto& a = j["ranking"];
    if (!a.is_array()) throw InputError(path, line, "ranking", "expected an array of item ids, best first");
    std::unordered_map<ItemIndex, std::size_t> seen;
    for (std::size_t k = 0; k < a.size(); ++k) {
      const std::string id = id_of(a[k], path, line, "ranking");
      const ItemIndex item = r.item(id, line, "ranking");
      if (!seen.emplace(item, k).second)
        throw InputError(path, line, "ranking",
                         fmt::format("item '{}' is ranked twice (positions {} and {})", id, seen[item] + 1, k + 1));
      e.ranking.push_back(item);
    }
  } else {
    const auto& s = j["scores"];
    if (!s.is_object()) throw InputError(path, line, "scores", "expected an object {\"<item id>\": score, ...}");
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (!it.value().is_number())
        throw InputError(path, line, "scores",
                         fmt::format("item '{}': expected a number, found {}", it.key(), it.value().dump()));
      const double v = it.value().get<double>();
      if (!std::isfinite(v))
        throw InputError(path, line, "scores", fmt::format("item '{}': non-finite score", it.key()));
      e.scores.emplace_back(r.item(it.key(), line, "scores"), v);
      e.score_lines.push_back(line);
    }
  }
  const Key key{e.user, e.trial};
  const auto [it, fresh] = out.entries.emplace(key, std::move(e));
  if (!fresh)
    throw InputError(path, line, "trial",
                     fmt::format("user '{}', trial {} appears again (first at line {})",
                                 id_of(user, path, line, "user"), key.second, it->second.line));
}

std::vector<std::string_view> split_tabs(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t from = 0;
  while (true) {
    const auto tab = s.find('\t', from);
    out.push_back(s.substr(from, tab == std::string_view::npos ? std::string_view::npos : tab - from));
    if (tab == std::string_view::npos) return out;
    from = tab + 1;
  }
}

bool is_header(const std::vector<std::string_view>& f) {
  if (f.size() != 4) return false;
  const auto u = lower(f[0]), t = lower(f[1]), i = lower(f[2]), s = lower(f[3]);
  return (u == "user" || u == "user_id") && t == "trial" && (i == "item" || i == "item_id") && s == "score";
}

struct TsvState {
  // (user, trial) -> item -> line, to name the first line of a repeated item.
  std::map<Key, std::unordered_map<ItemIndex, std::uint64_t>> lines;
  bool first = true;
};

void read_tsv_line(std::string_view text, std::uint64_t line, const Resolver& r, ScoreFile& out, TsvState& st) {
  const std::string& path = r.path();
  const auto f = split_tabs(text);
  if (st.first) {
    st.first = false;
    if (is_header(f)) return;
  }
  if (f.size() != 4)
    throw InputError(path, line, "",
                     fmt::format("expected 4 tab-separated fields (user, trial, item, score), found {}{}", f.size(),
                                 f.size() < 4 ? " (truncated or malformed line)" : ""));
  std::uint32_t trial = 0;
  {
    const auto* end = f[1].data() + f[1].size();
    const auto res = std::from_chars(f[1].data(), end, trial);
    if (f[1].empty() || res.ec != std::errc() || res.ptr != end)
      throw InputError(path, line, "trial", fmt::format("expected a trial number (an integer >= 0), found '{}'", f[1]));
  }
  double score = 0;
  {
    const auto* end = f[3].data() + f[3].size();
    const auto res = std::from_chars(f[3].data(), end, score);
    if (f[3].empty() || res.ec != std::errc() || res.ptr != end)
      throw InputError(path, line, "score", fmt::format("expected a number, found '{}'", f[3]));
    if (!std::isfinite(score))
      throw InputError(path, line, "score", fmt::format("non-finite score '{}': scores must be finite numbers", f[3]));
  }
  const UserIndex user = r.user(f[0], line);
  const ItemIndex item = r.item(f[2], line, "item");
  const Key key{user, trial};
  auto& lines = st.lines[key];
  if (const auto [it, fresh] = lines.emplace(item, line); !fresh)
    throw InputError(
        path, line, "item",
        fmt::format("user '{}', trial {}, item '{}' appears again (first at line {})", f[0], trial, f[2], it->second));
  auto [it, fresh] = out.entries.try_emplace(key);
  Entry& e = it->second;
  if (fresh) {
    e.user = user;
    e.trial = trial;
    e.line = line;
  }
  e.scores.emplace_back(item, score);
  e.score_lines.push_back(line);
}

class ExternalRanker final : public rec::Ranker {
 public:
  explicit ExternalRanker(std::map<Key, std::vector<int>> rankings) : rankings_(std::move(rankings)) {}

  std::vector<rec::Ranked> rank(std::span<const rec::Query> queries) override {
    std::vector<rec::Ranked> out(queries.size());
    for (std::size_t i = 0; i < queries.size(); ++i) {
      const auto it = rankings_.find({queries[i].user, queries[i].trial});
      if (it == rankings_.end()) throw std::invalid_argument("external ranker: a query that was not checked");
      out[i].ranking = it->second;
      out[i].valid = !out[i].ranking.empty();
      out[i].answer_format = "external";
    }
    return out;
  }

 private:
  std::map<Key, std::vector<int>> rankings_;
};

}  // namespace

ScoreFile read_score_file(const std::filesystem::path& path, const data::Dataset& dataset) {
  ScoreFile out;
  out.path = path.string();
  const std::string bytes = read_file(path);
  out.sha256 = sha256_hex(bytes);
  const auto first = bytes.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw InputError(out.path, 0, "", "empty score file");
  out.format = bytes[first] == '{' ? "jsonl" : "tsv";
  const Resolver resolver(dataset, out.path);
  TsvState tsv;
  std::uint64_t line = 0;
  std::size_t at = 0;
  while (at < bytes.size()) {
    ++line;
    const auto nl = bytes.find('\n', at);
    if (nl == std::string::npos)
      throw InputError(out.path, line, "",
                       "the last line has no line end: the file looks truncated (every line must end with \\n)");
    std::string_view text(bytes.data() + at, nl - at);
    at = nl + 1;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (blank(text)) continue;
    if (out.format == "jsonl")
      read_jsonl_line(text, line, resolver, out);
    else
      read_tsv_line(text, line, resolver, out, tsv);
  }
  return out;
}

std::vector<int> order_candidates(const ScoreFile& file, const rec::Query& query, const data::Dataset& dataset,
                                  int list_length) {
  const auto& user_id = dataset.user_ids.at(static_cast<std::size_t>(query.user));
  const auto it = file.entries.find({query.user, query.trial});
  if (it == file.entries.end())
    throw InputError(file.path, 0, "",
                     fmt::format("no line for user '{}', trial {}: the file must cover every (user, trial) of the run",
                                 user_id, query.trial));
  const Entry& e = it->second;
  const char* field = e.is_ranking ? "ranking" : file.format == "tsv" ? "item" : "scores";
  // An item may fill several positions (--negatives uniform-all repeats negatives): its one
  // line in the file covers every copy, which then sit next to each other in the order.
  std::unordered_map<ItemIndex, std::vector<int>> position;
  for (std::size_t k = 0; k < query.candidates.size(); ++k)
    position[query.candidates[k]].push_back(static_cast<int>(k));
  const auto item_id = [&](ItemIndex i) { return dataset.items.at(static_cast<std::size_t>(i)).id; };
  // Every item named must be a candidate ...
  std::vector<int> given;
  std::vector<double> scores;
  const std::size_t n = e.is_ranking ? e.ranking.size() : e.scores.size();
  for (std::size_t k = 0; k < n; ++k) {
    const ItemIndex item = e.is_ranking ? e.ranking[k] : e.scores[k].first;
    const auto p = position.find(item);
    if (p == position.end())
      throw InputError(
          file.path, e.is_ranking ? e.line : e.score_lines[k], field,
          fmt::format("item '{}' is not a candidate of user '{}' in trial {}", item_id(item), user_id, query.trial));
    for (const int copy : p->second) {
      given.push_back(copy);
      if (!e.is_ranking) scores.push_back(e.scores[k].second);
    }
  }
  // ... and every candidate must be named (the reader refused repeats).
  if (given.size() != query.candidates.size()) {
    std::vector<bool> named(query.candidates.size(), false);
    for (int p : given) named[static_cast<std::size_t>(p)] = true;
    std::string missing;
    std::size_t n_missing = 0;
    for (std::size_t k = 0; k < named.size(); ++k) {
      if (named[k]) continue;
      if (++n_missing <= 10) missing += (missing.empty() ? "'" : ", '") + item_id(query.candidates[k]) + "'";
    }
    if (n_missing > 10) missing += ", ...";
    throw InputError(file.path, e.line, field,
                     fmt::format("{} of user '{}', trial {} misses {} of its {} candidates: {} ({})",
                                 e.is_ranking ? "the ranking" : "the scores", user_id, query.trial, n_missing,
                                 query.candidates.size(), missing,
                                 e.is_ranking ? "a ranking must order every candidate" : "score every candidate"));
  }
  std::vector<int> order;
  if (e.is_ranking) {
    order = std::move(given);
  } else {
    // By score, ties by position in the shuffled candidate list.
    std::vector<double> by_position(query.candidates.size());
    for (std::size_t k = 0; k < given.size(); ++k) by_position[static_cast<std::size_t>(given[k])] = scores[k];
    order.resize(by_position.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return by_position[static_cast<std::size_t>(a)] > by_position[static_cast<std::size_t>(b)];
    });
  }
  if (list_length > 0 && order.size() > static_cast<std::size_t>(list_length))
    order.resize(static_cast<std::size_t>(list_length));
  return order;
}

std::unique_ptr<rec::Ranker> make_external_ranker(std::map<Key, std::vector<int>> rankings) {
  return std::make_unique<ExternalRanker>(std::move(rankings));
}

}  // namespace lrgd::external
