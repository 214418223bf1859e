#include "text.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <memory>

#include "lrgd/utf8.h"

namespace lrgd::parse::detail {
namespace {

// Decodes one UTF-8 code point at `i`; invalid bytes decode as U+FFFD of length 1.
char32_t raw_decode(std::string_view s, std::size_t i, std::size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](std::size_t k) { return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
  auto bits = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  if (b0 < 0x80) {
    len = 1;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0 && cont(1)) {
    len = 2;
    return (static_cast<char32_t>(b0 & 0x1F) << 6) | bits(1);
  }
  if ((b0 & 0xF0) == 0xE0 && cont(1) && cont(2)) {
    len = 3;
    return (static_cast<char32_t>(b0 & 0x0F) << 12) | (bits(1) << 6) | bits(2);
  }
  if ((b0 & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
    len = 4;
    return (static_cast<char32_t>(b0 & 0x07) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
  }
  len = 1;
  return 0xFFFD;
}

// As raw_decode, and a surrogate or a code point above U+10FFFF (no character: utf8proc
// refuses it) is invalid too, U+FFFD of length 1.
char32_t decode(std::string_view s, std::size_t i, std::size_t& len) {
  const char32_t c = raw_decode(s, i, len);
  if ((c >= 0xD800 && c < 0xE000) || c > 0x10FFFF) {
    len = 1;
    return 0xFFFD;
  }
  return c;
}

enum class CharClass { Separator, Word, Cjk };

CharClass classify(char32_t c) {
  if (c < 0x80) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return alnum ? CharClass::Word : CharClass::Separator;
  }
  if (c < 0xC0 || c == 0xD7 || c == 0xF7 || c == 0xFFFD) return CharClass::Separator;
  if (c < 0x2000) return CharClass::Word;                      // Latin, Greek, Cyrillic, ... letters
  if (c < 0x2E80) return CharClass::Separator;                 // punctuation, symbols, arrows, boxes
  if (c >= 0x3000 && c < 0x3040) return CharClass::Separator;  // CJK punctuation
  if (c < 0xA000 || (c >= 0xF900 && c < 0xFB00) || (c >= 0x20000 && c < 0x40000)) return CharClass::Cjk;
  if ((c >= 0xFE30 && c < 0xFE50) || (c >= 0xFF00 && c < 0xFFF0)) return CharClass::Separator;
  if (c >= 0x1F000 && c < 0x20000) return CharClass::Separator;  // emoji
  return CharClass::Word;
}

// Latin letters that Unicode does not decompose into a base letter and a mark, folded as
// their usual transliteration ("Ørsted" = "Orsted", "Æon" = "Aeon").
std::string_view stroke_letter(char32_t c) {
  struct Plain {
    char32_t letter;
    std::string_view text;
  };
  static constexpr Plain kPlain[] = {{U'æ', "ae"}, {U'œ', "oe"}, {U'ø', "o"}, {U'ð', "d"},
                                     {U'þ', "th"}, {U'đ', "d"},  {U'ł', "l"}, {U'ħ', "h"}};
  for (const auto& p : kPlain)
    if (p.letter == c) return p.text;
  return {};
}

// A word's text folded for matching (utf8proc): case folded ("ß" = "ss", "Σ" = "σ"),
// compatibility forms replaced ("ﬁ" = "fi", "Ａ" = "a", "ǅ" = "dz"), marks dropped
// ("Pokémon" = "pokemon", "Ё" = "е"). A word holds valid code points only (decode).
std::string fold_word(std::string word) {
  const bool ascii =
      std::all_of(word.begin(), word.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (ascii) {
    for (char& ch : word)
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return word;
  }
  utf8proc_uint8_t* raw = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(word.data()),
                              static_cast<utf8proc_ssize_t>(word.size()), &raw,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                                                             UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> mapped(raw, &std::free);
  if (n < 0) return word;  // not reached: decode lets no invalid code point into a word
  const std::string_view folded(reinterpret_cast<const char*>(mapped.get()), static_cast<std::size_t>(n));
  std::string out;
  out.reserve(folded.size());
  for (std::size_t i = 0; i < folded.size();) {
    std::size_t len = 1;
    const char32_t c = decode(folded, i, len);
    const std::string_view plain = c < 0x80 ? std::string_view() : stroke_letter(c);
    if (plain.empty()) {
      out.append(folded.substr(i, len));
    } else {
      out.append(plain);
    }
    i += len;
  }
  return out;
}

// "Dark Souls III" = "Dark Souls 3"; I, V and X stay words (pronoun, "GTA V" vs "v").
std::string roman_to_digits(std::string token) {
  static const char* const kRoman[] = {"ii", "iii", "iv", "vi", "vii", "viii", "ix", "xi", "xii", "xiii", "xiv", "xv"};
  static const char* const kDigits[] = {"2", "3", "4", "6", "7", "8", "9", "11", "12", "13", "14", "15"};
  for (std::size_t i = 0; i < std::size(kRoman); ++i) {
    if (token == kRoman[i]) return kDigits[i];
  }
  return token;
}

bool has_digit(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Typos: one edit in a word of 4+ bytes, two in 8+; numbers must match exactly.
bool token_equal(const std::string& a, const std::string& b) {
  if (a == b) return true;
  if (has_digit(a) || has_digit(b)) return false;
  const std::size_t longer = std::max(a.size(), b.size());
  if (longer < 4) return false;
  const std::size_t allowed = longer >= 8 ? 2 : 1;
  const std::size_t diff = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
  return diff <= allowed && edit_distance(a, b) <= allowed;
}

std::string join(const std::vector<Token>& tokens) {
  std::string out;
  for (const auto& t : tokens) out += t.text;
  return out;
}

// Where an explanation starts after an item ("Title - because ..."); npos if none.
std::size_t head_end(std::string_view text) {
  static const char* const kSeparators[] = {" - ",      " – ",       " — ",         " -- ",    ": ",       " (",
                                            "（",       " [",        " | ",         "，",      "。",       "：",
                                            ". ",       " because ", " as ",        " since ", " which ",  " weil ",
                                            " porque ", " ya que ",  " parce que ", ", da ",   ", which ", " perché "};
  std::size_t best = std::string_view::npos;
  for (const char* sep : kSeparators) {
    const auto p = text.find(sep);
    if (p != std::string_view::npos && p > 0 && p < best) best = p;
  }
  return best;
}

struct Sim {
  double score = 0;
  double coverage = 0;
};

}  // namespace

std::string fold_fullwidth(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 1;
    const char32_t c = decode(text, i, len);
    const auto cp = static_cast<utf8proc_int32_t>(c);
    utf8proc_int32_t narrow[4];
    utf8proc_ssize_t n = 0;
    if (c != 0xFFFD && utf8proc_get_property(cp)->decomp_type == UTF8PROC_DECOMP_TYPE_WIDE) {
      n = utf8proc_decompose_char(cp, narrow, 4, static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT),
                                  nullptr);
    }
    if (n > 0 && n <= 4) {
      for (utf8proc_ssize_t k = 0; k < n; ++k) append_utf8(out, static_cast<char32_t>(narrow[k]));
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string strip_reasoning(std::string_view text) {
  std::string out(text);
  const auto close = out.rfind("</think>");
  if (close != std::string::npos) return out.substr(close + 8);
  const auto open = out.find("<think>");
  if (open != std::string::npos) out.resize(open);
  return out;
}

std::vector<Token> tokenize(std::string_view text) {
  std::vector<Token> tokens;
  Token current;
  bool in_word = false;
  auto flush = [&](std::size_t at) {
    if (in_word) {
      current.end = at;
      current.text = roman_to_digits(fold_word(std::move(current.text)));
      tokens.push_back(std::move(current));
      current = Token{};
    }
    in_word = false;
  };
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 1;
    const char32_t c = decode(text, i, len);
    const CharClass cls = classify(c);
    if (cls == CharClass::Word) {
      if (!in_word) current.begin = i;
      in_word = true;
      append_utf8(current.text, c);
    } else {
      flush(i);
      if (cls == CharClass::Cjk) {
        Token t;
        t.begin = i;
        t.end = i + len;
        append_utf8(t.text, c);
        tokens.push_back(std::move(t));
      }
    }
    i += len;
  }
  flush(text.size());
  return tokens;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: a swap of neighbours ("Leauge") is one edit.
  const std::size_t w = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * w);
  for (std::size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      std::size_t v = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, d[(i - 2) * w + j - 2] + 1);
      d[i * w + j] = v;
    }
  }
  return d.back();
}

TitleMatcher::TitleMatcher(std::span<const std::string> titles, const ParseOptions& options) : options_(options) {
  for (const auto& t : titles) {
    titles_.push_back(tokenize(fold_fullwidth(t)));
    joined_.push_back(join(titles_.back()));
  }
}

std::vector<TitleMatch> TitleMatcher::find_exact(std::string_view text) const {
  const auto tokens = tokenize(text);
  struct Hit {
    std::size_t start, len;
    int candidate;
  };
  std::vector<Hit> hits;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    for (std::size_t c = 0; c < titles_.size(); ++c) {
      const auto& t = titles_[c];
      if (t.empty() || i + t.size() > tokens.size()) continue;
      bool same = true;
      for (std::size_t k = 0; k < t.size() && same; ++k) same = tokens[i + k].text == t[k].text;
      if (same) hits.push_back({i, t.size(), static_cast<int>(c)});
    }
  }
  // Earliest first, longest first at one start, lowest candidate among twins.
  std::stable_sort(hits.begin(), hits.end(),
                   [](const Hit& a, const Hit& b) { return a.start != b.start ? a.start < b.start : a.len > b.len; });
  std::vector<TitleMatch> out;
  std::size_t covered = 0;
  for (const auto& h : hits) {
    if (h.start < covered) continue;
    covered = h.start + h.len;
    out.push_back({MatchKind::Exact, h.candidate, tokens[h.start].begin, false});
  }
  return out;
}

double TitleMatcher::similarity(const std::vector<Token>& fragment, std::size_t title) const {
  const auto& t = titles_[title];
  if (t.empty() || fragment.empty()) return 0.0;
  std::vector<bool> taken(t.size(), false);
  std::size_t matched = 0;
  bool prefix = true;
  for (std::size_t i = 0; i < fragment.size(); ++i) {
    bool found = false;
    for (std::size_t k = 0; k < t.size() && !found; ++k) {
      if (!taken[k] && token_equal(fragment[i].text, t[k].text)) {
        taken[k] = found = true;
        prefix = prefix && k == i;
      }
    }
    prefix = prefix && found;
    matched += found ? 1 : 0;
  }
  const double n_f = static_cast<double>(fragment.size()), n_t = static_cast<double>(t.size());
  const double m = static_cast<double>(matched);
  double score = 2.0 * m / (n_f + n_t);
  const double coverage = m / n_t;
  // Partial title: everything written belongs to the title and it gives enough of it,
  // or it is one distinctive word found in no other title ("Sekiro").
  const bool distinctive = fragment.size() == 1 && matched == 1 && fragment[0].text.size() >= 4 &&
                           !has_digit(fragment[0].text) && n_titles_with(fragment[0].text) == 1;
  const bool all_in_title = matched == fragment.size() && (matched >= 2 || t.size() == 1 || distinctive);
  if (all_in_title && (coverage >= options_.partial_min_coverage || prefix || distinctive)) {
    score = std::max(score, options_.fuzzy_threshold);
  }
  // Character level, for merged or split words ("MarioKart" vs "Mario Kart").
  const std::string a = join(fragment);
  const std::string& b = joined_[title];
  const auto shorter = std::min(a.size(), b.size()), longer = std::max(a.size(), b.size());
  if (longer > 0 && static_cast<double>(shorter) >= 0.7 * static_cast<double>(longer)) {
    const double chars = 1.0 - static_cast<double>(edit_distance(a, b)) / static_cast<double>(longer);
    if (chars >= 0.85) score = std::max(score, chars);
  }
  return score;
}

std::size_t TitleMatcher::n_titles_with(const std::string& token) const {
  std::size_t n = 0;
  for (const auto& t : titles_) {
    n += std::any_of(t.begin(), t.end(), [&](const Token& x) { return token_equal(x.text, token); }) ? 1 : 0;
  }
  return n;
}

TitleMatch TitleMatcher::fuzzy(std::string_view text) const {
  std::vector<std::vector<Token>> fragments = {tokenize(text)};
  const auto cut = head_end(text);
  if (cut != std::string_view::npos) fragments.push_back(tokenize(text.substr(0, cut)));
  if (fragments.front().empty()) return {};
  Sim best, second;
  int best_c = -1, second_c = -1;
  for (std::size_t c = 0; c < titles_.size(); ++c) {
    Sim s;
    for (const auto& f : fragments) s.score = std::max(s.score, similarity(f, c));
    if (s.score < options_.fuzzy_threshold) continue;
    s.coverage = 0;
    for (const auto& f : fragments) {
      std::size_t m = 0;
      for (const auto& tok : titles_[c]) {
        m += std::any_of(f.begin(), f.end(), [&](const Token& x) { return token_equal(x.text, tok.text); }) ? 1 : 0;
      }
      s.coverage = std::max(s.coverage, static_cast<double>(m) / static_cast<double>(titles_[c].size()));
    }
    auto better = [](const Sim& x, const Sim& y) {
      return x.score != y.score ? x.score > y.score : x.coverage > y.coverage;
    };
    if (best_c < 0 || better(s, best)) {
      second = best;
      second_c = best_c;
      best = s;
      best_c = static_cast<int>(c);
    } else if (second_c < 0 || better(s, second)) {
      second = s;
      second_c = static_cast<int>(c);
    }
  }
  if (best_c < 0) return {};
  TitleMatch out{MatchKind::Fuzzy, best_c, 0, false};
  const bool tie = second_c >= 0 && second.score == best.score && second.coverage == best.coverage;
  if (tie && joined_[static_cast<std::size_t>(second_c)] != joined_[static_cast<std::size_t>(best_c)]) {
    out.ambiguous = true;
  }
  return out;
}

bool TitleMatcher::fits(std::string_view text, int candidate) const {
  const auto c = static_cast<std::size_t>(candidate);
  const auto& t = titles_[c];
  if (t.empty()) return false;
  const auto tokens = tokenize(text);
  for (std::size_t i = 0; i + t.size() <= tokens.size(); ++i) {
    bool same = true;
    for (std::size_t k = 0; k < t.size() && same; ++k) same = tokens[i + k].text == t[k].text;
    if (same) return true;
  }
  double score = similarity(tokens, c);
  if (const auto cut = head_end(text); cut != std::string_view::npos) {
    score = std::max(score, similarity(tokenize(text.substr(0, cut)), c));
  }
  return score >= options_.fuzzy_threshold;
}

TitleMatch TitleMatcher::best(std::string_view text) const {
  const auto exact = find_exact(text);
  if (!exact.empty()) return exact.front();
  return fuzzy(text);
}

int TitleMatcher::first_unused_twin(int candidate, const std::vector<bool>& used) const {
  const auto& key = titles_[static_cast<std::size_t>(candidate)];
  for (std::size_t c = 0; c < titles_.size(); ++c) {
    if (used[c]) continue;
    const auto& t = titles_[c];
    if (t.size() == key.size() &&
        std::equal(t.begin(), t.end(), key.begin(), [](const Token& x, const Token& y) { return x.text == y.text; })) {
      return static_cast<int>(c);
    }
  }
  return candidate;
}

}  // namespace lrgd::parse::detail
