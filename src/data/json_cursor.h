// A small pull parser over one JSON text in memory: no DOM, no allocation unless a string
// has escapes. Strict RFC 8259 syntax; errors throw JsonSyntaxError with the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lrgd::data::detail {

struct JsonSyntaxError {
  std::size_t offset;  // byte offset in the text given to the cursor
  std::string message;
};

// 1-based line and column of a byte offset.
struct TextPosition {
  std::uint64_t line;
  std::uint64_t column;
};
TextPosition text_position(std::string_view text, std::size_t offset);

// Line numbers of increasing offsets in one text, in amortised O(text size) overall.
class LineCounter {
 public:
  explicit LineCounter(std::string_view text) : text_(text) {}
  std::uint64_t line_at(std::size_t offset);

 private:
  std::string_view text_;
  std::size_t offset_ = 0;
  std::uint64_t line_ = 1;
};

class JsonCursor {
 public:
  explicit JsonCursor(std::string_view text) : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  std::size_t offset() const { return static_cast<std::size_t>(p_ - begin_); }
  // Next non-whitespace character without consuming it; '\0' at the end of the text.
  char peek();
  bool at_end() { return peek() == '\0' && p_ == end_; }
  void expect(char c);

  // Objects and arrays: call begin_*, then next_* until it returns false.
  void begin_object() { expect('{'); }
  // Reads the next key (decoded; valid until the next string is read) and the ':'.
  bool next_member(bool& first, std::string_view& key);
  void begin_array() { expect('['); }
  bool next_element(bool& first);

  // A string value, decoded (view into the text, or into a scratch buffer valid until the
  // next string is read).
  std::string_view string();
  // An integer value (no fraction or exponent) that fits int64.
  std::int64_t integer();
  // A number value, as double (correctly rounded).
  double number();
  // A string value (decoded) or the raw text of a number value.
  std::string_view scalar_text();
  // true and consumed if the next value is null.
  bool null();
  void skip_value();

  [[noreturn]] void fail(const std::string& message) const;

 private:
  std::string_view number_text();
  void skip_value(int depth);
  // Skips a string without decoding it (escapes are not checked: values that are skipped are
  // read leniently).
  void skip_string();

  const char* begin_;
  const char* p_;
  const char* end_;
  std::string scratch_;
};

}  // namespace lrgd::data::detail
