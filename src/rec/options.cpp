// Names of the recommender options, item text, prompt inputs and hashes.
#include <algorithm>
#include <cctype>
#include <string>

#include "lrgd/enum_names.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/item_model.h"
#include "lrgd/rec.h"

namespace lrgd::rec {

namespace {

constexpr std::array<Named<Method>, 7> kMethods{{{Method::Zsl, "zsl"},
                                                 {Method::Icl, "icl"},
                                                 {Method::Random, "random"},
                                                 {Method::Pop, "pop"},
                                                 {Method::Markov, "markov"},
                                                 {Method::Lrgd, "lrgd"},
                                                 {Method::External, "external"}}};
constexpr std::array<Named<RankMode>, 2> kRankModes{{{RankMode::Generate, "generate"}, {RankMode::Score, "score"}}};
constexpr std::array<Named<PromptForm>, 2> kPromptForms{
    {{PromptForm::Text, "text"}, {PromptForm::ItemTokens, "item_tokens"}}};
constexpr std::array<Named<ScoreTarget>, 2> kScoreTargets{
    {{ScoreTarget::Title, "title"}, {ScoreTarget::Label, "label"}}};
constexpr std::array<Named<ScoreNorm>, 2> kScoreNorms{{{ScoreNorm::Sum, "sum"}, {ScoreNorm::Mean, "mean"}}};

}  // namespace

Method parse_method(std::string_view name) { return parse_named(kMethods, name, "--method", "method", Case::Fold); }

std::string_view method_name(Method method) { return name_of(kMethods, method); }

bool needs_llm(Method method) { return method == Method::Zsl || method == Method::Icl || method == Method::Lrgd; }

RankMode parse_rank_mode(std::string_view name) {
  return parse_named(kRankModes, name, "--mode", "ranking mode", Case::Fold);
}

std::string_view prompt_form_name(PromptForm form) { return name_of(kPromptForms, form); }

std::string_view rank_mode_name(RankMode mode) { return name_of(kRankModes, mode); }

ScoreTarget parse_score_target(std::string_view name) {
  return parse_named(kScoreTargets, name, "--score-on", "score target", Case::Fold);
}

std::string_view score_target_name(ScoreTarget target) { return name_of(kScoreTargets, target); }

ScoreNorm parse_score_norm(std::string_view name) {
  return parse_named(kScoreNorms, name, "--score-norm", "score normalisation", Case::Fold);
}

std::string_view score_norm_name(ScoreNorm norm) { return name_of(kScoreNorms, norm); }

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

}  // namespace lrgd::rec
