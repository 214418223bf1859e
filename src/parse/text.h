// Text helpers of the answer parser: tokens with byte offsets, title matching.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lrgd/parse.h"

namespace lrgd::parse::detail {

struct Token {
  std::string text;       // normalised: Unicode-folded (case, compatibility forms, marks)
  std::size_t begin = 0;  // byte offsets in the tokenised string
  std::size_t end = 0;
};

// Replaces fullwidth forms (Unicode's <wide> decompositions: U+FF01..U+FF60, U+FFE0..U+FFE6,
// the ideographic space) by their usual width, so "１２．" reads as "12.". Other bytes are
// kept, invalid UTF-8 too.
std::string fold_fullwidth(std::string_view text);
// Drops <think>...</think> blocks (reasoning models); an unclosed block drops the rest.
std::string strip_reasoning(std::string_view text);
std::vector<Token> tokenize(std::string_view text);
std::size_t edit_distance(std::string_view a, std::string_view b);

enum class MatchKind { None, Fuzzy, Exact };

struct TitleMatch {
  MatchKind kind = MatchKind::None;
  int candidate = -1;     // 0-based
  std::size_t begin = 0;  // where the title starts in the searched text (exact mentions)
  bool ambiguous = false;
};

// Candidate titles, pre-tokenised once per answer.
class TitleMatcher {
 public:
  TitleMatcher(std::span<const std::string> titles, const ParseOptions& options);
  std::size_t size() const { return titles_.size(); }
  // Exact mentions (token sequences equal to a title) in `text`, non-overlapping, in
  // order; among overlapping ones the longest wins.
  std::vector<TitleMatch> find_exact(std::string_view text) const;
  // Best single match for `text`: the earliest exact mention, else the best fuzzy or
  // partial match of `text`'s head (up to an explanation separator).
  TitleMatch best(std::string_view text) const;
  double similarity(const std::vector<Token>& fragment, std::size_t title) const;
  // Whether candidate's title is mentioned in `text` or its head matches it fuzzily.
  bool fits(std::string_view text, int candidate) const;
  // Among candidates whose title equals `candidate`'s, the first one not yet used.
  int first_unused_twin(int candidate, const std::vector<bool>& used) const;

 private:
  TitleMatch fuzzy(std::string_view text) const;
  std::size_t n_titles_with(const std::string& token) const;
  std::vector<std::vector<Token>> titles_;
  std::vector<std::string> joined_;  // normalised title without spaces
  ParseOptions options_;
};

}  // namespace lrgd::parse::detail
