// Prompt templates: X = [T; D; Q] with optional regularisation R (inside T) and
// perturbation P (next to D), rendered into chat messages plus a map of where each part
// and each item title sits in the text (for attention analysis).
//
// Template file format (prompts/*.txt; the defaults are compiled into the library):
//   lines before the first section are comments;
//   "@@ <section>" starts a section: system, T, D, P, Q (parts, in the order written;
//   system becomes the system message, the others the user message, joined by a blank
//   line), demo (how one demonstration renders), history_item and candidate_item (how
//   one list line renders; defaults "{i}. {title}" and "[{i}] {title}").
// Slots: {history} {candidates} {demonstration} {perturbation} {regularisation} {n}
//   {n_candidates} {n_history}; in demo: {demo_history} {demo_target} {demo_explanation};
//   in *_item: {i} {title}. "{{" and "}}" are literal braces.
// A line whose optional slot ({regularisation}, {demo_explanation}) is empty is dropped;
// the P section is dropped when there is no perturbation.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lrgd/llm.h"

namespace lrgd::prompt {

struct Demonstration {
  std::vector<std::string> history;  // titles, oldest first
  std::string target;                // title of the true next item
  std::string explanation;           // optional preference explanation (generator-written)
  std::string text;                  // non-empty: used verbatim instead of the demo section
};

struct PromptInputs {
  std::vector<std::string> history;     // titles, oldest first (most recent last)
  std::vector<std::string> candidates;  // titles, shown numbered 1..n in this order
  std::optional<Demonstration> demonstration;
  std::optional<Demonstration> perturbation;
  std::string regularisation;  // R; empty: none
  int list_length = 10;        // {n}
};

enum class SpanKind {
  System,
  Instruction,     // T (R included)
  Demonstration,   // D
  Perturbation,    // P
  Query,           // Q
  Regularisation,  // R, inside T
  HistoryItem,     // titles, index = position in PromptInputs::history
  CandidateItem,   // index = candidate position (shown number - 1)
  DemoHistoryItem,
  DemoTarget,
  PerturbationHistoryItem,
  PerturbationTarget,
};
std::string_view span_kind_name(SpanKind kind);  // "system", "T", "D", "P", "Q", "R", "history_item", ...

// Byte range [begin, end) of messages[message].content.
struct Span {
  SpanKind kind = SpanKind::Query;
  int index = -1;  // item position for item kinds; -1 for parts
  std::size_t message = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};

struct RenderedPrompt {
  std::vector<llm::ChatMessage> messages;  // [system,] user
  std::vector<Span> spans;                 // in order of appearance
  llm::Prompt prompt() const { return llm::Prompt::chat(messages); }
  std::vector<Span> find(SpanKind kind) const;
  std::string_view text_of(const Span& span) const;
};

struct RenderOptions {
  bool system_in_user = false;  // for chat templates without a system role: system text leads the user message
};

class Template {
 public:
  // Throws IoError when the file cannot be read, InputError (file, line, slot) for an
  // unknown section or slot, an unescaped '{', or a template without Q.
  static Template load(const std::filesystem::path& path);
  static Template parse(std::string_view text, std::string source);
  // Built-in defaults: "zsl", "icl", "icl_swap". Throws OptionError("--template") otherwise.
  static Template builtin(std::string_view name);
  static std::vector<std::string> builtin_names();
  static std::string_view builtin_text(std::string_view name);  // the shipped file; throws OptionError
  // A built-in name, else a file path.
  static Template resolve(std::string_view name_or_path);

  const std::string& source() const { return source_; }
  bool has_section(std::string_view name) const;
  // Throws InputError naming the template and slot when a required value is missing
  // (empty history or candidates, no demonstration for a D section, list_length < 1).
  RenderedPrompt render(const PromptInputs& inputs, const RenderOptions& options = {}) const;

  struct Line {
    std::string text;
    std::size_t line_no = 0;  // in the source file
  };

 private:
  std::string source_;
  std::vector<std::string> order_;  // sections in file order
  std::map<std::string, std::vector<Line>, std::less<>> sections_;
};

// The textual regularisation R (paper section 3.5: a constraint that limits the output to
// the candidate set), placed in T of every text method alike unless turned off: the
// built-in prompts/regularisation.txt, or a template text, with {n} = the list length.
std::string default_regularisation(int list_length);
std::string regularisation_from(std::string_view template_text, int list_length);

}  // namespace lrgd::prompt
