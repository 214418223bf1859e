// S(D), similarity, and the demonstration's text and JSON forms.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lrgd/enum_names.h"
#include "lrgd/error.h"
#include "lrgd/optim.h"
#include "lrgd/parse.h"

namespace lrgd::optim {

namespace {

constexpr std::array<Named<Quality>, 2> kQualities{{{Quality::InvLog2, "log2"}, {Quality::Inverse, "inverse"}}};
constexpr std::array<Named<CollapseRule>, 3> kCollapseRules{
    {{CollapseRule::Similarity, "similarity"}, {CollapseRule::Stall, "stall"}, {CollapseRule::Both, "both"}}};

}  // namespace

Quality parse_quality(std::string_view name) { return parse_named(kQualities, name, "--quality", "quality"); }

std::string_view quality_name(Quality q) { return name_of(kQualities, q); }

double demonstration_quality(int rank, Quality q) {
  if (rank <= 0) return 0;
  return q == Quality::InvLog2 ? 1.0 / std::log2(static_cast<double>(rank) + 1.0) : 1.0 / static_cast<double>(rank);
}

CollapseRule parse_collapse_rule(std::string_view name) {
  return parse_named(kCollapseRules, name, "--collapse", "collapse rule");
}

std::string_view collapse_rule_name(CollapseRule r) { return name_of(kCollapseRules, r); }

namespace {

std::set<std::string> token_set(std::string_view text) {
  std::set<std::string> out;
  std::istringstream in(parse::normalize_title(text));
  std::string t;
  while (in >> t) out.insert(t);
  return out;
}

}  // namespace

double token_jaccard(std::string_view a, std::string_view b) {
  const auto ta = token_set(a);
  const auto tb = token_set(b);
  if (ta.empty() && tb.empty()) return 1;
  std::size_t inter = 0;
  for (const auto& t : ta) inter += tb.count(t);
  return static_cast<double>(inter) / static_cast<double>(ta.size() + tb.size() - inter);
}

std::string demo_text(const data::Dataset& ds, const Demo& d) {
  std::string s = "History:";
  for (std::size_t i = 0; i < d.history.size(); ++i) s += (i == 0 ? " " : " | ") + rec::item_text(ds, d.history[i]);
  s += "\nNext: " + (d.target == data::kNoItem ? std::string() : rec::item_text(ds, d.target));
  if (!d.explanation.empty()) s += "\nReason: " + d.explanation;
  return s;
}

std::string demo_json(const data::Dataset& ds, const Demo& d) {
  nlohmann::ordered_json j;
  auto h = nlohmann::ordered_json::array();
  for (auto i : d.history) h.push_back(ds.items.at(static_cast<std::size_t>(i)).id);
  j["history"] = std::move(h);
  j["target"] = d.target == data::kNoItem ? std::string() : ds.items.at(static_cast<std::size_t>(d.target)).id;
  j["explanation"] = d.explanation;
  j["strategy"] = d.strategy;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Demo demo_from_json(const data::Dataset& ds, std::string_view text) {
  return demo_from_json(data::index_item_ids(ds), text);
}

Demo demo_from_json(const data::IdIndex& index, std::string_view text) {
  const auto find = [&](const std::string& id) {
    if (id.empty()) return data::kNoItem;
    const auto i = index.find(id);
    if (i < 0) throw InputError("memory", 0, "demo", "unknown item id " + id);
    return static_cast<ItemIndex>(i);
  };
  try {
    const auto j = nlohmann::json::parse(text);
    Demo d;
    for (const auto& id : j.at("history")) d.history.push_back(find(id.get<std::string>()));
    d.target = find(j.at("target").get<std::string>());
    d.explanation = j.value("explanation", std::string());
    d.strategy = j.value("strategy", std::string());
    return d;
  } catch (const nlohmann::json::exception& e) {
    throw InputError("memory", 0, "demo", std::string("malformed demonstration: ") + e.what());
  }
}

std::string dataset_key(const data::Dataset& ds) { return ds.name + ":" + ds.content_hash.substr(0, 12); }

const memory::Entry* best_entry(std::span<const memory::Entry> rows) {
  const memory::Entry* best = nullptr;
  for (const auto& e : rows) {
    if (best == nullptr || e.score > best->score ||
        (e.score == best->score && std::tie(e.round, e.path) < std::tie(best->round, best->path)))
      best = &e;
  }
  return best;
}

std::string options_json(const Options& o) {
  nlohmann::ordered_json j;
  j["method"] = "lrgd";
  j["paths"] = o.paths;
  j["rounds"] = o.max_rounds();
  j["budget"] = o.total_budget();
  j["quality"] = quality_name(o.quality);
  j["collapse"] = collapse_rule_name(o.collapse);
  j["collapse_threshold"] = o.collapse_threshold;
  j["collapse_margin"] = o.collapse_margin;
  j["collapse_window"] = o.collapse_window;
  j["similarity"] = "token_jaccard";
  j["perturbation"] = o.perturbation;
  j["generator"] = o.generator;
  j["seed"] = o.seed;
  j["optimised_on"] = "valid (trial 0 candidates)";
  return j.dump();
}

}  // namespace lrgd::optim
