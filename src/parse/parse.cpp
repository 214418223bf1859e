// LLM answer → ranking. The answer is read in the first of these forms that names a
// candidate: JSON (a value opening a line, after a fence or a colon), a list (lines with
// "1." "[3]" "#3" "-" ... markers; sub-bullets indented deeper and, in numbered lists,
// unnumbered bullets are explanations and skipped), prose (explicit references and exact
// title mentions in reading order, bold or quoted fragments matched fuzzily, and
// "12, 7, 33"-style number lists).
#include "lrgd/parse.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

#include "answer.h"
#include "lrgd/enum_names.h"
#include "text.h"

namespace lrgd::parse {

namespace {

using namespace detail;

struct Entry {
  int number = 0;      // 1-based candidate number as written; 0: none
  std::string text;    // title text to match; may be empty
  int direct = -1;     // candidate already identified (exact mention)
  bool counts = true;  // an unresolved entry is a hallucination
  std::size_t line_no = 0;
};

// "12" / "12." / "12 - Title" at the start of the text after an ordinal.
std::optional<std::size_t> leading_number(std::string_view s, int& value) {
  std::size_t len = 0;
  for (; len < s.size() && is_digit(s[len]); ++len) {
  }
  if (len == 0 || len > 3) return std::nullopt;
  value = std::stoi(std::string(s.substr(0, len)));
  if (len == s.size()) return len;
  const char c = s[len];
  if ((c == '.' || c == ')' || c == ':' || c == ']') && (len + 1 == s.size() || s[len + 1] == ' ')) return len + 1;
  std::size_t k = len;
  while (k < s.size() && s[k] == ' ') ++k;
  if (k == s.size()) return k;
  for (const char* sep : {"-", "|", ":", "–", "—"}) {
    if (k > len && s.substr(k).starts_with(sep)) return k + std::string_view(sep).size();
  }
  return std::nullopt;
}

std::vector<Entry> entries_from_lines(const std::vector<Line>& lines) {
  std::vector<int> numbered;
  for (const auto& l : lines) {
    if (l.lead == Lead::Numbered) numbered.push_back(l.lead_number);
  }
  // Positions: runs that count 1, 2, 3, ... A model that restarts its list ("Your top 10:"
  // and the list again) starts a new run at 1; any other jump means the leads are
  // candidate numbers.
  bool ordinals = !numbered.empty() && numbered.front() == 1;
  for (std::size_t i = 1; i < numbered.size(); ++i)
    ordinals = ordinals && (numbered[i] == 1 || numbered[i] == numbered[i - 1] + 1);
  std::vector<Entry> entries;
  for (const auto& l : lines) {
    Entry e;
    e.line_no = l.line_no;
    e.text = l.rest;
    const auto refs = find_refs(l.rest);
    int inner = 0;
    if (!refs.empty()) {
      e.number = refs.front().number;
      e.text.replace(refs.front().begin, refs.front().end - refs.front().begin, " ");
    } else if (l.lead == Lead::Candidate || (l.lead == Lead::Numbered && !ordinals)) {
      e.number = l.lead_number;
    } else if (const auto skip = leading_number(l.rest, inner)) {
      e.number = inner;
      e.text.erase(0, *skip);
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

// "12, 7, 33" or "Answer: 12 > 7 > 33" (an optional label before a colon).
std::optional<std::vector<int>> number_list(std::string_view line) {
  const auto colon = line.rfind(':');
  if (colon != std::string_view::npos) line = line.substr(colon + 1);
  std::vector<int> out;
  std::string word;
  auto flush = [&]() -> bool {
    if (word.empty()) return true;
    static const char* const kJoiners[] = {"and", "und", "y", "e", "et", "or", "then", "和", "与", "及"};
    bool ok = std::find(std::begin(kJoiners), std::end(kJoiners), word) != std::end(kJoiners);
    int n = 0;
    if (!ok && read_number(word, 0, n) == word.size()) {
      out.push_back(n);
      ok = true;
    }
    word.clear();
    return ok;
  };
  for (std::size_t i = 0; i <= line.size(); ++i) {
    const char c = i < line.size() ? line[i] : ' ';
    if (std::string_view(" \t,;/>|[]()#.*`\r").find(c) != std::string_view::npos || line.substr(i).starts_with("、") ||
        line.substr(i).starts_with("，")) {
      if (!flush()) return std::nullopt;
      if (static_cast<unsigned char>(c) >= 0x80) i += 2;
    } else {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// Bold or quoted fragments: where prose usually puts the item names.
std::vector<std::pair<std::size_t, std::size_t>> emphasised(std::string_view s) {
  static const std::pair<const char*, const char*> kPairs[] = {{"**", "**"}, {"\"", "\""}, {"“", "”"}, {"«", "»"},
                                                               {"《", "》"}, {"「", "」"}, {"„", "“"}, {"__", "__"}};
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (const auto& [open, close] : kPairs) {
    for (std::size_t i = s.find(open); i != std::string_view::npos; i = s.find(open, i)) {
      const std::size_t b = i + std::string_view(open).size();
      const std::size_t e = s.find(close, b);
      if (e == std::string_view::npos) break;
      if (e > b + 1 && e - b < 300) out.emplace_back(b, e);
      i = e + std::string_view(close).size();
    }
  }
  return out;
}

struct Source {
  std::string_view text;
  std::size_t line_no;
};

std::vector<Source> split_lines(std::string_view text) {
  std::vector<Source> out;
  std::size_t start = 0, no = 1;
  while (start <= text.size()) {
    const auto nl = std::min(text.find('\n', start), text.size());
    out.push_back({text.substr(start, nl - start), no++});
    start = nl + 1;
  }
  return out;
}

std::vector<Entry> prose_entries(const std::vector<Source>& lines, const TitleMatcher& matcher,
                                 const ParseOptions& options) {
  // Lone numbers count only when every line is numbers ("12\n7\n33"), not in sentences.
  // A numbered line ("2. 77") is not a number list: its first number is a position.
  auto numbers = [](std::string_view line) -> std::optional<std::vector<int>> {
    const auto lead = split_markers(line).lead;
    if (lead == Lead::Numbered || lead == Lead::Ordinal) return std::nullopt;
    return number_list(line);
  };
  bool all_numbers = true;
  for (const auto& l : lines) all_numbers = all_numbers && (trim(l.text).empty() || numbers(l.text));
  std::vector<Entry> entries;
  for (const auto& l : lines) {
    if (trim(l.text).empty()) continue;
    if (const auto nums = numbers(l.text); nums && (nums->size() >= 2 || all_numbers)) {
      for (int n : *nums) entries.push_back({n, {}, -1, true, l.line_no});
      continue;
    }
    std::vector<std::pair<std::size_t, Entry>> found;
    for (const auto& r : find_refs(l.text)) found.push_back({r.begin, {r.number, {}, -1, true, l.line_no}});
    if (options.match_titles) {
      for (const auto& m : matcher.find_exact(l.text))
        found.push_back({m.begin, {0, {}, m.candidate, false, l.line_no}});
      for (const auto& span : emphasised(l.text)) {
        const std::size_t b = span.first, e = span.second;  // named copies: clang 14 lambdas cannot capture bindings
        const bool has_mention =
            std::any_of(found.begin(), found.end(), [&](const auto& f) { return f.first >= b && f.first < e; });
        if (has_mention) continue;
        const auto m = matcher.best(l.text.substr(b, e - b));
        if (m.kind != MatchKind::None && !m.ambiguous) found.push_back({b, {0, {}, m.candidate, false, l.line_no}});
      }
      if (found.empty() && tokenize(l.text).size() <= 12) {
        const auto m = matcher.best(l.text);
        if (m.kind != MatchKind::None && !m.ambiguous) found.push_back({0, {0, {}, m.candidate, false, l.line_no}});
      }
    }
    std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    // "Mario Kart 8 [17]": a title and its number next to each other are one mention.
    for (std::size_t i = 0; i < found.size(); ++i) {
      auto same = [](const Entry& x, const Entry& y) {
        return (x.direct >= 0 && x.direct == y.number - 1) || (y.direct >= 0 && y.direct == x.number - 1);
      };
      if (i > 0 && same(found[i - 1].second, found[i].second)) continue;
      entries.push_back(std::move(found[i].second));
    }
  }
  return entries;
}

class Ranker {
 public:
  Ranker(const TitleMatcher& matcher, const ParseOptions& options, AnswerFormat format)
      : matcher_(matcher), options_(options), used_(matcher.size(), false) {
    result_.format = format;
  }

  void add(const Entry& e) {
    ++result_.n_entries;
    const int c = resolve(e);
    if (c < 0) {
      if (e.counts) ++result_.n_hallucinated;
      return;
    }
    if (used_[static_cast<std::size_t>(c)]) {
      ++result_.n_duplicates;
      return;
    }
    used_[static_cast<std::size_t>(c)] = true;
    if (result_.ranking.size() < static_cast<std::size_t>(options_.list_length)) {
      result_.ranking.push_back(c);
    } else {
      ++n_beyond_;
    }
  }

  ParseResult finish() {
    result_.valid = !result_.ranking.empty();
    result_.n_unranked = options_.list_length - static_cast<int>(result_.ranking.size());
    if (n_beyond_ > 0) note("dropped " + std::to_string(n_beyond_) + " candidates beyond the list length");
    if (!result_.valid) note("no candidate recognised");
    return std::move(result_);
  }

 private:
  void note(std::string text) {
    if (result_.notes.size() < 20) result_.notes.push_back(std::move(text));
  }

  int resolve(const Entry& e) {
    const std::string where = "line " + std::to_string(e.line_no) + ": ";
    if (e.direct >= 0) return matcher_.first_unused_twin(e.direct, used_);
    const int n = static_cast<int>(matcher_.size());
    const bool has_number = options_.match_numbers && e.number != 0;
    const int by_number = has_number && e.number >= 1 && e.number <= n ? e.number - 1 : -1;
    TitleMatch title;
    if (options_.match_titles && e.text.find_first_not_of(" \t") != std::string::npos) title = matcher_.best(e.text);
    if (title.ambiguous) {
      note(where + "title matches several candidates equally");
      title = TitleMatch{};
    }
    const int by_title = title.kind == MatchKind::None ? -1 : matcher_.first_unused_twin(title.candidate, used_);
    if (by_number >= 0 && by_title >= 0 && by_number != by_title) {
      // Agreement means the number's own title fits the text, even if another fits better.
      if (matcher_.fits(e.text, by_number)) return by_number;
      const bool title_wins = title.kind == MatchKind::Exact;
      note(where + "number " + std::to_string(e.number) + " disagrees with the title of " +
           std::to_string(title.candidate + 1) + "; " + (title_wins ? "exact title" : "number") + " used");
      return title_wins ? by_title : by_number;
    }
    if (by_number >= 0) return by_number;
    if (has_number) note(where + "number " + std::to_string(e.number) + " is outside 1.." + std::to_string(n));
    return by_title;
  }

  const TitleMatcher& matcher_;
  const ParseOptions& options_;
  std::vector<bool> used_;
  ParseResult result_;
  int n_beyond_ = 0;
};

ParseResult rank_entries(const std::vector<Entry>& entries, const TitleMatcher& matcher, const ParseOptions& options,
                         AnswerFormat format, const std::vector<std::string>& notes) {
  Ranker ranker(matcher, options, format);
  for (const auto& e : entries) ranker.add(e);
  auto r = ranker.finish();
  r.notes.insert(r.notes.begin(), notes.begin(), notes.end());
  return r;
}

}  // namespace

std::string_view format_name(AnswerFormat format) {
  static constexpr std::array<Named<AnswerFormat>, 4> kFormats{{{AnswerFormat::Empty, "empty"},
                                                                {AnswerFormat::Json, "json"},
                                                                {AnswerFormat::List, "list"},
                                                                {AnswerFormat::Prose, "prose"}}};
  return name_of(kFormats, format);
}

std::string normalize_title(std::string_view text) {
  std::string out;
  for (const auto& t : tokenize(fold_fullwidth(text))) out += (out.empty() ? "" : " ") + t.text;
  return out;
}

double title_similarity(std::string_view fragment, std::string_view title, const ParseOptions& options) {
  const std::string t(title);
  TitleMatcher matcher(std::span<const std::string>(&t, 1), options);
  return matcher.similarity(tokenize(fold_fullwidth(fragment)), 0);
}

ParseResult parse_ranking(std::string_view answer, std::span<const std::string> candidate_titles,
                          const ParseOptions& options) {
  if (options.list_length < 1) throw std::invalid_argument("list_length must be >= 1");
  const std::string text = strip_reasoning(fold_fullwidth(answer));
  const TitleMatcher matcher(candidate_titles, options);
  if (trim(text).empty()) return rank_entries({}, matcher, options, AnswerFormat::Empty, {"empty answer"});

  std::optional<ParseResult> first;  // reported when no form names a candidate
  auto attempt = [&](const std::vector<Entry>& entries, AnswerFormat format,
                     const std::vector<std::string>& notes) -> std::optional<ParseResult> {
    auto r = rank_entries(entries, matcher, options, format, notes);
    if (r.valid) return r;
    if (!first) first = std::move(r);
    return std::nullopt;
  };
  std::vector<Line> json_lines;
  std::vector<std::string> notes;
  if (read_json_answer(text, json_lines, notes)) {
    if (auto r = attempt(entries_from_lines(json_lines), AnswerFormat::Json, notes)) return std::move(*r);
    notes.clear();
  } else if (const auto b = text.find_first_not_of(" \t\r\n"); text[b] == '{' || text[b] == '[') {
    notes.push_back("answer looks like JSON but does not parse");
  }
  const auto sources = split_lines(text);
  std::vector<Line> list;
  for (const auto& src : sources) {
    auto l = split_markers(src.text);
    l.line_no = src.line_no;
    const auto nums = l.lead == Lead::Candidate ? number_list(src.text) : std::nullopt;
    if (nums && nums->size() >= 2) continue;  // "[3], [7], [1]" is a number list, not a list line
    if ((l.bullet || l.lead != Lead::None) && !l.rest.empty()) list.push_back(std::move(l));
  }
  if (!list.empty()) {
    // Explanations: sub-bullets indented deeper, and bullets between numbered lines.
    int indent = list.front().indent;
    bool any_numbered = false;
    for (const auto& l : list) {
      indent = std::min(indent, l.indent);
      any_numbered = any_numbered || l.lead != Lead::None;
    }
    std::erase_if(list, [&](const Line& l) { return l.indent > indent + 1 || (any_numbered && l.lead == Lead::None); });
    if (auto r = attempt(entries_from_lines(list), AnswerFormat::List, notes)) return std::move(*r);
  }
  if (auto r = attempt(prose_entries(sources, matcher, options), AnswerFormat::Prose, notes)) return std::move(*r);
  return std::move(*first);
}

}  // namespace lrgd::parse
