// Stage 1: demonstration generators (template and LLM).
#include <algorithm>
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

Demo template_demo(const data::Dataset& ds, const GenerationRequest& r) {
  const auto& vh = r.user->valid_history;
  const int n = static_cast<int>(vh.size());
  Demo d;
  if (n < 2) return d;  // no window before the validation target: no demonstration
  Rng rng(r.seed);
  const bool recent_style = rng.uniform(2) == 0;
  if (!r.path_memory.empty() && rng.uniform01() < 0.6) {
    // A variation of the path's best effective demonstration.
    const Demo& base = r.path_memory.front();
    const int j = position_of(vh, base.target);
    if (j >= 1) {
      const bool diverse = base.strategy.find("diverse") != std::string::npos;
      static constexpr int kDelta[] = {-2, -1, 1, 2};
      const int w = static_cast<int>(base.history.size()) + kDelta[rng.uniform(4)];
      d.history = select(ds, vh, j, w, diverse);
      d.target = vh[static_cast<std::size_t>(j)];
      d.strategy = std::string("memory+") + (diverse ? "diverse" : "recent") +
                   " w=" + std::to_string(d.history.size()) + " j=" + std::to_string(j);
      d.explanation = summarise(ds, d.history, recent_style);
      return d;
    }
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

class TemplateGenerator final : public Generator {
 public:
  explicit TemplateGenerator(const data::Dataset& ds) : ds_(ds) {}
  std::vector<GeneratedDemo> generate(std::span<const GenerationRequest> requests) override {
    std::vector<GeneratedDemo> out;
    out.reserve(requests.size());
    for (const auto& r : requests) out.push_back({template_demo(ds_, r), 0});
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

std::string numbered(const data::Dataset& ds, const std::vector<ItemIndex>& items) {
  std::string s;
  for (std::size_t i = 0; i < items.size(); ++i)
    s += std::to_string(i + 1) + ". " + rec::item_text(ds, items[i]) + "\n";
  return s;
}

// The model's statement: first paragraph, whitespace collapsed, at most 300 bytes.
std::string clean_statement(std::string_view text) {
  std::string s(text);
  const auto para = s.find("\n\n");
  if (para != std::string::npos && para > 0) s.resize(para);
  std::string out;
  bool space = false;
  for (char c : s) {
    const bool ws = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (ws) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() > 300) out.resize(300);
  return out;
}

class LlmGenerator final : public Generator {
 public:
  LlmGenerator(const data::Dataset& ds, llm::Backend& backend, std::string text, int max_tokens)
      : ds_(ds), backend_(backend), text_(std::move(text)), max_tokens_(max_tokens) {
    if (text_.empty()) text_ = std::string(prompt::Template::builtin_text("generator"));
    // Lines before the first blank line that start with '#' are comments.
    while (!text_.empty() && text_.front() == '#') {
      const auto nl = text_.find('\n');
      text_ = nl == std::string::npos ? std::string() : text_.substr(nl + 1);
    }
  }
  std::vector<GeneratedDemo> generate(std::span<const GenerationRequest> requests) override {
    std::vector<GeneratedDemo> out;
    std::vector<llm::Prompt> prompts;
    std::vector<std::size_t> asked;
    for (std::size_t k = 0; k < requests.size(); ++k) {
      const auto& r = requests[k];
      GeneratedDemo g{template_demo(ds_, r), 0};
      g.demo.strategy = "llm " + g.demo.strategy;
      if (!g.demo.empty()) {
        std::string mem;
        for (std::size_t m = 0; m < r.path_memory.size() && m < 2; ++m)
          mem += "- " + rec::item_text(ds_, r.path_memory[m].target) + ": " + r.path_memory[m].explanation + "\n";
        if (mem.empty()) mem = "(none yet)\n";
        const auto& vh = r.user->valid_history;
        std::vector<ItemIndex> profile_items(vh.begin(), vh.end());
        prompts.push_back(
            llm::Prompt::chat({{"user", substitute(text_, {{"history", numbered(ds_, vh)},
                                                           {"profile", summarise(ds_, profile_items, false)},
                                                           {"memory", mem},
                                                           {"example_history", numbered(ds_, g.demo.history)},
                                                           {"example_target", rec::item_text(ds_, g.demo.target)}})}}));
        asked.push_back(k);
      }
      out.push_back(std::move(g));
    }
    if (prompts.empty()) return out;
    llm::GenerationParams params;
    params.max_tokens = max_tokens_;
    const auto gens = backend_.generate(prompts, params);
    for (std::size_t a = 0; a < asked.size(); ++a) {
      auto& g = out[asked[a]];
      const auto& gen = gens[a];
      g.n_tokens = static_cast<std::uint64_t>(gen.n_prompt_tokens + gen.n_generated_tokens);
      const auto s = gen.ok() ? clean_statement(gen.text) : std::string();
      if (!s.empty()) g.demo.explanation = s;  // else the template summary stays
    }
    return out;
  }
  std::string_view name() const override { return "llm"; }

 private:
  const data::Dataset& ds_;
  llm::Backend& backend_;
  std::string text_;
  int max_tokens_;
};

}  // namespace

std::unique_ptr<Generator> make_template_generator(const data::Dataset& ds) {
  return std::make_unique<TemplateGenerator>(ds);
}

std::unique_ptr<Generator> make_llm_generator(const data::Dataset& ds, llm::Backend& backend, std::string template_text,
                                              int max_tokens) {
  return std::make_unique<LlmGenerator>(ds, backend, std::move(template_text), max_tokens);
}

}  // namespace lrgd::optim
