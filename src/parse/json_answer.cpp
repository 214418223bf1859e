// JSON answers: {"recommendations": [...]}, plain arrays, {"1": "title", ...} and objects
// with id/title fields. A cut-off answer (max_tokens reached) is closed and its last,
// possibly partial, element dropped.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "answer.h"

namespace lrgd::parse::detail {
namespace {

using nlohmann::json;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Scan {
  bool in_string = false;
  std::string closers;                       // pending closing brackets, innermost last
  std::vector<std::size_t> commas;           // top-level-of-container commas outside strings
  std::size_t end = std::string_view::npos;  // where the first value closes (balanced)
};

Scan scan(std::string_view s) {
  Scan r;
  bool escape = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (r.in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        r.in_string = false;
      }
      continue;
    }
    if (c == '"') {
      r.in_string = true;
    } else if (c == '{' || c == '[') {
      r.closers += c == '{' ? '}' : ']';
    } else if ((c == '}' || c == ']') && !r.closers.empty()) {
      r.closers.pop_back();
      if (r.closers.empty()) {
        r.end = i + 1;
        return r;
      }
    } else if (c == ',') {
      r.commas.push_back(i);
    }
  }
  return r;
}

std::optional<json> try_parse(std::string_view s) {
  json v = json::parse(s.begin(), s.end(), nullptr, false);
  if (v.is_discarded() || !(v.is_array() || v.is_object())) return std::nullopt;
  return v;
}

// Closes a cut-off JSON prefix; drops a partial last element when the cut was mid-value.
std::optional<json> repair(std::string_view s, const Scan& full) {
  const auto last = s.find_last_not_of(" \t\r\n");
  const bool clean_cut = !full.in_string && last != std::string_view::npos &&
                         std::string_view(",[{]}\"").find(s[last]) != std::string_view::npos;
  std::vector<std::size_t> cuts;
  if (clean_cut) cuts.push_back(s.size());
  for (auto it = full.commas.rbegin(); it != full.commas.rend() && cuts.size() < 4; ++it) cuts.push_back(*it);
  for (const auto cut : cuts) {
    std::string t(s.substr(0, cut));
    while (!t.empty() && (std::isspace(static_cast<unsigned char>(t.back())) || t.back() == ',')) t.pop_back();
    const Scan sc = scan(t);
    if (sc.in_string) t += '"';
    if (!t.empty() && t.back() == ':') t += "null";
    t.append(sc.closers.rbegin(), sc.closers.rend());
    if (auto v = try_parse(t)) return v;
  }
  return std::nullopt;
}

// A number far outside any candidate range (an LLM's 1e300, 2^40) stays out of range, so it
// counts as a hallucination instead of wrapping onto a real candidate or overflowing an int.
int clamp_to_int(double d) {
  constexpr double lo = std::numeric_limits<int>::min(), hi = std::numeric_limits<int>::max();
  if (!(d > lo)) return std::numeric_limits<int>::min();  // NaN too
  if (!(d < hi)) return std::numeric_limits<int>::max();
  return static_cast<int>(d);
}

std::optional<int> as_number(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    return u > static_cast<std::uint64_t>(std::numeric_limits<int>::max()) ? std::numeric_limits<int>::max()
                                                                           : static_cast<int>(u);
  }
  if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    return static_cast<int>(
        std::clamp<std::int64_t>(i, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  }
  if (v.is_number_float()) return clamp_to_int(v.get<double>());
  if (v.is_string() && all_digits(v.get<std::string>())) return std::stoi(v.get<std::string>());
  return std::nullopt;
}

void collect(const json& v, std::vector<Line>& out, int depth);

void element(const json& e, std::vector<Line>& out, int depth) {
  Line line;
  if (e.is_number()) {
    line.lead = Lead::Candidate;
    line.lead_number = as_number(e).value_or(0);
  } else if (e.is_string()) {
    line = split_markers(e.get<std::string>());
  } else if (e.is_object()) {
    static const char* const kNumberKeys[] = {"id",           "number",     "candidate", "candidate_number",
                                              "candidate_id", "item_id",    "index",     "no",
                                              "num",          "item_number"};
    static const char* const kTitleKeys[] = {"title",           "name", "item", "product", "item_title",
                                             "candidate_title", "game"};
    for (auto it = e.begin(); it != e.end(); ++it) {
      const auto key = lower(it.key());
      const bool number_key = std::find(std::begin(kNumberKeys), std::end(kNumberKeys), key) != std::end(kNumberKeys);
      const bool title_key = std::find(std::begin(kTitleKeys), std::end(kTitleKeys), key) != std::end(kTitleKeys);
      if ((number_key || (title_key && !it->is_string())) && line.lead_number == 0) {
        if (auto n = as_number(*it)) {
          line.lead = Lead::Candidate;
          line.lead_number = *n;
        }
      } else if (title_key && it->is_string() && line.rest.empty()) {
        line.rest = it->get<std::string>();
      }
    }
  } else if (e.is_array() && depth < 4) {
    collect(e, out, depth + 1);
    return;
  }
  if (line.lead_number != 0 || !line.rest.empty() || e.is_string()) out.push_back(std::move(line));
}

void collect(const json& v, std::vector<Line>& out, int depth) {
  if (v.is_array()) {
    for (const auto& e : v) element(e, out, depth);
    return;
  }
  // {"1": "title", "2": ...}: keys are positions.
  std::vector<std::pair<int, const json*>> numbered;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (all_digits(it.key())) numbered.emplace_back(std::stoi(it.key()), &*it);
  }
  if (!numbered.empty() && numbered.size() == v.size()) {
    std::stable_sort(numbered.begin(), numbered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [position, value] : numbered) element(*value, out, depth);
    return;
  }
  static const char* const kListKeys[] = {"recommendations", "recommendation", "ranking", "ranked_items", "items",
                                          "candidates",      "recommended",    "top10",   "top_10",       "results",
                                          "result",          "answer",         "list",    "output"};
  for (const char* key : kListKeys) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (lower(it.key()) == key && (it->is_array() || it->is_object())) return collect(*it, out, depth + 1);
    }
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it->is_array()) return collect(*it, out, depth + 1);
  }
  element(v, out, depth);  // a single {"id": .., "title": ..}
}

// Starts of JSON values worth trying: a bracket opening a line, after a code fence or a colon.
std::vector<std::size_t> json_starts(std::string_view text) {
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < text.size() && starts.size() < 4; ++i) {
    if (text[i] != '{' && text[i] != '[') continue;
    std::size_t j = i;
    while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t')) --j;
    const bool line_start = j == 0 || text[j - 1] == '\n' || text[j - 1] == ':' || text[j - 1] == '=';
    const bool after_fence = j >= 3 && text.substr(0, j).ends_with("```");
    if (line_start || after_fence) starts.push_back(i);
  }
  return starts;
}

}  // namespace

bool read_json_answer(std::string_view text, std::vector<Line>& lines, std::vector<std::string>& notes) {
  for (const auto start : json_starts(text)) {
    const auto s = text.substr(start);
    const Scan sc = scan(s);
    std::optional<json> value;
    bool repaired = false;
    if (sc.end != std::string_view::npos) {
      // The rest of the line after a balanced value must be empty: "[12] Title" is a list line.
      const auto nl = s.find('\n', sc.end);
      const auto tail = s.substr(sc.end, nl == std::string_view::npos ? nl : nl - sc.end);
      if (tail.find_first_not_of(" \t\r`.,;") != std::string_view::npos) continue;
      value = try_parse(s.substr(0, sc.end));
    } else {
      value = repair(s, sc);
      repaired = value.has_value();
    }
    if (!value) continue;
    std::vector<Line> found;
    collect(*value, found, 0);
    if (found.empty()) continue;
    if (repaired) notes.push_back("repaired cut-off JSON (a partial last element is dropped)");
    lines.insert(lines.end(), found.begin(), found.end());
    return true;
  }
  return false;
}

}  // namespace lrgd::parse::detail
