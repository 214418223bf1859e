#include "lrgd/grammar.h"

#include <fmt/core.h>

#include "lrgd/error.h"

namespace lrgd::llm {

std::string gbnf_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\x{:02X}", static_cast<unsigned>(c));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

std::string candidate_list_grammar(const std::vector<std::string>& labels, int n_lines) {
  if (labels.empty()) throw OptionError("constraint", "candidate list has no labels");
  if (n_lines < 1) throw OptionError("constraint", "list length must be at least 1");
  std::string g = "root ::=";
  for (int i = 0; i < n_lines; ++i) g += " line";
  g += "\nline ::= label \"\\n\"\nlabel ::= ";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) g += " | ";
    g += "\"" + gbnf_escape(labels[i]) + "\"";
  }
  g += "\n";
  return g;
}

}  // namespace lrgd::llm
