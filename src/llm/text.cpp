// Text of the backends: special-token spellings neutralised for servers, servers' context
// overflow messages recognised (see lrgd/llm.h).
#include <algorithm>
#include <cctype>
#include <regex>

#include "lrgd/llm.h"

namespace lrgd::llm {

bool is_context_overflow_message(std::string_view server_error) {
  std::string e(server_error);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (e.find("context") == std::string::npos) return false;
  for (const char* w : {"overflow", "exceed", "too long", "maximum", "context length", "context size"})
    if (e.find(w) != std::string::npos) return true;
  return false;
}

std::size_t neutralise_special_spellings(std::string& text) {
  if (text.find_first_of("<[") == std::string::npos) return 0;
  // The spellings of special tokens across model families: <|...|> (ChatML, Llama 3, Phi,
  // Qwen), <...> names of control tokens (Gemma, SentencePiece), [INST]-style brackets
  // (Llama 2, Mistral) and <<SYS>>.
  static const std::regex special(
      R"(<\|[^|<>\s]{1,64}\|>|</?(?:s|bos|eos|pad|unk|mask|sep|cls|start_of_turn|end_of_turn|start_of_image|end_of_image|think|tool_call|tool_response)>|\[/?[A-Z][A-Z_]{2,31}\]|<</?SYS>>)");
  static const std::string joiner = "\u2060";
  std::string out;
  std::size_t n = 0, last = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), special); it != std::sregex_iterator(); ++it) {
    const auto pos = static_cast<std::size_t>(it->position());
    out.append(text, last, pos + 1 - last);  // up to and including the opening character
    out += joiner;
    last = pos + 1;
    ++n;
  }
  if (n == 0) return 0;
  out.append(text, last, std::string::npos);
  text = std::move(out);
  return n;
}

}  // namespace lrgd::llm
