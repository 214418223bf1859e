#include "json_cursor.h"

#include <charconv>
#include <cstring>

#include "lrgd/utf8.h"

namespace lrgd::data::detail {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

TextPosition text_position(std::string_view text, std::size_t offset) {
  if (offset > text.size()) offset = text.size();
  std::uint64_t line = 1;
  std::size_t line_start = 0;
  const char* p = text.data();
  const char* end = text.data() + offset;
  while (true) {
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    if (nl == nullptr) break;
    ++line;
    p = static_cast<const char*>(nl) + 1;
    line_start = static_cast<std::size_t>(p - text.data());
  }
  return {line, offset - line_start + 1};
}

std::uint64_t LineCounter::line_at(std::size_t offset) {
  if (offset > text_.size()) offset = text_.size();
  if (offset < offset_) {
    offset_ = 0;
    line_ = 1;
  }
  const char* p = text_.data() + offset_;
  const char* end = text_.data() + offset;
  while (p < end) {
    const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    if (nl == nullptr) break;
    ++line_;
    p = static_cast<const char*>(nl) + 1;
  }
  offset_ = offset;
  return line_;
}

void JsonCursor::fail(const std::string& message) const { throw JsonSyntaxError{offset(), message}; }

char JsonCursor::peek() {
  while (p_ != end_ && is_ws(*p_)) ++p_;
  return p_ == end_ ? '\0' : *p_;
}

void JsonCursor::expect(char c) {
  const char got = peek();
  if (got != c || p_ == end_) {
    if (p_ == end_) fail(std::string("expected '") + c + "', found the end of the text");
    fail(std::string("expected '") + c + "', found '" + got + "'");
  }
  ++p_;
}

bool JsonCursor::next_member(bool& first, std::string_view& key) {
  char c = peek();
  if (c == '}' && p_ != end_) {
    ++p_;
    return false;
  }
  if (!first) {
    if (c != ',' || p_ == end_) fail("expected ',' or '}' in an object");
    ++p_;
  }
  first = false;
  key = string();
  expect(':');
  return true;
}

bool JsonCursor::next_element(bool& first) {
  char c = peek();
  if (c == ']' && p_ != end_) {
    ++p_;
    return false;
  }
  if (!first) {
    if (c != ',' || p_ == end_) fail("expected ',' or ']' in an array");
    ++p_;
    if (peek() == ']') fail("trailing ',' in an array");
  }
  first = false;
  if (p_ == end_) fail("unexpected end of the text in an array");
  return true;
}

std::string_view JsonCursor::string() {
  if (peek() != '"' || p_ == end_) fail("expected a string");
  ++p_;
  const char* start = p_;
  // Fast path: no escapes.
  while (p_ != end_) {
    const char c = *p_;
    if (c == '"') {
      std::string_view out(start, static_cast<std::size_t>(p_ - start));
      ++p_;
      return out;
    }
    if (c == '\\') break;
    if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
    ++p_;
  }
  scratch_.assign(start, static_cast<std::size_t>(p_ - start));
  while (p_ != end_) {
    const char c = *p_++;
    if (c == '"') return scratch_;
    if (static_cast<unsigned char>(c) < 0x20) {
      --p_;
      fail("control character in a string");
    }
    if (c != '\\') {
      scratch_.push_back(c);
      continue;
    }
    if (p_ == end_) break;
    const char e = *p_++;
    switch (e) {
      case '"':
        scratch_.push_back('"');
        break;
      case '\\':
        scratch_.push_back('\\');
        break;
      case '/':
        scratch_.push_back('/');
        break;
      case 'b':
        scratch_.push_back('\b');
        break;
      case 'f':
        scratch_.push_back('\f');
        break;
      case 'n':
        scratch_.push_back('\n');
        break;
      case 'r':
        scratch_.push_back('\r');
        break;
      case 't':
        scratch_.push_back('\t');
        break;
      case 'u': {
        auto read4 = [this]() -> std::uint32_t {
          if (end_ - p_ < 4) fail("truncated \\u escape");
          std::uint32_t v = 0;
          for (int i = 0; i < 4; ++i) {
            const int h = hex_value(p_[i]);
            if (h < 0) fail("bad hex digit in a \\u escape");
            v = (v << 4) | static_cast<std::uint32_t>(h);
          }
          p_ += 4;
          return v;
        };
        std::uint32_t cp = read4();
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            p_ += 2;
            const std::uint32_t lo = read4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              append_utf8(scratch_, 0xFFFD);
              cp = lo;
            }
          } else {
            cp = 0xFFFD;  // lone high surrogate
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;  // lone low surrogate
        }
        append_utf8(scratch_, cp);
        break;
      }
      default:
        --p_;
        fail(std::string("bad escape '\\") + e + "' in a string");
    }
  }
  fail("unterminated string");
}

std::string_view JsonCursor::number_text() {
  peek();
  const char* start = p_;
  if (p_ != end_ && *p_ == '-') ++p_;
  if (p_ == end_ || *p_ < '0' || *p_ > '9') {
    p_ = start;
    fail("expected a number");
  }
  if (*p_ == '0') {
    ++p_;
  } else {
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }
  if (p_ != end_ && *p_ == '.') {
    ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("expected a digit after '.'");
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }
  if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
    ++p_;
    if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') fail("expected a digit in an exponent");
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }
  return {start, static_cast<std::size_t>(p_ - start)};
}

std::int64_t JsonCursor::integer() {
  const std::size_t at = (peek(), offset());
  const std::string_view text = number_text();
  std::int64_t v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
    throw JsonSyntaxError{at, "expected an integer, found '" + std::string(text) + "'"};
  }
  return v;
}

double JsonCursor::number() {
  const std::string_view text = number_text();
  double v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

std::string_view JsonCursor::scalar_text() {
  const char c = peek();
  if (c == '"') return string();
  if (c == '-' || (c >= '0' && c <= '9')) return number_text();
  fail("expected a string or a number");
}

bool JsonCursor::null() {
  if (peek() == 'n' && end_ - p_ >= 4 && std::memcmp(p_, "null", 4) == 0) {
    p_ += 4;
    return true;
  }
  return false;
}

void JsonCursor::skip_value() { skip_value(0); }

void JsonCursor::skip_string() {
  const char* q = p_ + 1;  // *p_ == '"'
  while (true) {
    const void* hit = std::memchr(q, '"', static_cast<std::size_t>(end_ - q));
    if (hit == nullptr) {
      p_ = end_;
      fail("unterminated string");
    }
    const char* quote = static_cast<const char*>(hit);
    std::size_t backslashes = 0;
    for (const char* b = quote; b > p_ + 1 && b[-1] == '\\'; --b) ++backslashes;
    if (backslashes % 2 == 0) {
      p_ = quote + 1;
      return;
    }
    q = quote + 1;
  }
}

void JsonCursor::skip_value(int depth) {
  if (depth > 512) fail("nesting deeper than 512");
  const char c = peek();
  if (p_ == end_) fail("expected a value, found the end of the text");
  switch (c) {
    case '{': {
      ++p_;
      bool first = true;
      std::string_view key;
      while (next_member(first, key)) skip_value(depth + 1);
      return;
    }
    case '[': {
      ++p_;
      bool first = true;
      while (next_element(first)) skip_value(depth + 1);
      return;
    }
    case '"':
      skip_string();
      return;
    case 't':
      if (end_ - p_ >= 4 && std::memcmp(p_, "true", 4) == 0) {
        p_ += 4;
        return;
      }
      break;
    case 'f':
      if (end_ - p_ >= 5 && std::memcmp(p_, "false", 5) == 0) {
        p_ += 5;
        return;
      }
      break;
    case 'n':
      if (null()) return;
      break;
    default:
      if (c == '-' || (c >= '0' && c <= '9')) {
        number_text();
        return;
      }
  }
  fail(std::string("unexpected character '") + c + "'");
}

}  // namespace lrgd::data::detail
