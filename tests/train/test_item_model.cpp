#include <gtest/gtest.h>

#include "lrgd/item_model.h"
#include "lrgd/train.h"

namespace im = lrgd::item_model;

TEST(ItemModel, TokenMapping) {
  EXPECT_EQ(im::item_token(0), im::kFirstItemToken);
  EXPECT_EQ(im::token_item(im::item_token(123)), 123);
  EXPECT_EQ(im::token_item(im::kNextToken), lrgd::data::kNoItem);
  EXPECT_EQ(im::vocab_size(10), 14);
  EXPECT_TRUE(im::fits(14, 10));
}

TEST(ItemModel, PromptLayout) {
  std::vector<lrgd::data::ItemIndex> h{5, 6, 7};
  auto p = im::prompt_tokens(h);
  EXPECT_EQ(im::describe(p), "<query> i5 i6 i7 <next>");
  std::vector<im::Demonstration> demos{im::last_step_demonstration(h)};
  EXPECT_EQ(im::describe(im::prompt_tokens(h, demos)), "<demo> i5 i6 <next> i7 <query> i5 i6 i7 <next>");
  im::LayoutOptions lo;
  lo.max_history = 2;
  EXPECT_EQ(im::describe(im::example_tokens(h, 9, {}, lo)), "<query> i6 i7 <next> i9");
  auto c = im::candidate_continuations(std::vector<lrgd::data::ItemIndex>{3, 1});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], std::vector<std::int32_t>{im::item_token(3)});
  EXPECT_EQ(im::last_step_demonstration(std::vector<lrgd::data::ItemIndex>{1}).next, lrgd::data::kNoItem);
}

TEST(ItemModel, PackContexts) {
  std::vector<std::vector<std::int32_t>> ex{{2, 4, 3, 5}, {2, 6, 3, 7}, {2, 3, 8}};
  auto c = lrgd::train::pack_contexts(ex, 8);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0], (std::vector<std::int32_t>{2, 4, 3, 5, 0, 0, 0, 0}));
  EXPECT_EQ(c[1], (std::vector<std::int32_t>{2, 6, 3, 7, 2, 3, 8, 0}));
}
