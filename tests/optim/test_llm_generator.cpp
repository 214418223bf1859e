// Stage 1 written by a language model: the answer's parser and validator, retries with the
// rejection reason, giving up without a silent substitute, what the generator is shown
// (memory with S, previous demonstration with S, perturbation P), and the grammar on a real
// (tiny) libllama model.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "lrgd/llama_backend.h"
#include "lrgd/memory.h"
#include "lrgd/optim.h"
#include "optim_test_util.h"
#include "tiny_model.h"

namespace {

using namespace lrgd;
using optim::Demo;

std::vector<data::ItemIndex> items10() { return {40, 41, 42, 43, 44, 45, 46, 47, 48, 49}; }

TEST(LlmGeneratorParse, ValidAnswerMapsNumbersToTheUsersItems) {
  Demo d;
  std::string why;
  ASSERT_TRUE(
      optim::parse_generated_demo("History: 2, 3, 5\nNext: 7\nReason:  Likes   racing games.\n", items10(), d, why))
      << why;
  EXPECT_EQ(d.history, (std::vector<data::ItemIndex>{41, 42, 44}));
  EXPECT_EQ(d.target, 46);
  EXPECT_EQ(d.explanation, "Likes racing games.");
  // Spaces and CRLF around the fields are tolerated; the order of lines is not required.
  ASSERT_TRUE(optim::parse_generated_demo(" Reason: x\r\nHistory: 1\r\nNext: 10\r\n", items10(), d, why)) << why;
  EXPECT_EQ(d.history, (std::vector<data::ItemIndex>{40}));
  EXPECT_EQ(d.target, 49);
}

TEST(LlmGeneratorParse, InvalidAnswersAreRejectedWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"History: 2, 3\nNext: 7\n", "missing line \"Reason:\""},
      {"Next: 7\nReason: r\n", "missing line \"History:\""},
      {"History: 2, 11\nNext: 12\nReason: r", "not a number from 1 to 10"},
      {"History: 0\nNext: 2\nReason: r", "not a number from 1 to 10"},
      {"History: 2, x\nNext: 7\nReason: r", "\"x\" is not a number"},
      {"History: 3, 2\nNext: 7\nReason: r", "distinct and oldest first (3 then 2)"},
      {"History: 3, 3\nNext: 7\nReason: r", "distinct and oldest first"},
      {"History: 3, 6\nNext: 5\nReason: r", "must come after every history item"},
      {"History: 3, 6\nNext: 6\nReason: r", "must come after every history item"},
      {"History: 3\nNext: 99\nReason: r", "next item \"99\""},
      {"History: 3\nNext: 4\nReason:   \n", "the reason is empty"},
      {"History: 3\nNext: 4\nReason: 12.\n", "has no words"},
  };
  for (const auto& [answer, expected] : cases) {
    Demo d;
    std::string why;
    EXPECT_FALSE(optim::parse_generated_demo(answer, items10(), d, why)) << answer;
    EXPECT_NE(why.find(expected), std::string::npos) << answer << " -> " << why;
  }
}

// Answers generator prompts with `script(prompt text, generate call)`.
test::FakeBackend generator_backend(std::function<std::string(const std::string& prompt, int call)> script) {
  test::FakeBehaviour b;
  b.id = "scripted:generator";
  b.answer = [script = std::move(script)](const test::Ask& a) {
    llm::Generation g;
    g.text = script(a.text, a.call);
    g.n_prompt_tokens = 100;
    g.n_generated_tokens = 10;
    return g;
  };
  return test::FakeBackend(std::move(b));
}

protocol::PreparedUser user_with(std::vector<data::ItemIndex> history) {
  protocol::PreparedUser u;
  u.user_id = "u";
  u.valid_history = std::move(history);
  u.valid_target = 70;
  u.test_target = 71;
  return u;
}

TEST(LlmGenerator, InvalidAnswersAreRetriedWithTheReasonThenAccepted) {
  const auto ds = test::tiny_dataset(3);
  auto be = generator_backend([](const std::string&, int call) {
    return call == 1 ? std::string("History: 5, 3, 4\nNext: 6\nReason: likes sequels\n")
                     : std::string("History: 3, 4, 5\nNext: 6\nReason: likes sequels\n");
  });
  std::vector<llm::GenerationParams> params;
  be.behaviour.answer = [&params, answer = be.behaviour.answer](const test::Ask& a) {
    params.push_back(a.params);
    return answer(a);
  };
  auto gen = optim::make_llm_generator(ds, be);
  const auto u = user_with(items10());
  optim::GenerationRequest r;
  r.user = &u;
  const auto out = gen->generate(std::span(&r, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].n_attempts, 2);
  EXPECT_EQ(out[0].n_invalid, 1);
  EXPECT_EQ(out[0].n_tokens, 220u);
  EXPECT_EQ(out[0].demo.history, (std::vector<data::ItemIndex>{42, 43, 44}));
  EXPECT_EQ(out[0].demo.target, 45);
  EXPECT_EQ(out[0].demo.strategy, "llm attempt=2");
  const auto asked = be.prompts();
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].find("rejected"), std::string::npos);
  EXPECT_NE(asked[1].find("Your previous answer was rejected: history items must be distinct and oldest first"),
            std::string::npos);
  // At least three history items (min_items), at most twelve, and a reason that starts
  // with a letter.
  const auto& g = params.at(0).constraint.grammar;
  EXPECT_NE(g.find("h7-1 ::= \", \" (\"8\" h8-2 )\n"), std::string::npos) << g;  // two more and a next must fit
  EXPECT_NE(g.find("h5-3 ::= \", \" (\"6\" h6-4"), std::string::npos) << g;
  EXPECT_NE(g.find("| \"\\nNext: \" (\"6\" | \"7\" | \"8\" | \"9\" | \"10\") tail"), std::string::npos) << g;
  EXPECT_EQ(g.find("h10-"), std::string::npos) << "no history may end at the last item";
  EXPECT_EQ(g.find("h9-1 "), std::string::npos) << "too late to fit three items and a next";
  EXPECT_NE(g.find("[A-Za-z]"), std::string::npos);
  // The answer is constrained by a grammar over the history's numbers, sampled.
  const auto& gp = params.at(0);
  EXPECT_EQ(gp.constraint.kind, llm::OutputConstraint::Kind::Grammar);
  EXPECT_NE(gp.constraint.grammar.find("\"10\""), std::string::npos);
  EXPECT_EQ(gp.constraint.grammar.find("\"11\""), std::string::npos);
  EXPECT_GT(gp.temperature, 0.0f);
  // It never sees the validation or test target.
  for (const auto& a : asked) {
    EXPECT_EQ(a.find("Game 70"), std::string::npos);
    EXPECT_EQ(a.find("Game 71"), std::string::npos);
  }
}

TEST(LlmGenerator, GivesUpAfterEveryAttemptWithoutASubstitute) {
  const auto ds = test::tiny_dataset(3);
  auto be = generator_backend([](const std::string&, int) { return std::string("I think the user likes games."); });
  optim::LlmGeneratorOptions o;
  o.max_attempts = 3;
  auto gen = optim::make_llm_generator(ds, be, o);
  const auto u = user_with(items10());
  const auto short_user = user_with({40});
  std::vector<optim::GenerationRequest> reqs(2);
  reqs[0].user = &u;
  reqs[1].user = &short_user;
  const auto out = gen->generate(reqs);
  EXPECT_TRUE(out[0].demo.empty());
  EXPECT_EQ(out[0].n_attempts, 3);
  EXPECT_EQ(out[0].n_invalid, 3);
  EXPECT_EQ(out[0].demo.strategy, "llm failed after 3 attempts: missing line \"History:\"");
  // A user with one history item has no example to give: not asked, not counted.
  EXPECT_TRUE(out[1].demo.empty());
  EXPECT_EQ(out[1].n_attempts, 0);
  EXPECT_EQ(be.prompts().size(), 3u);
}

TEST(LlmGenerator, TooFewHistoryItemsAreRejectedUnlessTheHistoryIsShort) {
  const auto ds = test::tiny_dataset(3);
  auto be =
      generator_backend([](const std::string&, int) { return std::string("History: 1, 2\nNext: 3\nReason: r\n"); });
  optim::LlmGeneratorOptions o;
  o.max_attempts = 1;
  auto gen = optim::make_llm_generator(ds, be, o);
  const auto long_user = user_with(items10());
  const auto short_user = user_with({40, 41, 42});  // two items before the last: min 2
  std::vector<optim::GenerationRequest> reqs(2);
  reqs[0].user = &long_user;
  reqs[1].user = &short_user;
  const auto out = gen->generate(reqs);
  EXPECT_TRUE(out[0].demo.empty());
  EXPECT_EQ(out[0].error, "fewer than 3 history items");
  EXPECT_FALSE(out[1].demo.empty()) << out[1].error;
}

TEST(LlmGenerator, SeesMemoryPreviousAndPerturbationWithTheirScores) {
  const auto ds = test::tiny_dataset(3);
  auto be =
      generator_backend([](const std::string&, int) { return std::string("History: 1, 2, 3\nNext: 4\nReason: r\n"); });
  auto gen = optim::make_llm_generator(ds, be);
  const auto u = user_with(items10());
  const Demo best{{41, 42}, 43, "best so far", "llm"};
  const Demo prev{{44}, 45, "last round", "llm"};
  const Demo pert{{46, 47}, 48, "other path", "llm"};
  optim::GenerationRequest r;
  r.user = &u;
  r.path = 1;
  r.round = 2;
  r.path_memory = {best};
  r.path_memory_scores = {0.63};
  r.previous = &prev;
  r.previous_score = 0.0;
  r.perturbation = &pert;
  gen->generate(std::span(&r, 1));
  ASSERT_EQ(be.prompts().size(), 1u);
  const auto p = be.prompts()[0];
  EXPECT_NE(p.find("Search path 2, round 3."), std::string::npos);
  EXPECT_NE(p.find("History: 2, 3 / Next: 4 / Reason: best so far (S = 0.63)"), std::string::npos) << p;
  EXPECT_NE(p.find("Your previous demonstration: History: 5 / Next: 6 / Reason: last round (S = 0.00)"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("too similar"), std::string::npos);
  EXPECT_NE(p.find("History: 7, 8 / Next: 9 / Reason: other path"), std::string::npos) << p;
  EXPECT_NE(p.find("10. Game 49"), std::string::npos);
  // Without memory, previous and P the prompt says so and shows no P.
  optim::GenerationRequest first;
  first.user = &u;
  gen->generate(std::span(&first, 1));
  const auto second = be.prompts().at(1);
  EXPECT_NE(second.find("(none yet)"), std::string::npos);
  EXPECT_NE(second.find("(this is the first round)"), std::string::npos);
  EXPECT_EQ(second.find("too similar"), std::string::npos);
}

// The loop with an LLM generator: recommender prompts get the rotating answers, generator
// prompts a script that writes a valid demonstration of varying length. Attempts and
// failures reach the cost, and after a collapse the generator is shown P.
bool is_generator_prompt(const std::string& text) { return text.find("You write demonstrations") != std::string::npos; }

TEST(LlmGenerator, InTheLoopAttemptsFailuresAndPerturbationAreAccounted) {
  test::TempDir dir("llmgen");
  const auto ds = test::tiny_dataset(30);
  protocol::ProtocolOptions po;
  po.seed = 7;
  po.n_users = 4;
  po.n_candidates = 20;
  const auto split = protocol::prepare_split(ds, po);
  auto be = test::rotating_backend();
  be.behaviour.answer = [recommender = be.behaviour.answer](const test::Ask& a) {
    if (!is_generator_prompt(a.text)) return recommender(a);
    llm::Generation g;
    // Path 3 always answers badly; the others pick a window by the round number.
    if (a.text.find("Search path 3,") != std::string::npos) {
      g.text = "History: 9, 2\nNext: 1\nReason: r\n";
    } else {
      const bool r2 = a.text.find("round 2.") != std::string::npos;
      g.text = r2 ? "History: 1, 2, 3\nNext: 4\nReason: likes the series\n" : "History: 1\nNext: 2\nReason: r\n";
    }
    g.n_prompt_tokens = 50;
    g.n_generated_tokens = 5;
    return g;
  };
  rec::LlmRankerOptions ro;
  ro.method = rec::Method::Icl;
  ro.constrain = true;
  ro.list_length = 10;
  auto icl = rec::make_llm_ranker(ds, be, ro);
  optim::LlmGeneratorOptions go;
  go.max_attempts = 2;
  go.min_items = 1;
  auto gen = optim::make_llm_generator(ds, be, go);
  memory::Store store(dir / "m.sqlite");
  optim::Options o;
  o.paths = 3;
  o.rounds = 3;
  o.generator = "llm";
  optim::Optimiser opt(ds, *icl, *gen, store, o, optim::dataset_key(ds), "v", be.model_id(), &be);
  std::vector<const protocol::PreparedUser*> users;
  for (const auto& u : split.users) users.push_back(&u);
  const auto rows = opt.optimise(users);
  ASSERT_EQ(rows.size(), users.size() * 9);
  const auto& c = opt.cost();
  // Paths 1 and 2: one attempt per row; path 3: two invalid attempts per row, then given up.
  EXPECT_EQ(c.generator_attempts, users.size() * 3 * (2 + 2));
  EXPECT_EQ(c.generator_invalid, users.size() * 3 * 2);
  EXPECT_EQ(c.generator_failed, users.size() * 3);
  for (const auto& e : rows) {
    const auto d = optim::demo_from_json(ds, e.demo);
    if (e.path == 2) {
      EXPECT_TRUE(d.empty());
      EXPECT_EQ(e.score, 0.0);
    } else {
      EXPECT_FALSE(d.empty());
      EXPECT_EQ(d.history.size(), e.round == 1 ? 3u : 1u);
    }
  }
  // Path 3 never improves, so it collapses, and path 3's generator is shown another path's
  // demonstration as P in the following round.
  bool saw_p = false;
  for (const auto& t : be.prompts()) saw_p |= is_generator_prompt(t) && t.find("too similar") != std::string::npos;
  EXPECT_TRUE(saw_p);
  const auto j = nlohmann::json::parse(optim::cost_json(c));
  EXPECT_EQ(j["generator_answers"]["failed"].get<std::uint64_t>(), users.size() * 3);
}

// The grammar is valid GBNF and holds on a real libllama model: every answer of a tiny
// random-weight model is a valid demonstration at the first attempt.
TEST(LlmGenerator, GrammarHoldsOnAnEmbeddedModel) {
  test::TempDir dir("llmgen-grammar");
  const auto model = test::tiny_model(dir.path());
  llm::LlamaBackendOptions bo;
  bo.model = model;
  bo.n_threads = 1;
  bo.n_parallel = 4;
  bo.n_ctx_seq = 2048;
  auto be = llm::make_llama_backend(bo);
  const auto ds = test::tiny_dataset(3);
  optim::LlmGeneratorOptions go;
  go.max_attempts = 1;
  go.max_tokens = 120;
  auto gen = optim::make_llm_generator(ds, *be, go);
  std::vector<protocol::PreparedUser> us;
  for (int k = 0; k < 4; ++k) us.push_back(user_with(items10()));
  std::vector<optim::GenerationRequest> reqs(us.size());
  for (std::size_t k = 0; k < us.size(); ++k) {
    reqs[k].user = &us[k];
    reqs[k].path = static_cast<int>(k);
  }
  const auto out = gen->generate(reqs);
  // Random weights, one attempt each: the grammar alone makes every answer valid.
  std::set<std::string> distinct;
  for (const auto& g : out) {
    EXPECT_EQ(g.n_attempts, 1);
    ASSERT_FALSE(g.demo.empty()) << g.error;
    EXPECT_GE(g.demo.history.size(), 3u);
    EXPECT_LE(g.demo.history.size(), 12u);
    EXPECT_FALSE(g.demo.explanation.empty());
    distinct.insert(optim::demo_text(ds, g.demo));
  }
  EXPECT_GT(distinct.size(), 1u) << "paths sample independently";
}

}  // namespace
