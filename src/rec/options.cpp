// Names of the recommender options, item text, prompt inputs and hashes.
#include <algorithm>
#include <cctype>
#include <string>

#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/item_model.h"
#include "lrgd/rec.h"

namespace lrgd::rec {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

Method parse_method(std::string_view name) {
  const std::string n = lower(name);
  if (n == "zsl") return Method::Zsl;
  if (n == "icl") return Method::Icl;
  if (n == "random") return Method::Random;
  if (n == "pop") return Method::Pop;
  if (n == "markov") return Method::Markov;
  if (n == "lrgd") return Method::Lrgd;
  if (n == "external") return Method::External;
  throw OptionError("--method",
                    "unknown method '" + std::string(name) + "' (zsl, icl, random, pop, markov, lrgd, external)");
}

std::string_view method_name(Method method) {
  switch (method) {
    case Method::Zsl:
      return "zsl";
    case Method::Icl:
      return "icl";
    case Method::Random:
      return "random";
    case Method::Pop:
      return "pop";
    case Method::Markov:
      return "markov";
    case Method::Lrgd:
      return "lrgd";
    case Method::External:
      return "external";
  }
  return "?";
}

bool needs_llm(Method method) { return method == Method::Zsl || method == Method::Icl || method == Method::Lrgd; }

RankMode parse_rank_mode(std::string_view name) {
  const std::string n = lower(name);
  if (n == "generate") return RankMode::Generate;
  if (n == "score") return RankMode::Score;
  throw OptionError("--mode", "unknown ranking mode '" + std::string(name) + "' (generate, score)");
}

std::string_view prompt_form_name(PromptForm form) { return form == PromptForm::Text ? "text" : "item_tokens"; }

std::string_view rank_mode_name(RankMode mode) { return mode == RankMode::Generate ? "generate" : "score"; }

ScoreTarget parse_score_target(std::string_view name) {
  const std::string n = lower(name);
  if (n == "title") return ScoreTarget::Title;
  if (n == "label") return ScoreTarget::Label;
  throw OptionError("--score-on", "unknown score target '" + std::string(name) + "' (title, label)");
}

std::string_view score_target_name(ScoreTarget target) { return target == ScoreTarget::Title ? "title" : "label"; }

ScoreNorm parse_score_norm(std::string_view name) {
  const std::string n = lower(name);
  if (n == "sum") return ScoreNorm::Sum;
  if (n == "mean") return ScoreNorm::Mean;
  throw OptionError("--score-norm", "unknown score normalisation '" + std::string(name) + "' (sum, mean)");
}

std::string_view score_norm_name(ScoreNorm norm) { return norm == ScoreNorm::Sum ? "sum" : "mean"; }

std::string item_text(const data::Dataset& dataset, ItemIndex item) {
  const auto& it = dataset.items.at(static_cast<std::size_t>(item));
  return it.title.empty() ? "Item " + it.id : it.title;
}

prompt::PromptInputs build_inputs(const data::Dataset& dataset, const Query& query, bool with_demo, int list_length,
                                  const std::string& regularisation, int n_history_dropped, int n_demo_dropped) {
  prompt::PromptInputs in;
  const auto titles = [&](const std::vector<ItemIndex>& items, int skip) {
    std::vector<std::string> out;
    const auto from = std::min(items.size(), static_cast<std::size_t>(std::max(skip, 0)));
    out.reserve(items.size() - from);
    for (std::size_t i = from; i < items.size(); ++i) out.push_back(item_text(dataset, items[i]));
    return out;
  };
  in.history = titles(query.history, n_history_dropped);
  in.candidates = titles(query.candidates, 0);
  if (with_demo && !query.demo_history.empty() && query.demo_target != data::kNoItem) {
    prompt::Demonstration d;
    d.history = titles(query.demo_history, n_demo_dropped);
    d.target = item_text(dataset, query.demo_target);
    d.explanation = query.demo_explanation;
    in.demonstration = std::move(d);
  }
  if (with_demo && !query.perturbation_history.empty() && query.perturbation_target != data::kNoItem) {
    prompt::Demonstration p;
    p.history = titles(query.perturbation_history, 0);
    p.target = item_text(dataset, query.perturbation_target);
    p.explanation = query.perturbation_explanation;
    in.perturbation = std::move(p);
  }
  in.regularisation = regularisation;
  in.list_length = list_length;
  return in;
}

std::vector<std::int32_t> item_prompt_tokens(const Query& query, bool with_demo, int n_history_dropped,
                                             int n_demo_dropped) {
  const auto tail = [](const std::vector<ItemIndex>& items, int skip) {
    const auto from = std::min(items.size(), static_cast<std::size_t>(std::max(skip, 0)));
    return std::span<const ItemIndex>(items).subspan(from);
  };
  std::vector<item_model::Demonstration> demos;
  const auto add = [&](std::span<const ItemIndex> history, ItemIndex next) {
    if (history.empty() || next == data::kNoItem) return;
    demos.push_back({{history.begin(), history.end()}, next});
  };
  if (with_demo) {
    add(tail(query.demo_history, n_demo_dropped), query.demo_target);
    add(tail(query.perturbation_history, 0), query.perturbation_target);
  }
  // The query's own truncation (protocol max_history) already happened; keep every item here.
  item_model::LayoutOptions layout;
  layout.max_history = 0;
  layout.max_demo_history = 0;
  return item_model::prompt_tokens(tail(query.history, n_history_dropped), demos, layout);
}

std::string prompt_hash(const llm::Prompt& prompt) {
  std::string bytes;
  if (prompt.is_chat()) {
    bytes = "chat";
    for (const auto& m : prompt.messages) {
      bytes += '\0';
      bytes += m.role;
      bytes += '\0';
      bytes += m.content;
    }
  } else if (prompt.is_tokens()) {
    bytes = "tokens";
    for (auto t : prompt.tokens) bytes += "," + std::to_string(t);
  } else {
    bytes = "text";
    bytes += '\0';
    bytes += prompt.text;
  }
  return sha256_hex(bytes);
}

bool is_context_overflow(std::string_view error) {
  const std::string e = lower(error);
  if (e.find("context") == std::string::npos) return false;
  for (const char* w : {"overflow", "exceed", "too long", "maximum", "context length", "context size"})
    if (e.find(w) != std::string::npos) return true;
  return false;
}

}  // namespace lrgd::rec
