// List markers ("1." "[3]" "#3" "- " "Rank 3:") and explicit candidate references.
#include <cctype>
#include <string>

#include "answer.h"

namespace lrgd::parse::detail {
namespace {

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

}  // namespace

std::size_t read_number(std::string_view s, std::size_t i, int& value) {
  std::size_t j = i;
  while (j < s.size() && is_digit(s[j]) && j - i < 4) ++j;
  if (j == i || j - i > 3) return 0;
  value = std::stoi(std::string(s.substr(i, j - i)));
  return j - i;
}

namespace {

bool starts_with_ci(std::string_view s, std::size_t i, std::string_view word) {
  if (s.size() - i < word.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != static_cast<unsigned char>(word[k])) return false;
  }
  return true;
}

std::string strip_markdown(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '*' || s[i] == '`') continue;
    if (s[i] == '_' && i + 1 < s.size() && s[i + 1] == '_') {
      ++i;
      continue;
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

std::vector<Ref> find_refs(std::string_view s) {
  static const char* const kWords[] = {"candidate", "kandidat", "candidato", "candidat", "item", "number",
                                       "nummer",    "número",   "numero",    "no.",      "nr.",  "id",
                                       "候选项",    "候选",     "编号",      "选项"};
  std::vector<Ref> refs;
  for (std::size_t i = 0; i < s.size(); ++i) {
    int n = 0;
    const bool boundary = i == 0 || !is_alnum(s[i - 1]);
    if (s[i] == '[') {
      std::size_t j = i + 1 + (i + 1 < s.size() && s[i + 1] == '#' ? 1 : 0);
      const auto len = read_number(s, j, n);
      if (len > 0 && j + len < s.size() && s[j + len] == ']') {
        refs.push_back({n, i, j + len + 1});
        i = j + len;
      }
    } else if (s[i] == '#' && boundary) {
      const auto len = read_number(s, i + 1, n);
      if (len > 0) {
        refs.push_back({n, i, i + 1 + len});
        i += len;
      }
    } else if (boundary) {
      for (const char* w : kWords) {
        if (!starts_with_ci(s, i, w)) continue;
        std::size_t j = i + std::string_view(w).size();
        if (j < s.size() && is_alnum(s[j]) && static_cast<unsigned char>(w[0]) < 0x80) break;  // "items", "idea"
        while (j < s.size() && (s[j] == ' ' || s[j] == '#' || s[j] == ':')) ++j;
        if (starts_with_ci(s, j, "no.") || starts_with_ci(s, j, "nr.")) j += 3;
        while (j < s.size() && s[j] == ' ') ++j;
        const auto len = read_number(s, j, n);
        if (len > 0 && !(j + len + 1 < s.size() && s[j + len] == '.' && is_digit(s[j + len + 1]))) {
          refs.push_back({n, i, j + len});
          i = j + len - 1;
        }
        break;
      }
    }
  }
  return refs;
}

Line split_markers(std::string_view text) {
  Line line;
  std::size_t i = 0;
  for (; i < text.size() && (text[i] == ' ' || text[i] == '\t'); ++i) line.indent += text[i] == '\t' ? 4 : 1;
  while (i < text.size() && (text[i] == '>' || text[i] == ' ')) ++i;  // blockquote
  if (i < text.size() && text[i] == '#') {                            // markdown heading, not "#12"
    std::size_t j = i;
    while (j < text.size() && text[j] == '#') ++j;
    if (j < text.size() && text[j] == ' ') i = j + 1;
  }
  static const char* const kBullets[] = {"- ", "* ", "+ ", "• ", "· ", "◦ ", "▪ ", "‣ ", "– ", "— "};
  for (const char* b : kBullets) {
    if (text.substr(i).starts_with(b)) {
      line.bullet = true;
      i += std::string_view(b).size();
      break;
    }
  }
  const std::string s = trim(strip_markdown(text.substr(i)));
  std::size_t p = 0;
  int n = 0;
  std::size_t len = 0;
  static const char* const kRankWords[] = {"rank", "top", "platz", "puesto", "position", "posición", "第"};
  if (s.starts_with("[") || s.starts_with("#")) {
    const std::size_t j = s.starts_with("[#") ? 2 : 1;
    len = read_number(s, j, n);
    if (len > 0 && (s[0] == '#' || (j + len < s.size() && s[j + len] == ']'))) {
      line.lead = Lead::Candidate;
      p = j + len + (s[0] == '[' ? 1 : 0);
    }
  } else if (s.starts_with("(") && (len = read_number(s, 1, n)) > 0 && 1 + len < s.size() && s[1 + len] == ')') {
    line.lead = Lead::Numbered;
    p = len + 2;
  } else if ((len = read_number(s, 0, n)) > 0 && len < s.size()) {
    const char c = s[len];
    const bool decimal = c == '.' && len + 1 < s.size() && is_digit(s[len + 1]);  // "8.5/10"
    if ((c == '.' || c == ')' || c == ':') && !decimal) {
      line.lead = Lead::Numbered;
      p = len + 1;
    } else if (s.substr(len).starts_with("、")) {
      line.lead = Lead::Numbered;
      p = len + 3;
    }
  } else {
    for (const char* w : kRankWords) {
      if (!starts_with_ci(s, 0, w)) continue;
      std::size_t j = std::string_view(w).size();
      while (j < s.size() && s[j] == ' ') ++j;
      if ((len = read_number(s, j, n)) == 0) break;
      line.lead = Lead::Ordinal;
      p = j + len;
      for (const char* suffix : {":", ".", ")", "名", "位"}) {
        if (s.substr(p).starts_with(suffix)) p += std::string_view(suffix).size();
      }
      break;
    }
  }
  if (line.lead != Lead::None) line.lead_number = n;
  line.rest = trim(std::string_view(s).substr(p));
  return line;
}

}  // namespace lrgd::parse::detail
