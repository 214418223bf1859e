// The recommender pipeline with a scripted backend: prompts, parsing of constrained
// answers, the context overflow policy, score mode, baselines.
#include <gtest/gtest.h>

#include <set>

#include "eval_test_util.h"
#include "lrgd/error.h"
#include "lrgd/parse.h"
#include "lrgd/rec.h"

namespace {

using namespace lrgd;

rec::Query make_query(const data::Dataset& ds, int user) {
  rec::Query q;
  q.user = user;
  q.trial = 0;
  const auto& s = ds.sequences[static_cast<std::size_t>(user)];
  q.history.assign(s.begin(), s.end() - 1);
  q.target = s.back();
  for (int i = 0; i < 50; ++i) q.candidates.push_back((i * 11 + 1) % 80);
  q.candidates[7] = q.target;
  q.demo_history.assign(s.begin(), s.end() - 2);
  q.demo_target = s[s.size() - 2];
  return q;
}

TEST(Rec, MethodNames) {
  EXPECT_EQ(rec::parse_method("ICL"), rec::Method::Icl);
  EXPECT_EQ(rec::method_name(rec::parse_method("markov")), "markov");
  EXPECT_THROW(rec::parse_method("nope"), OptionError);
  EXPECT_EQ(rec::parse_method("lrgd"), rec::Method::Lrgd);  // issue 6: lrgd_optim supplies its ranker
  EXPECT_THROW(rec::parse_rank_mode("beam"), OptionError);
  EXPECT_TRUE(rec::needs_llm(rec::Method::Zsl));
  EXPECT_FALSE(rec::needs_llm(rec::Method::Pop));
}

TEST(Rec, ConstrainedAnswersParseAsCandidateNumbers) {
  std::vector<std::string> titles;
  for (int i = 1; i <= 50; ++i) titles.push_back("Some game " + std::to_string(i));
  // The embedded backend writes bare labels, one per line.
  auto r = parse::parse_ranking("12\n5\n50\n", titles);
  EXPECT_EQ(r.ranking, (std::vector<int>{11, 4, 49}));
  r = parse::parse_ranking("1\n2\n3\n", titles);  // not mistaken for list positions
  EXPECT_EQ(r.ranking, (std::vector<int>{0, 1, 2}));
  // Servers get "1. <label>" lines.
  r = parse::parse_ranking("1. 12\n2. 5\n", titles);
  EXPECT_EQ(r.ranking, (std::vector<int>{11, 4}));
}

// Servers report an overflow only in words; the OpenAI-compatible backend reads these
// wordings into the typed flag (the embedded backend sets it directly).
TEST(Rec, ServerOverflowMessagesAreRecognised) {
  EXPECT_TRUE(
      llm::is_context_overflow_message("context overflow: prompt of 3000 tokens + max_tokens 48 exceeds the context"));
  EXPECT_TRUE(
      llm::is_context_overflow_message("This model's maximum context length is 4096 tokens. However, you requested"));
  EXPECT_TRUE(llm::is_context_overflow_message("the request exceeds the available context size"));
  EXPECT_FALSE(llm::is_context_overflow_message("HTTP 500: internal error"));
  EXPECT_FALSE(llm::is_context_overflow_message("maximum retries exceeded"));
}

TEST(Rec, ZslGeneratesAndParses) {
  const auto ds = test::tiny_dataset();
  auto backend = test::hashed_answers_backend();
  rec::LlmRankerOptions o;
  o.method = rec::Method::Zsl;
  o.constrain = true;
  auto ranker = rec::make_llm_ranker(ds, backend, o);
  std::vector<rec::Query> qs{make_query(ds, 0), make_query(ds, 1)};
  const auto out = ranker->rank(qs);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& r : out) {
    EXPECT_TRUE(r.valid);
    EXPECT_FALSE(r.ranking.empty());
    EXPECT_LE(r.ranking.size(), 10u);
    EXPECT_EQ(r.prompt_hash.size(), 64u);
    EXPECT_EQ(r.finish, "stop");
  }
  EXPECT_NE(out[0].prompt_hash, out[1].prompt_hash);
  EXPECT_EQ(backend.last_prompt().find("Example from this user's earlier history"), std::string::npos);
  EXPECT_GT(ranker->model_seconds(), 0.0);
}

TEST(Rec, IclShowsTheDemonstration) {
  const auto ds = test::tiny_dataset();
  auto backend = test::hashed_answers_backend();
  rec::LlmRankerOptions o;
  o.method = rec::Method::Icl;
  auto ranker = rec::make_llm_ranker(ds, backend, o);
  const auto q = make_query(ds, 2);
  ranker->rank(std::vector<rec::Query>{q});
  const auto msg = backend.last_prompt();
  EXPECT_NE(msg.find("Example from this user's earlier history"), std::string::npos);
  EXPECT_NE(msg.find("The next item the user interacted with was: " +
                     ds.items[static_cast<std::size_t>(q.demo_target)].title),
            std::string::npos);
}

TEST(Rec, OverflowDropsOldestHistoryUntilItFits) {
  const auto ds = test::tiny_dataset();
  // Measure the full prompt, then allow a few characters less than it needs.
  auto probe = test::hashed_answers_backend();
  rec::LlmRankerOptions o;
  o.method = rec::Method::Icl;
  const auto q = make_query(ds, 3);
  rec::make_llm_ranker(ds, probe, o)->rank(std::vector<rec::Query>{q});
  const std::size_t full = probe.last_prompt().size();
  auto backend = test::hashed_answers_backend(full - 3);
  auto ranker = rec::make_llm_ranker(ds, backend, o);
  const auto out = ranker->rank(std::vector<rec::Query>{q});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].valid);
  EXPECT_TRUE(out[0].error.empty());
  // The query history (7 items) is longer than the demonstration's (6): it loses its oldest.
  EXPECT_EQ(out[0].n_history_dropped + out[0].n_demo_dropped, 1);
  EXPECT_EQ(out[0].n_history_dropped, 1);
  // The instruction is intact and the oldest history title is gone.
  EXPECT_NE(backend.last_prompt().find("Rank the candidate items"), std::string::npos);
  EXPECT_LE(backend.last_prompt().size(), full - 3);

  // Nothing can fit: every droppable item goes, then the error is kept and the answer is a miss.
  auto tiny = test::hashed_answers_backend(10);
  auto r2 = rec::make_llm_ranker(ds, tiny, o)->rank(std::vector<rec::Query>{q});
  EXPECT_FALSE(r2[0].valid);
  // The policy follows the typed flag: this backend's message never says "context overflow".
  EXPECT_NE(r2[0].error.find("exceeds the context"), std::string::npos) << r2[0].error;
  EXPECT_EQ(r2[0].n_history_dropped, static_cast<int>(q.history.size()) - 1);
  EXPECT_EQ(r2[0].n_demo_dropped, static_cast<int>(q.demo_history.size()) - 1);
}

TEST(Rec, ScoreModeRanksByLogLikelihood) {
  const auto ds = test::tiny_dataset();
  auto backend = test::hashed_answers_backend();
  rec::LlmRankerOptions o;
  o.method = rec::Method::Zsl;
  o.mode = rec::RankMode::Score;
  auto ranker = rec::make_llm_ranker(ds, backend, o);
  const auto q = make_query(ds, 4);
  const auto out = ranker->rank(std::vector<rec::Query>{q});
  ASSERT_EQ(out[0].ranking.size(), 10u);
  EXPECT_TRUE(out[0].valid);
  EXPECT_EQ(out[0].answer_format, "score");
  // The ranking is the arg-sort of the scripted scores (titles as continuations).
  std::vector<std::pair<double, int>> scored;
  for (int i = 0; i < 50; ++i) {
    const std::string title = ds.items[static_cast<std::size_t>(q.candidates[static_cast<std::size_t>(i)])].title;
    const std::string h = sha256_hex(backend.last_prompt() + "\x1f" + title);
    scored.emplace_back(-static_cast<double>(std::stoul(h.substr(0, 6), nullptr, 16)) / 1e6, i);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; k < 10; ++k) EXPECT_EQ(out[0].ranking[k], scored[k].second);
  std::set<int> distinct(out[0].ranking.begin(), out[0].ranking.end());
  EXPECT_EQ(distinct.size(), 10u);
}

TEST(Rec, BaselinesRankCandidates) {
  const auto ds = test::tiny_dataset();
  for (auto m : {rec::Method::Random, rec::Method::Pop, rec::Method::Markov}) {
    auto ranker = rec::make_baseline_ranker(ds, m, {}, 10);
    const auto out = ranker->rank(std::vector<rec::Query>{make_query(ds, 5)});
    EXPECT_EQ(out[0].ranking.size(), 10u) << rec::method_name(m);
    EXPECT_TRUE(out[0].valid);
  }
  EXPECT_THROW(rec::make_baseline_ranker(ds, rec::Method::Zsl, {}, 10), OptionError);
}

}  // namespace
