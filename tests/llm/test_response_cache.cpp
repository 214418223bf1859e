// CachedBackend: hits, misses on any key change, failures not stored, reopen, concurrency.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "fake_backend.h"
#include "lrgd/error.h"
#include "lrgd/response_cache.h"

namespace fs = std::filesystem;
using namespace lrgd::llm;

namespace {

using lrgd::test::FakeBackend;

// Deterministic: answers "<model>|<prompt>|t=<temperature>|s=<seed>".
lrgd::test::FakeBehaviour echo(std::string id) {
  lrgd::test::FakeBehaviour b;
  b.id = id;
  b.answer = [id](const lrgd::test::Ask& a) {
    Generation g;
    g.text = id + "|" + a.text + "|t=" + std::to_string(a.params.temperature) + "|s=" + std::to_string(a.params.seed);
    g.finish = a.params.max_tokens < 4 ? FinishReason::Length : FinishReason::Stop;
    g.n_prompt_tokens = static_cast<int>(a.text.size());
    g.n_generated_tokens = 3;
    g.prompt_ms = 1.5;
    g.generate_ms = 2.5;
    return g;
  };
  b.logprob = [](const std::string&, const std::string& c) {
    return std::pair{-0.1 * static_cast<double>(c.size()) - 1.0 / 3.0, static_cast<int>(c.size())};
  };
  return b;
}

// Prompts and contexts whose text starts with "fail" fail.
std::optional<std::string> fail_prefixed(const std::string& text) {
  if (text.rfind("fail", 0) == 0) return "scripted failure";
  return std::nullopt;
}

class ResponseCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lrgd_test_cache_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    path_ = dir_ / "sub" / "cache.sqlite";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A cached echo backend; `raw` points at the inner one (owned by the result).
  std::unique_ptr<CachedBackend> open(FakeBackend*& raw, CacheOptions o = {}, std::string id = "fake:model") {
    auto inner = std::make_unique<FakeBackend>(echo(std::move(id)));
    raw = inner.get();
    return make_cached_backend(std::move(inner), path_, o);
  }

  fs::path dir_;
  fs::path path_;
};

std::vector<Prompt> raw_prompts(std::initializer_list<const char*> texts) {
  std::vector<Prompt> v;
  for (const char* t : texts) v.push_back(Prompt::raw(t));
  return v;
}

TEST_F(ResponseCache, SecondIdenticalCallIsServedFromTheCache) {
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  const auto prompts = raw_prompts({"a", "b", "c"});
  GenerationParams params;
  params.max_tokens = 2;  // Length finish must survive the round trip

  const auto first = cache->generate(prompts, params);
  EXPECT_EQ(inner->n_prompts(), 3);
  for (const auto& g : first) EXPECT_FALSE(g.from_cache);

  const auto second = cache->generate(prompts, params);
  EXPECT_EQ(inner->n_prompts(), 3) << "nothing may reach the backend on a full hit";
  ASSERT_EQ(second.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(second[i].from_cache);
    EXPECT_EQ(second[i].text, first[i].text);
    EXPECT_EQ(second[i].finish, FinishReason::Length);
    EXPECT_EQ(second[i].n_prompt_tokens, first[i].n_prompt_tokens);
    EXPECT_EQ(second[i].n_generated_tokens, 3);
    EXPECT_DOUBLE_EQ(second[i].generate_ms, 2.5);
  }
  const Usage u = cache->usage();
  EXPECT_EQ(u.n_cache_hits, 3u);
  EXPECT_EQ(u.n_requests, 6u);
  EXPECT_EQ(u.n_generated_tokens, 9u) << "hits cost no tokens";
  const CacheStats s = cache->stats();
  EXPECT_EQ(s.n_hits, 3u);
  EXPECT_EQ(s.n_misses, 3u);
  EXPECT_EQ(s.n_stored, 3u);
  EXPECT_EQ(cache->model_id(), "fake:model");
}

TEST_F(ResponseCache, PartialHitSendsOnlyMissesInOrder) {
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  cache->generate(raw_prompts({"b"}), {});
  const auto out = cache->generate(raw_prompts({"a", "b", "c", "a"}), {});
  EXPECT_EQ(inner->n_prompts(), 3) << "b was cached; the repeated a is computed once";
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FALSE(out[0].from_cache);
  EXPECT_TRUE(out[1].from_cache);
  EXPECT_FALSE(out[2].from_cache);
  EXPECT_TRUE(out[3].from_cache);
  EXPECT_NE(out[0].text.find("|a|"), std::string::npos);
  EXPECT_NE(out[1].text.find("|b|"), std::string::npos);
  EXPECT_NE(out[2].text.find("|c|"), std::string::npos);
  EXPECT_EQ(out[3].text, out[0].text);
}

TEST_F(ResponseCache, KeyChangesWithEveryParameterAndPromptPart) {
  const GenerationParams base;
  const Prompt prompt = Prompt::chat({{"system", "s"}, {"user", "u"}});
  const std::string k0 = cache_key("m", prompt, base);
  EXPECT_EQ(k0, cache_key("m", prompt, base));
  EXPECT_EQ(k0.size(), 64u);

  std::vector<std::pair<std::string, std::string>> variants;
  auto with = [&](const std::string& what, auto change) {
    GenerationParams p = base;
    change(p);
    variants.emplace_back(what, cache_key("m", prompt, p));
  };
  with("max_tokens", [](GenerationParams& p) { p.max_tokens = 129; });
  with("temperature", [](GenerationParams& p) { p.temperature = 0.5f; });
  with("top_p", [](GenerationParams& p) { p.top_p = 0.9f; });
  with("top_k", [](GenerationParams& p) { p.top_k = 40; });
  with("stop", [](GenerationParams& p) { p.stop = {"\n"}; });
  with("stop2", [](GenerationParams& p) { p.stop = {"\n", "x"}; });
  with("grammar", [](GenerationParams& p) {
    p.constraint.kind = OutputConstraint::Kind::Grammar;
    p.constraint.grammar = "root ::= \"a\"";
  });
  with("grammar2", [](GenerationParams& p) {
    p.constraint.kind = OutputConstraint::Kind::Grammar;
    p.constraint.grammar = "root ::= \"b\"";
  });
  with("schema", [](GenerationParams& p) {
    p.constraint.kind = OutputConstraint::Kind::JsonSchema;
    p.constraint.json_schema = "{}";
  });
  with("labels", [](GenerationParams& p) {
    p.constraint.kind = OutputConstraint::Kind::CandidateList;
    p.constraint.labels = {"1", "2"};
  });
  with("labels2", [](GenerationParams& p) {
    p.constraint.kind = OutputConstraint::Kind::CandidateList;
    p.constraint.labels = {"1", "3"};
  });
  with("list_length", [](GenerationParams& p) {
    p.constraint.kind = OutputConstraint::Kind::CandidateList;
    p.constraint.labels = {"1", "2"};
    p.constraint.list_length = 2;
  });
  variants.emplace_back("model", cache_key("m2", prompt, base));
  variants.emplace_back("role", cache_key("m", Prompt::chat({{"user", "s"}, {"user", "u"}}), base));
  variants.emplace_back("content", cache_key("m", Prompt::chat({{"system", "s"}, {"user", "u2"}}), base));
  variants.emplace_back("split", cache_key("m", Prompt::chat({{"system", "su"}, {"user", ""}}), base));
  variants.emplace_back("raw", cache_key("m", Prompt::raw("su"), base));
  variants.emplace_back("tokens", cache_key("m", Prompt::ids({1, 2}), base));
  variants.emplace_back("tokens2", cache_key("m", Prompt::ids({12}), base));

  for (std::size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(variants[i].second, k0) << variants[i].first;
    for (std::size_t j = i + 1; j < variants.size(); ++j) {
      EXPECT_NE(variants[i].second, variants[j].second) << variants[i].first << " vs " << variants[j].first;
    }
  }

  // Greedy: the seed does not matter; sampled: it does. use_cache is never part of it.
  GenerationParams seeded = base;
  seeded.seed = 7;
  seeded.use_cache = false;
  EXPECT_EQ(cache_key("m", prompt, seeded), k0);
  GenerationParams s1 = base, s2 = base;
  s1.temperature = s2.temperature = 0.8f;
  s2.seed = 1;
  EXPECT_NE(cache_key("m", prompt, s1), cache_key("m", prompt, s2));
}

TEST_F(ResponseCache, AnyParameterChangeIsAMiss) {
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  const auto prompts = raw_prompts({"x"});
  GenerationParams p;
  cache->generate(prompts, p);
  p.max_tokens = 64;
  cache->generate(prompts, p);
  p.stop = {"END"};
  cache->generate(prompts, p);
  p.constraint.kind = OutputConstraint::Kind::CandidateList;
  p.constraint.labels = {"1", "2", "3"};
  cache->generate(prompts, p);
  p.constraint.list_length = 2;
  cache->generate(prompts, p);
  EXPECT_EQ(inner->n_prompts(), 5);
  cache->generate(prompts, p);
  EXPECT_EQ(inner->n_prompts(), 5);
}

TEST_F(ResponseCache, FailedResultsAreNotStoredAndARerunRetriesThem) {
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  inner->behaviour.fail = fail_prefixed;
  const auto prompts = raw_prompts({"ok", "fail-1"});
  auto out = cache->generate(prompts, {});
  EXPECT_TRUE(out[0].ok());
  EXPECT_FALSE(out[1].ok());
  EXPECT_EQ(out[1].error, "scripted failure");
  EXPECT_EQ(cache->stats().n_stored, 1u);

  out = cache->generate(prompts, {});
  EXPECT_EQ(inner->n_prompts(), 3) << "the failed prompt is retried, the good one is a hit";
  EXPECT_TRUE(out[0].from_cache);
  EXPECT_FALSE(out[1].ok());

  inner->behaviour.fail = nullptr;
  out = cache->generate(prompts, {});
  EXPECT_EQ(inner->n_prompts(), 4);
  EXPECT_TRUE(out[1].ok());
  EXPECT_FALSE(out[1].from_cache);
  out = cache->generate(prompts, {});
  EXPECT_EQ(inner->n_prompts(), 4);
  EXPECT_TRUE(out[1].from_cache);
}

TEST_F(ResponseCache, SurvivesReopenAndKeepsBytesExactly) {
  static const char kOdd[] = "caf\xc3\xa9 \xff\xfe broken utf-8 \0 nul";
  const std::string odd(kOdd, sizeof(kOdd) - 1);
  std::string first_text;
  {
    FakeBackend* inner = nullptr;
    auto cache = open(inner);
    const auto out = cache->generate(std::vector<Prompt>{Prompt::raw(odd)}, {});
    first_text = out[0].text;
    EXPECT_NE(first_text.find(odd), std::string::npos);
  }
  EXPECT_TRUE(fs::exists(path_));
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  const auto out = cache->generate(std::vector<Prompt>{Prompt::raw(odd)}, {});
  EXPECT_EQ(inner->n_prompts(), 0);
  EXPECT_TRUE(out[0].from_cache);
  EXPECT_EQ(out[0].text, first_text);

  // Another model id over the same file: a miss.
  FakeBackend* other = nullptr;
  auto cache2 = open(other, {}, "fake:other");
  cache2->generate(std::vector<Prompt>{Prompt::raw(odd)}, {});
  EXPECT_EQ(other->n_prompts(), 1);
}

// A stored row whose fields have other types (a damaged or foreign file) is a miss that is
// computed again and overwritten, never a JSON exception out of the cache.
TEST_F(ResponseCache, RowsWithWrongFieldTypesAreMisses) {
  {
    FakeBackend* inner = nullptr;
    auto cache = open(inner);
    cache->generate(raw_prompts({"a", "b"}), {});
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE responses SET value = '{\"finish\":\"stop\",\"n_prompt_tokens\":\"many\"}' "
                         "WHERE rowid = (SELECT min(rowid) FROM responses);"
                         "UPDATE responses SET value = '{\"finish\":7}' "
                         "WHERE rowid = (SELECT max(rowid) FROM responses)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  const auto out = cache->generate(raw_prompts({"a", "b"}), {});
  EXPECT_EQ(inner->n_prompts(), 2);
  EXPECT_FALSE(out[0].from_cache);
  EXPECT_FALSE(out[1].from_cache);
  FakeBackend* again = nullptr;
  auto cache2 = open(again);
  cache2->generate(raw_prompts({"a", "b"}), {});
  EXPECT_EQ(again->n_prompts(), 0);  // overwritten with good rows
}

TEST_F(ResponseCache, SampledDecodingIsCachedOnlyWhenAskedAndKeyedBySeed) {
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  GenerationParams p;
  p.temperature = 0.7f;
  p.seed = 1;
  const auto prompts = raw_prompts({"s"});
  cache->generate(prompts, p);
  cache->generate(prompts, p);
  EXPECT_EQ(inner->n_prompts(), 2) << "sampled results are not cached by default";
  EXPECT_EQ(cache->stats().n_bypassed, 2u);

  CacheOptions o;
  o.cache_sampled = true;
  FakeBackend* inner2 = nullptr;
  auto sampled = open(inner2, o);
  sampled->generate(prompts, p);
  EXPECT_TRUE(sampled->generate(prompts, p)[0].from_cache);
  p.seed = 2;
  EXPECT_FALSE(sampled->generate(prompts, p)[0].from_cache);
  EXPECT_EQ(inner2->n_prompts(), 2);
}

TEST_F(ResponseCache, UseCacheFalseAndDisabledBypass) {
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  GenerationParams p;
  p.use_cache = false;
  const auto prompts = raw_prompts({"q"});
  cache->generate(prompts, p);
  cache->generate(prompts, p);
  EXPECT_EQ(inner->n_prompts(), 2);
  EXPECT_EQ(cache->stats().n_stored, 0u);

  fs::remove_all(dir_);
  CacheOptions off;
  off.enabled = false;
  FakeBackend* inner2 = nullptr;
  auto plain = open(inner2, off);
  plain->generate(prompts, {});
  plain->generate(prompts, {});
  EXPECT_EQ(inner2->n_prompts(), 2);
  EXPECT_FALSE(fs::exists(path_)) << "a disabled cache creates no file";
}

TEST_F(ResponseCache, ReadOffRefreshesAndWriteOffStoresNothing) {
  FakeBackend* inner = nullptr;
  CacheOptions no_write;
  no_write.write = false;
  auto cache = open(inner, no_write);
  const auto prompts = raw_prompts({"r"});
  cache->generate(prompts, {});
  cache->generate(prompts, {});
  EXPECT_EQ(inner->n_prompts(), 2);

  CacheOptions no_read;
  no_read.read = false;
  FakeBackend* inner2 = nullptr;
  auto refresh = open(inner2, no_read);
  refresh->generate(prompts, {});
  refresh->generate(prompts, {});
  EXPECT_EQ(inner2->n_prompts(), 2);
  FakeBackend* inner3 = nullptr;
  auto normal = open(inner3);
  EXPECT_TRUE(normal->generate(prompts, {})[0].from_cache);
}

TEST_F(ResponseCache, ScoresAreCachedAndFailedScoresAreNot) {
  FakeBackend* inner = nullptr;
  auto cache = open(inner);
  inner->behaviour.fail = fail_prefixed;
  std::vector<ScoreRequest> reqs(2);
  reqs[0].context = Prompt::raw("ctx");
  reqs[0].continuations = {"a", "bcd"};
  reqs[1].context = Prompt::raw("fail ctx");
  reqs[1].continuations = {"a"};
  auto out = cache->score(reqs);
  ASSERT_TRUE(out[0].ok());
  EXPECT_FALSE(out[1].ok());
  out = cache->score(reqs);
  EXPECT_EQ(inner->n_scores(), 3);
  ASSERT_EQ(out[0].logprobs.size(), 2u);
  EXPECT_EQ(out[0].logprobs[1], -0.1 * 3 - 1.0 / 3.0) << "doubles round-trip exactly";
  EXPECT_EQ(out[0].n_tokens[1], 3);
  EXPECT_EQ(cache->usage().n_cache_hits, 1u);

  std::vector<ScoreRequest> changed = {reqs[0]};
  changed[0].continuations.push_back("e");
  cache->score(changed);
  EXPECT_EQ(inner->n_scores(), 4);
}

TEST_F(ResponseCache, ConcurrentUseFromThreadsAndTwoConnections) {
  FakeBackend* inner_a = nullptr;
  FakeBackend* inner_b = nullptr;
  auto a = open(inner_a);
  auto b = open(inner_b);  // second connection to the same file
  constexpr int kThreads = 8;
  constexpr int kRounds = 40;
  std::atomic<int> n_wrong{0};
  std::atomic<int> n_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        CachedBackend& c = t % 2 == 0 ? *a : *b;
        for (int r = 0; r < kRounds; ++r) {
          std::vector<Prompt> ps;
          for (int k = 0; k < 3; ++k) ps.push_back(Prompt::raw("p" + std::to_string((t * 7 + r * 3 + k) % 25)));
          const auto out = c.generate(ps, {});
          for (std::size_t k = 0; k < ps.size(); ++k) {
            if (out[k].text != "fake:model|" + ps[k].text + "|t=0.000000|s=0") n_wrong++;
          }
        }
      } catch (const std::exception&) {
        n_errors++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(n_errors, 0);
  EXPECT_EQ(n_wrong, 0);
  const auto sa = a->stats(), sb = b->stats();
  EXPECT_EQ(sa.n_hits + sa.n_misses + sb.n_hits + sb.n_misses, static_cast<std::uint64_t>(kThreads * kRounds * 3));
  EXPECT_GE(inner_a->n_prompts() + inner_b->n_prompts(), 25);
  EXPECT_LT(inner_a->n_prompts() + inner_b->n_prompts(), kThreads * kRounds * 3 / 2);
  EXPECT_EQ(sa.n_write_errors + sb.n_write_errors, 0u);
}

TEST_F(ResponseCache, UnusableFilesThrowIoError) {
  fs::create_directories(path_);  // a folder where the file should be
  FakeBackend* inner = nullptr;
  EXPECT_THROW(open(inner), lrgd::IoError);
  fs::remove_all(path_);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    open(inner);
    FAIL() << "expected IoError";
  } catch (const lrgd::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

}  // namespace
