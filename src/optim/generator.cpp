// Stage 1: demonstration generators (template and LLM).
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

#include "lrgd/error.h"
#include "lrgd/optim.h"
#include "lrgd/parse.h"
#include "lrgd/prompt.h"
#include "lrgd/rng.h"

namespace lrgd::optim {

namespace {

const std::set<std::string> kStop = {"with", "from",  "that", "this", "your", "edition", "version",
                                     "game", "games", "pack", "item", "for",  "and",     "the"};

// The summary key of an item: category, else brand.
std::string item_key(const data::Dataset& ds, ItemIndex i) {
  const auto& it = ds.items.at(static_cast<std::size_t>(i));
  if (!it.category.empty()) return it.category;
  return it.brand;
}

// A short statement of preferences from a window: categories or brands, else title keywords.
std::string summarise(const data::Dataset& ds, const std::vector<ItemIndex>& items, bool recent_style) {
  if (items.empty()) return "";
  std::map<std::string, int> counts;
  bool keyed = false;
  for (auto i : items) {
    const auto k = item_key(ds, i);
    if (!k.empty()) {
      ++counts[k];
      keyed = true;
    }
  }
  if (!keyed) {
    for (auto i : items) {
      std::istringstream in(parse::normalize_title(rec::item_text(ds, i)));
      std::string t;
      std::set<std::string> seen;
      while (in >> t)
        if (t.size() >= 4 && !kStop.contains(t) && seen.insert(t).second) ++counts[t];
    }
  }
  std::vector<std::pair<std::string, int>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (v.size() > 3) v.resize(3);
  std::string s = recent_style ? "Recently into " + rec::item_text(ds, items.back()) + "; " : std::string();
  s += keyed ? "prefers " : "keeps returning to ";
  for (std::size_t k = 0; k < v.size(); ++k) s += (k == 0 ? "" : ", ") + v[k].first;
  if (v.empty()) s += "varied items";
  return s + ".";
}

// Position of the demonstration target in valid_history (last occurrence), -1 if absent.
int position_of(const std::vector<ItemIndex>& vh, ItemIndex target) {
  for (int k = static_cast<int>(vh.size()) - 1; k >= 0; --k)
    if (vh[static_cast<std::size_t>(k)] == target) return k;
  return -1;
}

// The items before position j, w of them, recent or diverse.
std::vector<ItemIndex> select(const data::Dataset& ds, const std::vector<ItemIndex>& vh, int j, int w, bool diverse) {
  w = std::clamp(w, 1, j);
  std::vector<int> picked;
  if (!diverse) {
    for (int k = j - w; k < j; ++k) picked.push_back(k);
  } else {
    std::set<std::string> keys;
    for (int k = j - 1; k >= 0 && static_cast<int>(picked.size()) < w; --k) {
      auto key = item_key(ds, vh[static_cast<std::size_t>(k)]);
      if (key.empty()) {
        std::istringstream in(parse::normalize_title(rec::item_text(ds, vh[static_cast<std::size_t>(k)])));
        in >> key;
      }
      if (keys.insert(key).second) picked.push_back(k);
    }
    for (int k = j - 1; k >= 0 && static_cast<int>(picked.size()) < w; --k)
      if (std::find(picked.begin(), picked.end(), k) == picked.end()) picked.push_back(k);
    std::sort(picked.begin(), picked.end());
  }
  std::vector<ItemIndex> out;
  for (int k : picked) out.push_back(vh[static_cast<std::size_t>(k)]);
  return out;
}

constexpr int kWindows[] = {3, 5, 8, 12};

// A variation (window length +-1-2, same style) of `base` within valid_history; empty when
// base's target is not in it.
Demo variation_of(const data::Dataset& ds, const std::vector<ItemIndex>& vh, const Demo& base, Rng& rng,
                  bool recent_style, const char* origin) {
  Demo d;
  const int j = position_of(vh, base.target);
  if (j < 1) return d;
  const bool diverse = base.strategy.find("diverse") != std::string::npos;
  static constexpr int kDelta[] = {-2, -1, 1, 2};
  const int w = static_cast<int>(base.history.size()) + kDelta[rng.uniform(4)];
  d.history = select(ds, vh, j, w, diverse);
  d.target = vh[static_cast<std::size_t>(j)];
  d.strategy = std::string(origin) + "+" + (diverse ? "diverse" : "recent") + " w=" + std::to_string(d.history.size()) +
               " j=" + std::to_string(j);
  d.explanation = summarise(ds, d.history, recent_style);
  return d;
}

Demo draw_template_demo(const data::Dataset& ds, const GenerationRequest& r, Rng& rng) {
  const auto& vh = r.user->valid_history;
  const int n = static_cast<int>(vh.size());
  Demo d;
  if (n < 2) return d;  // no window before the validation target: no demonstration
  const bool recent_style = rng.uniform(2) == 0;
  // After a collapse, half the time the path explores around P (another path's region).
  if (r.perturbation != nullptr && !r.perturbation->empty() && rng.uniform01() < 0.5) {
    d = variation_of(ds, vh, *r.perturbation, rng, recent_style, "perturb");
    if (!d.empty()) return d;
  }
  if (!r.path_memory.empty() && rng.uniform01() < 0.6) {
    // A variation of the path's best effective demonstration.
    d = variation_of(ds, vh, r.path_memory.front(), rng, recent_style, "memory");
    if (!d.empty()) return d;
  }
  const bool diverse = rng.uniform(2) == 1;
  int j = 0;
  if (!diverse) {
    j = n - 1 - static_cast<int>(rng.uniform(static_cast<std::uint64_t>(std::min(3, n - 1))));
  } else {
    const int lo = std::max(1, n / 2);
    j = lo + static_cast<int>(rng.uniform(static_cast<std::uint64_t>(n - lo)));
  }
  const int w = kWindows[rng.uniform(4)];
  d.history = select(ds, vh, j, w, diverse);
  d.target = vh[static_cast<std::size_t>(j)];
  d.strategy = std::string(diverse ? "diverse" : "recent") + " w=" + std::to_string(d.history.size()) +
               " j=" + std::to_string(j);
  d.explanation = summarise(ds, d.history, recent_style);
  return d;
}

bool same_items(const Demo& a, const Demo& b) { return a.history == b.history && a.target == b.target; }

Demo template_demo(const data::Dataset& ds, const GenerationRequest& r) {
  Rng rng(r.seed);
  Demo d = draw_template_demo(ds, r, rng);
  // The previous demonstration did not reach S = 1: do not try the very same items again
  // (a few more draws from the same stream; a tiny history may leave no alternative).
  const bool avoid = r.previous != nullptr && !r.previous->empty() && r.previous_score < 1.0;
  for (int attempt = 0; avoid && attempt < 4 && !d.empty() && same_items(d, *r.previous); ++attempt)
    d = draw_template_demo(ds, r, rng);
  return d;
}

class TemplateGenerator final : public Generator {
 public:
  explicit TemplateGenerator(const data::Dataset& ds) : ds_(ds) {}
  std::vector<GeneratedDemo> generate(std::span<const GenerationRequest> requests) override {
    std::vector<GeneratedDemo> out;
    out.reserve(requests.size());
    for (const auto& r : requests) {
      GeneratedDemo g;
      g.demo = template_demo(ds_, r);
      out.push_back(std::move(g));
    }
    return out;
  }
  std::string_view name() const override { return "template"; }

 private:
  const data::Dataset& ds_;
};

std::string substitute(std::string text, const std::map<std::string, std::string>& slots) {
  for (const auto& [k, v] : slots) {
    const std::string key = "{" + k + "}";
    for (std::size_t p = text.find(key); p != std::string::npos; p = text.find(key, p + v.size()))
      text.replace(p, key.size(), v);
  }
  return text;
}

// The reason as stored: whitespace collapsed, at most 300 bytes (cut at a UTF-8 boundary).
std::string clean_reason(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    const bool ws = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (ws) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() > 300) {
    std::size_t cut = 300;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.front() == '\r')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return v;
}

// "3" -> 3; anything else (empty, signs, letters, overflow) -> -1.
int parse_number(std::string_view v) {
  v = trim(v);
  if (v.empty() || v.size() > 6) return -1;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

// Where `item` sits in `items` at or before `before` (1-based, latest occurrence), 0 if not.
int number_of(const std::vector<ItemIndex>& items, ItemIndex item, int before) {
  for (int k = std::min(before, static_cast<int>(items.size())); k >= 1; --k)
    if (items[static_cast<std::size_t>(k - 1)] == item) return k;
  return 0;
}

// A demonstration as the generator is shown it: numbers into the user's history.
std::string numbered_demo(const data::Dataset& ds, const std::vector<ItemIndex>& items, const Demo& d) {
  const int next = number_of(items, d.target, static_cast<int>(items.size()));
  std::string h;
  for (auto i : d.history) {
    const int n = number_of(items, i, next > 0 ? next - 1 : static_cast<int>(items.size()));
    h += (h.empty() ? "" : ", ") + (n > 0 ? std::to_string(n) : "\"" + rec::item_text(ds, i) + "\"");
  }
  return "History: " + h + " / Next: " + (next > 0 ? std::to_string(next) : rec::item_text(ds, d.target)) +
         " / Reason: " + d.explanation;
}

class LlmGenerator final : public Generator {
 public:
  LlmGenerator(const data::Dataset& ds, llm::Backend& backend, LlmGeneratorOptions o)
      : ds_(ds), backend_(backend), opts_(std::move(o)) {
    if (opts_.max_attempts < 1) throw OptionError("LlmGeneratorOptions::max_attempts", "must be at least 1");
    if (opts_.max_items < 1) throw OptionError("LlmGeneratorOptions::max_items", "must be at least 1");
    text_ =
        opts_.template_text.empty() ? std::string(prompt::Template::builtin_text("generator")) : opts_.template_text;
    // Lines at the top that start with '#' are comments.
    while (!text_.empty() && text_.front() == '#') {
      const auto nl = text_.find('\n');
      text_ = nl == std::string::npos ? std::string() : text_.substr(nl + 1);
    }
  }

  std::vector<GeneratedDemo> generate(std::span<const GenerationRequest> requests) override {
    std::vector<GeneratedDemo> out(requests.size());
    std::vector<std::string> base(requests.size());
    std::vector<std::size_t> todo;
    for (std::size_t k = 0; k < requests.size(); ++k) {
      const auto& vh = requests[k].user->valid_history;
      if (vh.size() < 2) {  // nothing before a next item: no demonstration, as for the template
        out[k].demo.strategy = "llm none: fewer than two history items";
        continue;
      }
      base[k] = prompt_for(requests[k]);
      todo.push_back(k);
    }
    std::vector<std::string> rejected(requests.size());
    for (int attempt = 1; attempt <= opts_.max_attempts && !todo.empty(); ++attempt) {
      std::vector<llm::Prompt> prompts;
      std::vector<llm::GenerationParams> params;
      for (auto k : todo) {
        std::string text = base[k];
        if (attempt > 1)
          text +=
              "\n\nYour previous answer was rejected: " + rejected[k] + ". Answer again, exactly in the form above.";
        prompts.push_back(llm::Prompt::chat({{"user", text}}));
      }
      // Backends seed each prompt's sampler from the call's seed and the prompt's bytes, and
      // every prompt names its user, path and round: paths sample independently, and the
      // answers do not depend on which requests share a call (resume gives the same ones).
      llm::GenerationParams gp;
      gp.max_tokens = opts_.max_tokens;
      gp.temperature = opts_.temperature;
      gp.seed = Rng::derive(opts_.seed, "lrgd/generator/attempt", static_cast<std::uint64_t>(attempt)).next_u64();
      gp.constraint.kind = llm::OutputConstraint::Kind::Grammar;
      // The grammar depends on the user's history length: group by it.
      std::map<std::size_t, std::vector<std::size_t>> by_len;
      for (std::size_t t = 0; t < todo.size(); ++t) by_len[shown(requests[todo[t]]).second].push_back(t);
      std::vector<llm::Generation> results(todo.size());
      for (const auto& [len, members] : by_len) {
        const auto& r0 = requests[todo[members.front()]];
        const auto [first, last] = shown(r0);
        gp.constraint.grammar = grammar(first, last, min_items_for(r0));
        std::vector<llm::Prompt> group;
        for (auto t : members) group.push_back(prompts[t]);
        auto g = backend_.generate(group, gp);
        for (std::size_t m = 0; m < members.size(); ++m) results[members[m]] = std::move(g[m]);
      }
      std::vector<std::size_t> again;
      for (std::size_t t = 0; t < todo.size(); ++t) {
        const auto k = todo[t];
        auto& g = out[k];
        const auto& gen = results[t];
        g.n_attempts++;
        g.n_tokens += static_cast<std::uint64_t>(gen.n_prompt_tokens + gen.n_generated_tokens);
        Demo d;
        std::string why;
        if (!gen.ok()) {
          why = "the model call failed (" + gen.error + ")";
        } else if (parse_generated_demo(gen.text, requests[k].user->valid_history, d, why)) {
          const int min_items = min_items_for(requests[k]);
          if (static_cast<int>(d.history.size()) > opts_.max_items) {
            why = "more than " + std::to_string(opts_.max_items) + " history items";
          } else if (static_cast<int>(d.history.size()) < min_items) {
            why = "fewer than " + std::to_string(min_items) + " history items";
          } else {
            d.strategy = "llm attempt=" + std::to_string(attempt);
            g.demo = std::move(d);
            continue;
          }
        }
        g.n_invalid++;
        g.error = why;
        rejected[k] = why;
        again.push_back(k);
      }
      todo = std::move(again);
    }
    for (auto k : todo)
      out[k].demo.strategy = "llm failed after " + std::to_string(opts_.max_attempts) + " attempts: " + out[k].error;
    return out;
  }
  std::string_view name() const override { return "llm"; }

 private:
  // The numbers the generator is shown: the most recent kShown items of valid_history.
  static constexpr std::size_t kShown = 30;
  static std::pair<std::size_t, std::size_t> shown(const GenerationRequest& r) {
    const auto n = r.user->valid_history.size();
    return {n > kShown ? n - kShown + 1 : 1, n};
  }

  // Fewest history items asked for: min_items, less when the shown history is shorter
  // (one item must remain for Next).
  int min_items_for(const GenerationRequest& r) const {
    const auto [first, last] = shown(r);
    return std::clamp(static_cast<int>(last - first), 1, std::max(1, std::min(opts_.min_items, opts_.max_items)));
  }

  // The three lines, with the order in the grammar itself: history numbers strictly
  // increasing, min_items to max_items of them, the next number above the last; a reason
  // that starts with a letter (a small model otherwise copies list numbers into it).
  // State h<k>-<c>: the last number written is k, the c-th; only states from which a valid
  // end is still reachable are generated.
  std::string grammar(std::size_t first, std::size_t last, int min_items) const {
    const auto m = static_cast<std::size_t>(min_items);
    const auto most = static_cast<std::size_t>(std::max(min_items, opts_.max_items));
    const auto q = [](std::size_t v) { return "\"" + std::to_string(v) + "\""; };
    const auto feasible = [&](std::size_t k, std::size_t c) {
      return last > k && last - k >= (c >= m ? 0 : m - c) + 1;
    };
    const auto state = [](std::size_t k, std::size_t c) { return "h" + std::to_string(k) + "-" + std::to_string(c); };
    std::string g = "root ::= \"History: \" (";
    bool any = false;
    for (std::size_t j = first; j <= last; ++j)
      if (feasible(j, 1)) {
        g += std::string(any ? " | " : " ") + q(j) + " " + state(j, 1);
        any = true;
      }
    g += " )\n";
    for (std::size_t k = first; k <= last; ++k)
      for (std::size_t c = 1; c <= most; ++c) {
        if (!feasible(k, c)) continue;
        std::string alts;
        const std::size_t nc = c + 1;
        for (std::size_t j = k + 1; j <= last && nc <= most; ++j)
          if (feasible(j, nc)) alts += std::string(alts.empty() ? "\", \" (" : " | ") + q(j) + " " + state(j, nc);
        if (!alts.empty()) alts += " )";
        if (c >= m) {
          std::string next;
          for (std::size_t j = k + 1; j <= last; ++j) next += (next.empty() ? "" : " | ") + q(j);
          alts += std::string(alts.empty() ? "" : " | ") + "\"\\nNext: \" (" + next + ") tail";
        }
        g += state(k, c) + " ::= " + alts + "\n";
      }
    g += "tail ::= \"\\nReason: \" [A-Za-z] [^\\n\\r]* \"\\n\"\n";
    return g;
  }

  std::string prompt_for(const GenerationRequest& r) const {
    const auto& vh = r.user->valid_history;
    const auto [first, last] = shown(r);
    std::string history;
    for (std::size_t i = first; i <= last; ++i)
      history += std::to_string(i) + ". " + rec::item_text(ds_, vh[i - 1]) + "\n";
    std::string memory;
    for (std::size_t m = 0; m < r.path_memory.size() && m < 3; ++m) {
      const double sc = m < r.path_memory_scores.size() ? r.path_memory_scores[m] : 0.0;
      memory += "- " + numbered_demo(ds_, vh, r.path_memory[m]) + " (S = " + fmt::format("{:.2f}", sc) + ")\n";
    }
    if (memory.empty()) memory = "(none yet)\n";
    std::string previous = "(this is the first round)";
    if (r.previous != nullptr && !r.previous->empty())
      previous = numbered_demo(ds_, vh, *r.previous) + " (S = " + fmt::format("{:.2f}", r.previous_score) + ")";
    std::string perturbation;
    if (r.perturbation != nullptr && !r.perturbation->empty())
      perturbation = "Your recent demonstrations have become too similar. For contrast, another search tried:\n" +
                     numbered_demo(ds_, vh, *r.perturbation) +
                     "\nWrite a demonstration that uses a different part of the history.\n";
    std::vector<ItemIndex> all(vh.begin(), vh.end());
    return "Search path " + std::to_string(r.path + 1) + ", round " + std::to_string(r.round + 1) + ".\n\n" +
           substitute(text_, {{"history", history},
                              {"profile", summarise(ds_, all, false)},
                              {"memory", memory},
                              {"previous", previous},
                              {"perturbation", perturbation},
                              {"max_items", std::to_string(opts_.max_items)}});
  }

  const data::Dataset& ds_;
  llm::Backend& backend_;
  LlmGeneratorOptions opts_;
  std::string text_;
};

}  // namespace

std::unique_ptr<Generator> make_template_generator(const data::Dataset& ds) {
  return std::make_unique<TemplateGenerator>(ds);
}

std::unique_ptr<Generator> make_llm_generator(const data::Dataset& ds, llm::Backend& backend,
                                              LlmGeneratorOptions options) {
  return std::make_unique<LlmGenerator>(ds, backend, std::move(options));
}

bool parse_generated_demo(std::string_view answer, const std::vector<ItemIndex>& items, Demo& out, std::string& why) {
  std::string_view hist, next, reason;
  bool have_hist = false, have_next = false, have_reason = false;
  std::size_t pos = 0;
  while (pos <= answer.size()) {
    const auto nl = answer.find('\n', pos);
    const std::string_view line = trim(answer.substr(pos, nl == std::string_view::npos ? answer.npos : nl - pos));
    pos = nl == std::string_view::npos ? answer.size() + 1 : nl + 1;
    auto field = [&](std::string_view name, std::string_view& value, bool& have) {
      if (line.size() < name.size() || line.substr(0, name.size()) != name || have) return false;
      value = trim(line.substr(name.size()));
      have = true;
      return true;
    };
    if (field("History:", hist, have_hist) || field("Next:", next, have_next) || field("Reason:", reason, have_reason))
      continue;
  }
  if (!have_hist || !have_next || !have_reason) {
    why = std::string("missing line ") + (!have_hist ? "\"History:\"" : !have_next ? "\"Next:\"" : "\"Reason:\"");
    return false;
  }
  const int n = static_cast<int>(items.size());
  std::vector<int> numbers;
  for (std::size_t p = 0; p <= hist.size();) {
    const auto comma = hist.find(',', p);
    const auto piece = hist.substr(p, comma == std::string_view::npos ? hist.npos : comma - p);
    p = comma == std::string_view::npos ? hist.size() + 1 : comma + 1;
    const int v = parse_number(piece);
    if (v < 1 || v > n) {
      why = "history item \"" + std::string(trim(piece)) + "\" is not a number from 1 to " + std::to_string(n);
      return false;
    }
    numbers.push_back(v);
  }
  for (std::size_t i = 1; i < numbers.size(); ++i)
    if (numbers[i] <= numbers[i - 1]) {
      why = "history items must be distinct and oldest first (" + std::to_string(numbers[i - 1]) + " then " +
            std::to_string(numbers[i]) + ")";
      return false;
    }
  const int target = parse_number(next);
  if (target < 1 || target > n) {
    why = "next item \"" + std::string(next) + "\" is not a number from 1 to " + std::to_string(n);
    return false;
  }
  if (target <= numbers.back()) {
    why = "the next item (" + std::to_string(target) + ") must come after every history item (last " +
          std::to_string(numbers.back()) + ")";
    return false;
  }
  std::string r = clean_reason(reason);
  if (r.empty()) {
    why = "the reason is empty";
    return false;
  }
  if (std::none_of(r.begin(), r.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; })) {
    why = "the reason \"" + r + "\" has no words";
    return false;
  }
  out = Demo{};
  for (int v : numbers) out.history.push_back(items[static_cast<std::size_t>(v - 1)]);
  out.target = items[static_cast<std::size_t>(target - 1)];
  out.explanation = std::move(r);
  return true;
}

}  // namespace lrgd::optim
