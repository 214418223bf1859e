#include "lrgd/item_model.h"

#include <stdexcept>

namespace lrgd::item_model {

namespace {

void append_items(std::vector<std::int32_t>& out, std::span<const ItemIndex> items, std::size_t max_items) {
  const std::size_t start = (max_items != 0 && items.size() > max_items) ? items.size() - max_items : 0;
  for (std::size_t i = start; i < items.size(); ++i) {
    if (items[i] < 0) throw std::invalid_argument("item_model: negative item index");
    out.push_back(item_token(items[i]));
  }
}

}  // namespace

std::vector<std::int32_t> prompt_tokens(std::span<const ItemIndex> history, std::span<const Demonstration> demos,
                                        const LayoutOptions& options) {
  std::vector<std::int32_t> out;
  out.reserve(history.size() + 2 + demos.size() * (options.max_demo_history + 3));
  for (const auto& d : demos) {
    if (d.next < 0) throw std::invalid_argument("item_model: demonstration without a next item");
    out.push_back(kDemoToken);
    append_items(out, d.history, options.max_demo_history);
    out.push_back(kNextToken);
    out.push_back(item_token(d.next));
  }
  out.push_back(kQueryToken);
  append_items(out, history, options.max_history);
  out.push_back(kNextToken);
  return out;
}

std::vector<std::int32_t> example_tokens(std::span<const ItemIndex> history, ItemIndex target,
                                         std::span<const Demonstration> demos, const LayoutOptions& options) {
  if (target < 0) throw std::invalid_argument("item_model: negative target");
  auto out = prompt_tokens(history, demos, options);
  out.push_back(item_token(target));
  return out;
}

std::vector<std::vector<std::int32_t>> candidate_continuations(std::span<const ItemIndex> candidates) {
  std::vector<std::vector<std::int32_t>> out;
  out.reserve(candidates.size());
  for (ItemIndex c : candidates) {
    if (c < 0) throw std::invalid_argument("item_model: negative candidate");
    out.push_back({item_token(c)});
  }
  return out;
}

Demonstration last_step_demonstration(std::span<const ItemIndex> history, std::size_t max_demo_history) {
  Demonstration d;
  if (history.size() < 2) return d;
  auto window = history.first(history.size() - 1);
  const std::size_t start =
      (max_demo_history != 0 && window.size() > max_demo_history) ? window.size() - max_demo_history : 0;
  d.history.assign(window.begin() + static_cast<std::ptrdiff_t>(start), window.end());
  d.next = history.back();
  return d;
}

std::string describe(std::span<const std::int32_t> tokens) {
  std::string s;
  for (auto t : tokens) {
    if (!s.empty()) s += ' ';
    switch (t) {
      case kPadToken:
        s += "<pad>";
        break;
      case kDemoToken:
        s += "<demo>";
        break;
      case kQueryToken:
        s += "<query>";
        break;
      case kNextToken:
        s += "<next>";
        break;
      default:
        s += "i" + std::to_string(token_item(t));
    }
  }
  return s;
}

}  // namespace lrgd::item_model
