#include "lrgd/prompt.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "lrgd/enum_names.h"
#include "lrgd/error.h"
#include "lrgd/file.h"

namespace lrgd::prompt {

// Defined in the generated builtin_templates.cpp: name → shipped file text.
const std::map<std::string, std::string_view, std::less<>>& builtin_template_texts();

namespace {

const std::set<std::string, std::less<>> kSections = {"system",        "T", "D", "P", "Q", "demo", "history_item",
                                                      "candidate_item"};
const std::set<std::string, std::less<>> kPartSlots = {"history",        "candidates", "demonstration", "perturbation",
                                                       "regularisation", "n",          "n_candidates",  "n_history"};
const std::set<std::string, std::less<>> kDemoSlots = {"demo_history", "demo_target", "demo_explanation", "n"};
const std::set<std::string, std::less<>> kItemSlots = {"i", "title"};

const std::set<std::string, std::less<>>& allowed_slots(std::string_view section) {
  if (section == "demo") return kDemoSlots;
  if (section == "history_item" || section == "candidate_item") return kItemSlots;
  return kPartSlots;
}

std::string join(const std::set<std::string, std::less<>>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Text with the spans inside it (offsets relative to the text).
struct Fragment {
  std::string text;
  std::vector<Span> spans;

  void append(const Fragment& f) {
    for (auto s : f.spans) {
      s.begin += text.size();
      s.end += text.size();
      spans.push_back(s);
    }
    text += f.text;
  }
  void append(std::string_view s) { text += s; }
};

// Splits a template line into literals and slots; calls on_slot(name) / on_text(text).
template <class OnText, class OnSlot>
void scan_line(const std::string& source, const Template::Line& line, OnText on_text, OnSlot on_slot) {
  const std::string& s = line.text;
  std::string literal;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((s[i] == '{' || s[i] == '}') && i + 1 < s.size() && s[i + 1] == s[i]) {
      literal += s[i++];
    } else if (s[i] == '{') {
      const auto close = s.find('}', i);
      const std::string name = close == std::string::npos ? "" : s.substr(i + 1, close - i - 1);
      const bool ident = !name.empty() && std::all_of(name.begin(), name.end(),
                                                      [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
      if (!ident) throw InputError(source, line.line_no, "{", "unescaped '{' (write {{ for a literal brace)");
      on_text(literal);
      literal.clear();
      on_slot(name);
      i = close;
    } else {
      literal += s[i];
    }
  }
  on_text(literal);
}

std::string clean_title(const std::string& title) {
  if (title.find_first_not_of(" \t\r\n") == std::string::npos) return "(no title)";
  std::string out = title;
  std::replace(out.begin(), out.end(), '\n', ' ');
  std::replace(out.begin(), out.end(), '\r', ' ');
  return out;
}

SpanKind part_kind(std::string_view section) {
  if (section == "system") return SpanKind::System;
  if (section == "T") return SpanKind::Instruction;
  if (section == "D") return SpanKind::Demonstration;
  if (section == "P") return SpanKind::Perturbation;
  return SpanKind::Query;
}

const std::vector<Template::Line> kDefaultHistoryItem = {{"{i}. {title}", 0}};
const std::vector<Template::Line> kDefaultCandidateItem = {{"[{i}] {title}", 0}};
const std::vector<Template::Line> kDefaultDemo = {{"The user interacted with these items, oldest first:", 0},
                                                  {"{demo_history}", 0},
                                                  {"The next item the user interacted with was: {demo_target}", 0},
                                                  {"Reason: {demo_explanation}", 0}};

class Renderer {
 public:
  Renderer(const std::string& source, const std::map<std::string, std::vector<Template::Line>, std::less<>>& sections,
           const PromptInputs& in)
      : source_(source), sections_(sections), in_(in) {}

  Fragment section(std::string_view name, const Demonstration* demo = nullptr, bool perturbation = false) {
    Fragment out;
    bool first = true;
    for (const auto& line : lines(name)) {
      auto f = expand(line, demo, perturbation);
      if (!f) continue;
      if (!first) out.append("\n");
      out.append(*f);
      first = false;
    }
    return out;
  }

 private:
  const std::vector<Template::Line>& lines(std::string_view name) const {
    const auto it = sections_.find(name);
    if (it != sections_.end()) return it->second;
    if (name == "history_item") return kDefaultHistoryItem;
    if (name == "candidate_item") return kDefaultCandidateItem;
    return kDefaultDemo;
  }

  [[noreturn]] void missing(const Template::Line& line, const std::string& slot, const std::string& why) const {
    throw InputError(source_, line.line_no, slot, "no value for slot {" + slot + "}: " + why);
  }

  Fragment items(const std::vector<std::string>& titles, std::string_view item_section, SpanKind kind) {
    Fragment out;
    const auto& item_lines = lines(item_section);
    for (std::size_t k = 0; k < titles.size(); ++k) {
      if (k > 0) out.append("\n");
      for (std::size_t l = 0; l < item_lines.size(); ++l) {
        if (l > 0) out.append("\n");
        scan_line(
            source_, item_lines[l], [&](const std::string& t) { out.append(t); },
            [&](const std::string& slot) {
              if (slot == "i") {
                out.append(std::to_string(k + 1));
              } else {
                const std::string title = clean_title(titles[k]);
                out.spans.push_back({kind, static_cast<int>(k), 0, out.text.size(), out.text.size() + title.size()});
                out.append(title);
              }
            });
      }
    }
    return out;
  }

  Fragment demonstration(const Template::Line& line, const std::string& slot, const Demonstration& d,
                         bool perturbation) {
    if (!d.text.empty()) return Fragment{d.text, {}};
    if (d.history.empty()) missing(line, slot, "the demonstration has no history");
    if (d.target.empty()) missing(line, slot, "the demonstration has no target item");
    return section("demo", &d, perturbation);
  }

  // nullopt: the line is dropped (an optional slot without value).
  std::optional<Fragment> expand(const Template::Line& line, const Demonstration* demo, bool perturbation) {
    Fragment out;
    bool drop = false;
    scan_line(
        source_, line, [&](const std::string& t) { out.append(t); },
        [&](const std::string& slot) {
          Fragment value;
          if (slot == "history") {
            if (in_.history.empty()) missing(line, slot, "the user has no history");
            value = items(in_.history, "history_item", SpanKind::HistoryItem);
          } else if (slot == "candidates") {
            if (in_.candidates.empty()) missing(line, slot, "no candidates");
            value = items(in_.candidates, "candidate_item", SpanKind::CandidateItem);
          } else if (slot == "n") {
            if (in_.list_length < 1) missing(line, slot, "list_length must be >= 1");
            value.text = std::to_string(in_.list_length);
          } else if (slot == "n_candidates") {
            value.text = std::to_string(in_.candidates.size());
          } else if (slot == "n_history") {
            value.text = std::to_string(in_.history.size());
          } else if (slot == "regularisation") {
            drop = drop || in_.regularisation.empty();
            value.text = in_.regularisation;
            value.spans.push_back({SpanKind::Regularisation, -1, 0, 0, value.text.size()});
          } else if (slot == "demonstration") {
            if (!in_.demonstration) missing(line, slot, "the template has a demonstration but none was given");
            value = demonstration(line, slot, *in_.demonstration, false);
          } else if (slot == "perturbation") {
            drop = drop || !in_.perturbation;
            if (in_.perturbation) value = demonstration(line, slot, *in_.perturbation, true);
          } else if (slot == "demo_history") {
            value = items(demo->history, "history_item",
                          perturbation ? SpanKind::PerturbationHistoryItem : SpanKind::DemoHistoryItem);
          } else if (slot == "demo_target") {
            const std::string title = clean_title(demo->target);
            value.text = title;
            value.spans.push_back(
                {perturbation ? SpanKind::PerturbationTarget : SpanKind::DemoTarget, -1, 0, 0, title.size()});
          } else if (slot == "demo_explanation") {
            drop = drop || demo->explanation.empty();
            value.text = demo->explanation;
          }
          out.append(value);
        });
    if (drop) return std::nullopt;
    return out;
  }

  const std::string& source_;
  const std::map<std::string, std::vector<Template::Line>, std::less<>>& sections_;
  const PromptInputs& in_;
};

}  // namespace

std::string_view span_kind_name(SpanKind kind) {
  static constexpr std::array<Named<SpanKind>, 12> kSpanKinds{
      {{SpanKind::System, "system"},
       {SpanKind::Instruction, "T"},
       {SpanKind::Demonstration, "D"},
       {SpanKind::Perturbation, "P"},
       {SpanKind::Query, "Q"},
       {SpanKind::Regularisation, "R"},
       {SpanKind::HistoryItem, "history_item"},
       {SpanKind::CandidateItem, "candidate_item"},
       {SpanKind::DemoHistoryItem, "demo_history_item"},
       {SpanKind::DemoTarget, "demo_target"},
       {SpanKind::PerturbationHistoryItem, "perturbation_history_item"},
       {SpanKind::PerturbationTarget, "perturbation_target"}}};
  return name_of(kSpanKinds, kind);
}

std::vector<Span> RenderedPrompt::find(SpanKind kind) const {
  std::vector<Span> out;
  std::copy_if(spans.begin(), spans.end(), std::back_inserter(out), [&](const Span& s) { return s.kind == kind; });
  return out;
}

std::string_view RenderedPrompt::text_of(const Span& span) const {
  return std::string_view(messages.at(span.message).content).substr(span.begin, span.end - span.begin);
}

Template Template::parse(std::string_view text, std::string source) {
  Template t;
  t.source_ = std::move(source);
  std::string current;
  std::size_t line_no = 0;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.starts_with("@@")) {
      const auto b = line.find_first_not_of(" \t", 2);
      const auto e = line.find_last_not_of(" \t");
      current = b == std::string::npos ? "" : line.substr(b, e - b + 1);
      if (!kSections.contains(current)) {
        throw InputError(t.source_, line_no, current,
                         "unknown section '@@ " + current + "' (known: " + join(kSections) + ")");
      }
      if (t.sections_.contains(current)) throw InputError(t.source_, line_no, current, "section given twice");
      t.order_.push_back(current);
      t.sections_[current];
      continue;
    }
    if (current.empty()) continue;  // preamble comments
    const Line l{line, line_no};
    const auto& allowed = allowed_slots(current);
    scan_line(
        t.source_, l, [](const std::string&) {},
        [&](const std::string& slot) {
          if (!allowed.contains(slot)) {
            throw InputError(t.source_, line_no, slot,
                             "unknown slot {" + slot + "} in section " + current + " (allowed: " + join(allowed) + ")");
          }
        });
    t.sections_[current].push_back(l);
  }
  for (auto& [name, lines] : t.sections_) {
    while (!lines.empty() && lines.back().text.find_first_not_of(" \t") == std::string::npos) lines.pop_back();
    while (!lines.empty() && lines.front().text.find_first_not_of(" \t") == std::string::npos)
      lines.erase(lines.begin());
  }
  if (!t.sections_.contains("Q")) throw InputError(t.source_, 0, "Q", "the template has no '@@ Q' section");
  return t;
}

Template Template::load(const std::filesystem::path& path) { return parse(read_file(path), path.string()); }

Template Template::builtin(std::string_view name) {
  return parse(builtin_text(name), "<builtin>/prompts/" + std::string(name) + ".txt");
}

std::string_view Template::builtin_text(std::string_view name) {
  const auto& texts = builtin_template_texts();
  const auto it = texts.find(name);
  if (it == texts.end()) {
    std::string known;
    for (const auto& n : builtin_names()) known += (known.empty() ? "" : ", ") + n;
    throw OptionError("--template", "unknown built-in template '" + std::string(name) + "' (built-in: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> Template::builtin_names() {
  std::vector<std::string> out;
  for (const auto& [name, text] : builtin_template_texts()) out.push_back(name);
  return out;
}

Template Template::resolve(std::string_view name_or_path) {
  if (builtin_template_texts().contains(name_or_path)) return builtin(name_or_path);
  return load(std::filesystem::path(name_or_path));
}

bool Template::has_section(std::string_view name) const { return sections_.contains(name); }

RenderedPrompt Template::render(const PromptInputs& inputs, const RenderOptions& options) const {
  Renderer r(source_, sections_, inputs);
  Fragment system, user;
  for (const auto& name : order_) {
    if (name != "system" && name != "T" && name != "D" && name != "P" && name != "Q") continue;
    if (name == "P" && !inputs.perturbation) continue;
    const Fragment part = r.section(name);
    Fragment& target = name == "system" && !options.system_in_user ? system : user;
    if (!target.text.empty()) target.append("\n\n");
    const std::size_t at = target.text.size();
    target.spans.push_back({part_kind(name), -1, 0, at, at + part.text.size()});
    target.append(part);
  }
  RenderedPrompt out;
  const bool has_system = !system.text.empty();
  if (has_system) out.messages.push_back({"system", system.text});
  out.messages.push_back({"user", user.text});
  for (auto s : system.spans) out.spans.push_back(s);
  for (auto s : user.spans) {
    s.message = has_system ? 1 : 0;
    out.spans.push_back(s);
  }
  return out;
}

std::string regularisation_from(std::string_view template_text, int list_length) {
  std::string t(template_text);
  const std::string key = "{n}", n = std::to_string(list_length);
  for (auto p = t.find(key); p != std::string::npos; p = t.find(key, p + n.size())) t.replace(p, key.size(), n);
  const auto b = t.find_first_not_of(" \t\r\n");
  const auto e = t.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
}

std::string default_regularisation(int list_length) {
  return regularisation_from(Template::builtin_text("regularisation"), list_length);
}

}  // namespace lrgd::prompt
