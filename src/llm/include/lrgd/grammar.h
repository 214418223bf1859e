// GBNF grammars for constrained answers (llama.cpp's grammar sampler and llama-server).
#pragma once

#include <string>
#include <vector>

namespace lrgd::llm {

// Escapes text as a GBNF string literal body (quotes, backslashes, control characters).
std::string gbnf_escape(const std::string& text);

// A grammar for exactly `n_lines` lines, each one of `labels` followed by "\n".
// GBNF cannot say "distinct"; the embedded engine gets distinctness by re-arming the
// grammar with the remaining labels after every line (see LlamaBackend), and parsing
// drops duplicates for servers. Throws OptionError if labels are empty or n_lines < 1.
std::string candidate_list_grammar(const std::vector<std::string>& labels, int n_lines);

}  // namespace lrgd::llm
