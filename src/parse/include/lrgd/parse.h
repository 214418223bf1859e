// LLM answer text → ranked candidate positions. Tolerates numbered lists, bullets, JSON
// (also truncated), prose, markdown, reasoning blocks, partial or misspelt titles and
// text in other languages around the titles. Never throws on model output: an answer
// that names no candidate comes back with valid == false and counts as a miss.
//
// Rules (the forms tried are listed in parse.cpp's header comment):
//  - A candidate is named by its shown number (1-based: "[12]", "#12", "Candidate 12",
//    a list line "12. ...") or by its title (exact, case/punctuation/accent-insensitive
//    in every script: Unicode case folding, compatibility forms and marks dropped, so
//    "POKÉMON" = "pokemon", "Straße" = "strasse", "ＡＢＣ" = "abc"; fuzzy or partial). A run of list lines numbered 1,
//    2, 3, ... is read as positions, and a number after the position ("1. 12", "1. [12] Title") as the candidate.
//  - Number and title both given: the number wins when its own title fits the text
//    (exact or fuzzy: they agree); else an exact mention of another title wins (numbers
//    are mis-copied more often than titles); else the number wins when in range.
//  - Repeats are dropped (first wins); list/JSON entries naming no candidate (unknown
//    title, number outside 1..n) are hallucinations; rankings are cut to list_length.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lrgd::parse {

enum class AnswerFormat { Empty, Json, List, Prose };
std::string_view format_name(AnswerFormat format);  // "empty", "json", "list", "prose"

struct ParseOptions {
  int list_length = 10;               // the ranking keeps at most this many candidates
  double fuzzy_threshold = 0.75;      // min similarity in [0,1] for a non-exact title match
  double partial_min_coverage = 0.4;  // a partial title must give this share of the title's
                                      // tokens (or be a prefix of >= 2 tokens)
  bool match_titles = true;           // false: numbers only
  bool match_numbers = true;          // false: titles only
};

struct ParseResult {
  std::vector<int> ranking;  // 0-based candidate positions (shown number - 1), best first, distinct
  int n_entries = 0;         // answer entries looked at (list lines, JSON elements, mentions)
  int n_hallucinated = 0;    // entries naming no candidate, over the whole answer
  int n_duplicates = 0;      // entries repeating an earlier candidate
  int n_unranked = 0;        // list_length - ranking.size(): slots left "not ranked"
  bool valid = false;        // at least one candidate recognised
  AnswerFormat format = AnswerFormat::Empty;
  std::vector<std::string> notes;  // human-readable: disagreements, ambiguities, repairs
};

// `candidate_titles[i]` is the title shown as number i + 1. Titles may be empty (then
// only numbers can name that candidate). Throws std::invalid_argument if list_length < 1.
ParseResult parse_ranking(std::string_view answer, std::span<const std::string> candidate_titles,
                          const ParseOptions& options = {});

// Exposed for tests and for callers that match titles elsewhere (e.g. demonstrations).
// Unicode case-folded (utf8proc: "ß" = "ss", "Σ" = "σ"), compatibility forms replaced
// ("ﬁ" = "fi", fullwidth "Ａ" = "a"), accents and other marks dropped, punctuation and symbols
// dropped, one space between tokens; CJK characters are tokens of their own. Invalid UTF-8
// separates words.
std::string normalize_title(std::string_view text);
// Similarity in [0,1] of an answer fragment to a title (1 = same normalised tokens).
double title_similarity(std::string_view fragment, std::string_view title, const ParseOptions& options = {});

}  // namespace lrgd::parse
