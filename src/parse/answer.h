// Internal structures shared by the list/prose parser and the JSON reader.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lrgd::parse::detail {

// How a list line (or JSON element) starts.
enum class Lead {
  None,       // bullet or bare text
  Ordinal,    // "Rank 3:", "Top 3", "第3名": a position in the answer, never a candidate
  Numbered,   // "3." "3)" "(3)": an ordinal or a candidate number, decided per list
  Candidate,  // "[3]" "#3", JSON numbers and id fields: a candidate number
};

struct Line {
  Lead lead = Lead::None;
  int lead_number = 0;
  bool bullet = false;
  int indent = 0;
  std::string rest;  // text after the markers, markdown removed
  std::size_t line_no = 0;
};

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
// Reads 1-3 digits at `i` (not part of a longer number) into `value`; returns the digits
// read, 0 when there is no such number.
std::size_t read_number(std::string_view s, std::size_t i, int& value);
std::string trim(std::string_view s);

// An explicit candidate reference inside text: "[12]", "#12", "Candidate 12", "编号12".
struct Ref {
  int number = 0;
  std::size_t begin = 0, end = 0;
};
std::vector<Ref> find_refs(std::string_view text);

// Reads a JSON answer (plain, fenced or cut off). Returns true and appends one Line per
// element when a JSON array or object with at least one element was found.
bool read_json_answer(std::string_view text, std::vector<Line>& lines, std::vector<std::string>& notes);
// Splits "12. Title" / "[12] Title" / "- Title" into markers and rest.
Line split_markers(std::string_view text);

}  // namespace lrgd::parse::detail
