// Item-token models (`lrgd model train`): one token per item plus a few special tokens,
// no text tokenizer. This header is the contract between training and the recommender:
// how item indices map to token ids and how a user's history (and optional
// demonstrations) is laid out as a prompt. No libllama types here.
//
// Layout of one prompt (docs/train.md):
//   [DEMO d_1 .. d_k NEXT y_d]*  QUERY h_1 .. h_m NEXT
// and a training example appends the true next item's token. A recommender scores each
// candidate c by the model's next-token log-probability of item_token(c) after the prompt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lrgd/dataset.h"

namespace lrgd::item_model {

using data::ItemIndex;

// Special tokens; items follow from kFirstItemToken on.
inline constexpr std::int32_t kPadToken = 0;    // fills the end of a training context
inline constexpr std::int32_t kDemoToken = 1;   // starts a demonstration
inline constexpr std::int32_t kQueryToken = 2;  // starts the query history
inline constexpr std::int32_t kNextToken = 3;   // "the next item is": the position that predicts it
inline constexpr std::int32_t kFirstItemToken = 4;

// Written to the GGUF as lrgd.item_model.layout; a model with another value uses another layout.
inline constexpr std::uint32_t kLayoutVersion = 1;

inline std::int32_t item_token(ItemIndex item) { return item + kFirstItemToken; }
// The item of a token, or data::kNoItem for a special token.
inline ItemIndex token_item(std::int32_t token) {
  return token >= kFirstItemToken ? token - kFirstItemToken : data::kNoItem;
}
inline std::int32_t vocab_size(std::size_t n_items) { return static_cast<std::int32_t>(n_items) + kFirstItemToken; }
// True when a model's vocabulary fits a dataset of n_items (checks the size only).
inline bool fits(std::int32_t n_vocab, std::size_t n_items) { return n_vocab == vocab_size(n_items); }

// An earlier window of the same user and the item that followed it.
struct Demonstration {
  std::vector<ItemIndex> history;  // oldest first
  ItemIndex next = data::kNoItem;
};

struct LayoutOptions {
  std::size_t max_history = 20;       // most recent query items kept (0: all)
  std::size_t max_demo_history = 20;  // most recent items kept of each demonstration window (0: all)
};

// [DEMO d.. NEXT y]* QUERY h.. NEXT. Throws std::invalid_argument for a negative item.
std::vector<std::int32_t> prompt_tokens(std::span<const ItemIndex> history, std::span<const Demonstration> demos = {},
                                        const LayoutOptions& options = {});

// prompt_tokens(...) followed by item_token(target): one training example.
std::vector<std::int32_t> example_tokens(std::span<const ItemIndex> history, ItemIndex target,
                                         std::span<const Demonstration> demos = {}, const LayoutOptions& options = {});

// One single-token continuation per candidate, for llm::ScoreRequest::token_continuations.
std::vector<std::vector<std::int32_t>> candidate_continuations(std::span<const ItemIndex> candidates);

// The default demonstration for a query history: its earlier window (all but the last
// item) with the last item as `next`. Empty history (size < 2): no demonstration
// (returns a Demonstration with next == kNoItem).
Demonstration last_step_demonstration(std::span<const ItemIndex> history, std::size_t max_demo_history = 20);

// Human-readable form of a token sequence ("<query> i12 i7 <next>"), for logs and tests.
std::string describe(std::span<const std::int32_t> tokens);

}  // namespace lrgd::item_model
