// The real Amazon 2018 Games data in ../shared/data (read in place, never copied).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <unordered_map>

#include "data_test_util.h"
#include "lrgd/data.h"
#include "lrgd/hash.h"
#include "lrgd/protocol.h"

namespace lrgd::data {
namespace {

using test::shared_data;

class Games : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(shared_data("amazon18-games/Games.inter.json"))) return;
    lcrec_ = new Dataset(load_dataset(shared_data("amazon18-games")));
    llmrank_ = new Dataset(load_dataset(shared_data("amazon18-games/llmrank")));
  }
  static void TearDownTestSuite() {
    delete lcrec_;
    delete llmrank_;
    lcrec_ = llmrank_ = nullptr;
  }
  void SetUp() override {
    if (lcrec_ == nullptr) GTEST_SKIP() << "no Games data at " << shared_data("amazon18-games");
  }
  static Dataset* lcrec_;
  static Dataset* llmrank_;
};

Dataset* Games::lcrec_ = nullptr;
Dataset* Games::llmrank_ = nullptr;

TEST_F(Games, LcRecCountsAndHash) {
  const Dataset& ds = *lcrec_;
  EXPECT_EQ(ds.format, "lcrec");
  EXPECT_EQ(ds.name, "Games");
  EXPECT_EQ(ds.n_users(), 50546u);
  EXPECT_EQ(ds.n_items(), 16859u);
  EXPECT_EQ(ds.n_interactions(), 452989u);
  EXPECT_TRUE(ds.issues.empty()) << ds.issues.size() << " issue(s), first: " << ds.issues[0].kind;
  EXPECT_EQ(ds.content_hash, "a6fe737291c1db975b0b1882acb4df9c87059c3d73b665f9bf7869c4971a916e");
  const auto s = compute_stats(ds);
  EXPECT_EQ(s.n_items_with_title, 16859u);
  EXPECT_EQ(s.seq_len_min, 5u);
  EXPECT_EQ(s.seq_len_max, 771u);
  EXPECT_DOUBLE_EQ(s.seq_len_median, 6.0);
  EXPECT_NEAR(s.sparsity, 0.999468, 1e-6);
  // Items in id order; entities decoded; ASINs and reviewer ids attached.
  EXPECT_EQ(ds.items[5].id, "5");
  EXPECT_EQ(ds.items[5].title, "Pok\xC3\xA9mon Moon - Nintendo 3DS");
  EXPECT_EQ(ds.items[0].alt_id, "B00L59D9HG");
  EXPECT_EQ(ds.user_alt_ids[0], "A31160I7G2EZVN");
  EXPECT_EQ(ds.user_ids[0], "0");
  EXPECT_EQ(ds.sequences[1], (std::vector<ItemIndex>{6, 7, 8, 9, 10}));
  for (const auto& item : ds.items) {
    ASSERT_EQ(item.title.find("&amp;"), std::string::npos) << item.id;
    ASSERT_EQ(item.title.find("  "), std::string::npos) << item.id;
  }
}

TEST_F(Games, LlmRankCounts) {
  const Dataset& ds = *llmrank_;
  EXPECT_EQ(ds.format, "recbole");
  EXPECT_EQ(ds.n_users(), 50546u);
  EXPECT_EQ(ds.n_items(), 16859u);
  EXPECT_TRUE(ds.issues.empty()) << ds.issues.size() << " issue(s), first: " << ds.issues[0].kind;
  // Histories were cut to 49 items by the publisher, so long users are shorter here.
  EXPECT_LT(ds.n_interactions(), 452989u);
  EXPECT_EQ(compute_stats(ds).seq_len_min, 5u);
  EXPECT_EQ(ds.content_hash, "8cc4715172aa7b01423f50d3f64edfff27f24c9c93bfb31062501e4066faea9f");
}

// Compares the two published versions user by user. Items are matched by title (the only
// key both share; 354 titles name two or more items, compared as titles), users by the
// multiset of their items' titles (only users whose LLMRank sequence is complete, i.e.
// shorter than 50, and whose multiset is unique in both).
TEST_F(Games, PublishedVersionsAgreeOnTargets) {
  const Dataset& a = *lcrec_;
  const Dataset& b = *llmrank_;
  std::unordered_map<std::string, std::int32_t> title_class;
  auto class_of = [&](const std::string& t) {
    return title_class.emplace(t, static_cast<std::int32_t>(title_class.size())).first->second;
  };
  std::vector<std::int32_t> ca(a.n_items()), cb(b.n_items());
  for (std::size_t i = 0; i < a.n_items(); ++i) ca[i] = class_of(a.items[i].title);
  const std::size_t n_classes = title_class.size();
  for (std::size_t i = 0; i < b.n_items(); ++i) cb[i] = class_of(b.items[i].title);
  EXPECT_EQ(title_class.size(), n_classes) << "every LLMRank title is an LC-Rec title";

  auto classes = [](const std::vector<std::int32_t>& c, const std::vector<ItemIndex>& seq) {
    std::vector<std::int32_t> out;
    out.reserve(seq.size());
    for (const ItemIndex i : seq) out.push_back(c[static_cast<std::size_t>(i)]);
    return out;
  };
  auto key_of = [](std::vector<std::int32_t> v) {
    std::sort(v.begin(), v.end());
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(std::int32_t));
  };
  std::unordered_map<std::string, std::int64_t> users_a;  // key -> user, -1 if ambiguous
  for (std::size_t u = 0; u < a.n_users(); ++u) {
    auto [it, fresh] = users_a.emplace(key_of(classes(ca, a.sequences[u])), static_cast<std::int64_t>(u));
    if (!fresh) it->second = -1;
  }
  std::size_t n_complete = 0, n_aligned = 0, n_same_history = 0, n_valid_agree = 0, n_test_agree = 0, n_both_agree = 0,
              n_swapped = 0, n_same_sequence = 0;
  for (std::size_t u = 0; u < b.n_users(); ++u) {
    const auto sb = classes(cb, b.sequences[u]);
    if (sb.size() >= 50) continue;  // possibly cut by the publisher
    ++n_complete;
    const auto it = users_a.find(key_of(sb));
    if (it == users_a.end() || it->second < 0) continue;
    ++n_aligned;
    const auto sa = classes(ca, a.sequences[static_cast<std::size_t>(it->second)]);
    ASSERT_EQ(sa.size(), sb.size());
    n_same_sequence += sa == sb ? 1 : 0;
    const std::size_t n = sa.size();
    if (!std::equal(sa.begin(), sa.end() - 2, sb.begin())) continue;
    ++n_same_history;
    const bool v = sa[n - 2] == sb[n - 2];
    const bool t = sa[n - 1] == sb[n - 1];
    n_valid_agree += v ? 1 : 0;
    n_test_agree += t ? 1 : 0;
    n_both_agree += v && t ? 1 : 0;
    n_swapped += (!v || !t) && sa[n - 2] == sb[n - 1] && sa[n - 1] == sb[n - 2] ? 1 : 0;
  }
  const double agree = static_cast<double>(n_both_agree) / static_cast<double>(n_same_history);
  std::printf(
      "[ agreement ] LLMRank users with complete sequences: %zu; aligned to one LC-Rec user: %zu; identical "
      "training histories: %zu\n"
      "[ agreement ] validation target agrees: %zu, test target agrees: %zu, both: %zu (%.2f%%); the other %zu "
      "are the two targets swapped (the versions order some items differently; Amazon review times are "
      "day-granular, so ties are common)\n"
      "[ agreement ] whole sequences identical: %zu of %zu aligned users (%.2f%%)\n",
      n_complete, n_aligned, n_same_history, n_valid_agree, n_test_agree, n_both_agree, 100.0 * agree, n_swapped,
      n_same_sequence, n_aligned, 100.0 * static_cast<double>(n_same_sequence) / static_cast<double>(n_aligned));
  EXPECT_GT(n_aligned, 50000u);
  EXPECT_GT(n_same_history, 16000u);
  EXPECT_GT(agree, 0.90);
  // Every disagreement is a swap of the two targets: the versions hold the same items and
  // differ only in how they order ties.
  EXPECT_EQ(n_both_agree + n_swapped, n_same_history);
}

TEST_F(Games, PreparedSplitIsGoldenAndValid) {
  protocol::ProtocolOptions o;  // 1000 users, seed 42, 50 candidates, history 20
  const auto t0 = std::chrono::steady_clock::now();
  const auto split = protocol::prepare_split(*lcrec_, o);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ timing ] prepare_split(Games, 1000 users): %.1f ms\n", ms);
  std::ostringstream os;
  protocol::write_prepared_split(split, os);
  // The scheme's name changed from "uniform" to "uniform-unseen" (issue 14); nothing else did.
  EXPECT_EQ(sha256_hex(test::replace_first(os.str(), "\"negatives\":\"uniform-unseen\"", "\"negatives\":\"uniform\"")),
            "36db68cbaad220a44e69b6e3b659527d48f653bb987f590d78950f07703be95b");
  ASSERT_EQ(split.users.size(), 1000u);
  EXPECT_EQ(split.n_eligible, 50546u);
  for (const auto& u : split.users) {
    const auto& seq = lcrec_->sequences[static_cast<std::size_t>(u.user)];
    ASSERT_EQ(u.test_target, seq.back());
    ASSERT_EQ(u.valid_candidates.size(), 50u);
    ASSERT_EQ(u.test_candidates.size(), 50u);
    ASSERT_LE(u.test_history.size(), 20u);
    for (const auto* c : {&u.valid_candidates, &u.test_candidates}) {
      const ItemIndex target = c == &u.valid_candidates ? u.valid_target : u.test_target;
      for (const ItemIndex i : *c) {
        ASSERT_TRUE(i == target || std::find(seq.begin(), seq.end(), i) == seq.end());
      }
      ASSERT_EQ(std::count(c->begin(), c->end(), target), 1);
    }
  }
}

TEST_F(Games, FixedCandidateFileFromLlmRank) {
  const auto file = shared_data("amazon18-games/llmrank/Games-6k.random");
  protocol::ProtocolOptions o;
  o.candidate_file = file;
  const auto split = protocol::prepare_split(*llmrank_, o);
  EXPECT_EQ(split.n_eligible, 6000u);
  ASSERT_EQ(split.users.size(), 1000u);
  const auto fixed = protocol::load_candidate_file(file, *llmrank_);
  EXPECT_TRUE(fixed.issues.empty());
  for (const auto& u : split.users) {
    const auto& list = fixed.by_user[static_cast<std::size_t>(u.user)];
    ASSERT_EQ(u.test_candidates.size(), 50u);
    for (const ItemIndex i : u.test_candidates) {
      ASSERT_TRUE(i == u.test_target || std::find(list.begin(), list.begin() + 60, i) != list.begin() + 60);
    }
  }
}

TEST_F(Games, InstrumentsWithoutTitles) {
  const Dataset ds = load_dataset(shared_data("amazon18-instruments"));
  EXPECT_EQ(ds.n_users(), 24772u);
  EXPECT_EQ(ds.n_items(), 9922u);
  EXPECT_EQ(ds.n_interactions(), 206153u);
  const LoadIssue* missing = test::find_issue(ds.issues, "missing_title");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->count, 9922u);
}

}  // namespace
}  // namespace lrgd::data
