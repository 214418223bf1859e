// LRGD's optimisation loop on a scripted backend: S(D), memory contents, collapse and
// perturbation bookkeeping, determinism, resume after a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lrgd/eval.h"
#include "lrgd/memory.h"
#include "lrgd/optim.h"
#include "lrgd/rng.h"
#include "optim_test_util.h"

namespace {

using namespace lrgd;

protocol::ProtocolOptions proto(std::size_t n_users = 6) {
  protocol::ProtocolOptions p;
  p.seed = 7;
  p.n_users = n_users;
  p.n_candidates = 20;
  return p;
}

rec::LlmRankerOptions icl_options() {
  rec::LlmRankerOptions o;
  o.method = rec::Method::Icl;
  o.constrain = true;
  o.list_length = 10;
  return o;
}

TEST(Optim, Quality) {
  EXPECT_DOUBLE_EQ(optim::demonstration_quality(1), 1.0);
  EXPECT_DOUBLE_EQ(optim::demonstration_quality(3), 0.5);
  EXPECT_DOUBLE_EQ(optim::demonstration_quality(0), 0.0);
  EXPECT_DOUBLE_EQ(optim::demonstration_quality(4, optim::Quality::Inverse), 0.25);
  EXPECT_EQ(optim::parse_quality("inverse"), optim::Quality::Inverse);
  EXPECT_THROW(optim::parse_quality("x"), OptionError);
  EXPECT_DOUBLE_EQ(optim::token_jaccard("a b c", "a b d"), 0.5);
  EXPECT_DOUBLE_EQ(optim::token_jaccard("", ""), 1.0);
}

TEST(Optim, DemoJsonRoundTrip) {
  const auto ds = test::tiny_dataset(3);
  optim::Demo d{{1, 2, 3}, 4, "likes games", "recent w=3 j=3"};
  const auto back = optim::demo_from_json(ds, optim::demo_json(ds, d));
  EXPECT_EQ(back.history, d.history);
  EXPECT_EQ(back.target, d.target);
  EXPECT_EQ(back.explanation, d.explanation);
  EXPECT_NE(optim::demo_text(ds, d).find("Game 4"), std::string::npos);
}

struct Loop {
  data::Dataset ds = test::tiny_dataset(30);
  protocol::PreparedSplit split;
  test::FakeBackend backend = test::rotating_backend();
  std::unique_ptr<rec::Ranker> icl;
  std::unique_ptr<optim::Generator> gen;
  std::vector<memory::Entry> run(const std::filesystem::path& db, const optim::Options& o) {
    split = protocol::prepare_split(ds, proto());
    icl = rec::make_llm_ranker(ds, backend, icl_options());
    gen = optim::make_template_generator(ds);
    memory::Store store(db);
    optim::Optimiser opt(ds, *icl, *gen, store, o, optim::dataset_key(ds), "v", backend.model_id(), &backend);
    std::vector<const protocol::PreparedUser*> users;
    for (const auto& u : split.users) users.push_back(&u);
    return opt.optimise(users);
  }
};

TEST(Optim, BookkeepingOnScriptedBackend) {
  test::TempDir dir("book");
  Loop loop;
  optim::Options o;
  o.paths = 3;
  o.rounds = 6;  // long enough for the stall window to open, close and open again
  o.seed = 7;
  const auto rows = loop.run(dir / "m.sqlite", o);
  ASSERT_EQ(rows.size(), loop.split.users.size() * 18);
  std::map<std::pair<std::string, int>, std::vector<const memory::Entry*>> by_path;
  for (const auto& e : rows) by_path[{e.user, e.path}].push_back(&e);
  std::size_t n_effective = 0, n_collapsed = 0, n_perturbed = 0, n_stalls = 0, n_kept_p = 0;
  for (const auto& u : loop.split.users) {
    const auto pos =
        std::find(u.valid_candidates.begin(), u.valid_candidates.end(), u.valid_target) - u.valid_candidates.begin();
    for (int p = 0; p < 3; ++p) {
      const auto& path = by_path[{u.user_id, p}];
      ASSERT_EQ(path.size(), 6u);
      for (int r = 0; r < 6; ++r) {
        const auto& e = *path[static_cast<std::size_t>(r)];
        EXPECT_EQ(e.round, r);
        const auto d = optim::demo_from_json(loop.ds, e.demo);
        // The demonstration never shows the validation or test target as its next item,
        // and its window lies strictly before the validation target.
        EXPECT_NE(d.target, u.valid_target);
        EXPECT_NE(d.target, u.test_target);
        // Known answer -> known rank -> known S.
        const auto ans =
            test::rotating_answer(static_cast<int>(d.history.size()), static_cast<int>(u.valid_candidates.size()));
        const auto it = std::find(ans.begin(), ans.end(), static_cast<int>(pos) + 1);
        const int rank = it == ans.end() ? 0 : static_cast<int>(it - ans.begin()) + 1;
        EXPECT_EQ(e.target_rank, rank);
        EXPECT_DOUBLE_EQ(e.score, optim::demonstration_quality(rank));
        EXPECT_EQ(e.effective, rank > 0);
        n_effective += e.effective;
        if (r == 0) {
          EXPECT_FALSE(e.collapsed);
          EXPECT_EQ(e.perturbation_path, -1);
          continue;
        }
        const auto& prev = *path[static_cast<std::size_t>(r - 1)];
        EXPECT_DOUBLE_EQ(e.similarity, optim::token_jaccard(e.text, prev.text));
        // Stall, written out plainly: the window opens after the last collapse; over its
        // last 2 rounds the best S must have risen by 0.01 (or reached 1).
        int start = 0;
        for (int q = r - 1; q >= 0; --q)
          if (path[static_cast<std::size_t>(q)]->collapsed) {
            start = q + 1;
            break;
          }
        bool stalled = false;
        if (r - start >= 2) {
          double before = 0, now = 0;
          for (int q = start; q <= r; ++q) {
            const double sq = path[static_cast<std::size_t>(q)]->score;
            if (q <= r - 2) before = std::max(before, sq);
            now = std::max(now, sq);
          }
          stalled = now < 1.0 && now - before < 0.01;
        }
        n_stalls += stalled;
        const bool expect_collapse = e.similarity > 0.8 || stalled;
        EXPECT_EQ(e.collapsed, expect_collapse) << u.user_id << " " << p << " " << r;
        n_collapsed += e.collapsed;
        // Perturbation: after a collapse, a random other path's previous-round demonstration,
        // kept by the path until its next collapse.
        if (prev.collapsed) {
          auto rng = Rng::derive(7, "lrgd/perturb/" + std::to_string(r),
                                 (static_cast<std::uint64_t>(u.user) << 8) | static_cast<std::uint64_t>(p));
          int j = static_cast<int>(rng.uniform(2));
          if (j >= p) ++j;
          EXPECT_EQ(e.perturbation_path, j);
          EXPECT_EQ(e.perturbation_round, r - 1);
          ++n_perturbed;
        } else {
          EXPECT_EQ(e.perturbation_path, prev.perturbation_path);
          EXPECT_EQ(e.perturbation_round, prev.perturbation_round);
          n_kept_p += e.perturbation_path >= 0;
        }
      }
    }
  }
  EXPECT_GT(n_stalls, 0u);
  EXPECT_GT(n_kept_p, 0u);
  // The rule no longer fires on every non-improving round.
  EXPECT_LT(n_collapsed, loop.split.users.size() * 3 * 5);
  EXPECT_GT(n_effective, 0u);
  EXPECT_GT(n_collapsed, 0u);
  EXPECT_GT(n_perturbed, 0u);
  // The memory holds every round; the effective ones are the paper's memory.
  memory::Store store(dir / "m.sqlite");
  EXPECT_EQ(store.count(), rows.size());
  EXPECT_EQ(store.count({"", "", "", true}), n_effective);
  const auto best = store.best_per_user();
  ASSERT_EQ(best.size(), loop.split.users.size());
  for (const auto& b : best) {
    std::vector<memory::Entry> mine;
    for (const auto& e : rows)
      if (e.user == b.user) mine.push_back(e);
    const auto* want = optim::best_entry(mine);
    EXPECT_EQ(b.path, want->path);
    EXPECT_EQ(b.round, want->round);
    for (const auto& e : mine) EXPECT_LE(e.score, b.score);
  }
}

TEST(Optim, NoPerturbationWithoutOption) {
  test::TempDir dir("nop");
  Loop loop;
  optim::Options o;
  o.perturbation = false;
  for (const auto& e : loop.run(dir / "m.sqlite", o)) EXPECT_EQ(e.perturbation_path, -1);
  test::TempDir dir1("k1");
  Loop loop1;
  optim::Options o1;
  o1.paths = 1;
  for (const auto& e : loop1.run(dir1 / "m.sqlite", o1)) EXPECT_EQ(e.perturbation_path, -1);
}

TEST(Optim, SameSeedSameMemory) {
  test::TempDir dir("seed");
  optim::Options o;
  Loop a, b, c;
  a.run(dir / "a.sqlite", o);
  b.run(dir / "b.sqlite", o);
  o.seed = 99;
  c.run(dir / "c.sqlite", o);
  const auto dump = [](const std::filesystem::path& p) {
    std::string s;
    for (const auto& e : memory::Store(p).list()) s += memory::to_json(e) + "\n";
    return s;
  };
  EXPECT_EQ(dump(dir / "a.sqlite"), dump(dir / "b.sqlite"));
  EXPECT_NE(dump(dir / "a.sqlite"), dump(dir / "c.sqlite"));
}

TEST(Optim, BudgetIsSharedOverPaths) {
  for (const int k : {1, 2, 3}) {
    test::TempDir dir("budget" + std::to_string(k));
    Loop loop;
    optim::Options o;
    o.paths = k;
    o.budget = 9;  // the default K = 3 x R = 3: every K tries equally many demonstrations
    const auto rows = loop.run(dir / "m.sqlite", o);
    EXPECT_EQ(rows.size(), loop.split.users.size() * 9) << "K = " << k;
    std::map<int, int> per_path;
    for (const auto& e : rows)
      if (e.user == loop.split.users.front().user_id) ++per_path[e.path];
    for (int p = 0; p < k; ++p) EXPECT_EQ(per_path[p], 9 / k + (p < 9 % k ? 1 : 0)) << "K = " << k << " path " << p;
  }
  optim::Options bad;
  bad.paths = 3;
  bad.budget = 2;  // a path without a round
  Loop loop;
  test::TempDir bad_dir("budget-bad");
  memory::Store store(bad_dir / "m.sqlite");
  loop.gen = optim::make_template_generator(loop.ds);
  loop.icl = rec::make_llm_ranker(loop.ds, loop.backend, icl_options());
  EXPECT_THROW(optim::Optimiser(loop.ds, *loop.icl, *loop.gen, store, bad, "d", "v", "m"), OptionError);
}

TEST(Optim, FirstRoundIclShowsLrgdRoundZeroDemonstration) {
  // LRGD's memory: path 0, round 0 of every user.
  test::TempDir dir("first-round");
  Loop loop;
  optim::Options o;
  o.seed = 7;
  std::map<std::string, optim::Demo> round0;
  for (const auto& e : loop.run(dir / "m.sqlite", o))
    if (e.path == 0 && e.round == 0) round0[e.user] = optim::demo_from_json(loop.ds, e.demo);
  // ICL with the first-round demonstration, on the test queries of two trials.
  auto backend = test::rotating_backend();
  optim::FirstRoundIclOptions fo;
  fo.seed = 7;
  auto ranker = optim::make_first_round_icl_ranker(loop.ds, backend, icl_options(), proto(), fo);
  for (std::uint32_t trial = 0; trial < 2; ++trial) {
    auto po = proto();
    po.trial = trial;
    const auto split = protocol::prepare_split(loop.ds, po);
    std::vector<rec::Query> queries;
    for (const auto& u : split.users) {
      rec::Query q;
      q.user = u.user;
      q.trial = trial;
      q.history = u.test_history;
      q.candidates = u.test_candidates;
      q.target = u.test_target;
      q.demo_history = u.valid_history;  // what run_eval sets for icl; the ranker replaces it
      q.demo_target = u.valid_target;
      queries.push_back(std::move(q));
    }
    backend.clear_prompts();
    ranker->rank(queries);
    const auto texts = backend.prompts();
    ASSERT_EQ(texts.size(), queries.size());
    for (std::size_t i = 0; i < queries.size(); ++i) {
      const auto& d = round0.at(split.users[i].user_id);
      const auto& text = texts[i];
      EXPECT_NE(text.find("The next item the user interacted with was: " + rec::item_text(loop.ds, d.target)),
                std::string::npos)
          << text;
      EXPECT_NE(text.find("Reason: " + d.explanation), std::string::npos);
      EXPECT_EQ(test::demo_window(text), static_cast<int>(d.history.size()));
    }
  }
}

TEST(Optim, TemplateGeneratorReadsPreviousAndPerturbation) {
  const auto ds = test::tiny_dataset(30);
  auto po = proto(6);
  const auto split = protocol::prepare_split(ds, po);
  auto gen = optim::make_template_generator(ds);
  std::size_t n_perturb = 0, n_repeat_unscored = 0, n_requests = 0;
  for (const auto& u : split.users) {
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
      optim::GenerationRequest first;
      first.user = &u;
      first.seed = seed;
      const auto prev = gen->generate(std::span(&first, 1)).front().demo;
      if (prev.empty()) continue;
      // The same seed again, now told that this demonstration scored 0: never the same items.
      optim::GenerationRequest again = first;
      again.previous = &prev;
      again.previous_score = 0;
      const auto next = gen->generate(std::span(&again, 1)).front().demo;
      ++n_requests;
      if (next.history == prev.history && next.target == prev.target) ++n_repeat_unscored;
      // A perturbation from another path: some draws explore around it.
      optim::Demo p = prev;
      p.strategy = "recent w=3";
      optim::GenerationRequest pert = first;
      pert.perturbation = &p;
      const auto g = gen->generate(std::span(&pert, 1)).front().demo;
      if (g.strategy.starts_with("perturb+")) {
        ++n_perturb;
        EXPECT_EQ(g.target, p.target);
      }
    }
  }
  ASSERT_GT(n_requests, 100u);
  // A tiny history can leave no other window; otherwise the previous items are not repeated.
  EXPECT_LT(n_repeat_unscored, n_requests / 20);
  EXPECT_GT(n_perturb, n_requests / 4);
  EXPECT_LT(n_perturb, n_requests * 3 / 4);
}

eval::EvalConfig lrgd_config(const std::filesystem::path& memory_path, std::shared_ptr<optim::Cost> cost, int paths = 3,
                             int test_rounds = 0) {
  eval::EvalConfig c;
  c.method = rec::Method::Lrgd;
  c.protocol = proto(6);
  c.n_trials = 2;
  c.llm.constrain = true;
  optim::LrgdRankerOptions lo;
  lo.memory_path = memory_path;
  lo.variant = "test";
  lo.optim.seed = c.protocol.seed;
  lo.optim.paths = paths;
  lo.test_rounds = test_rounds;
  lo.cost_out = cost;
  c.method_config = optim::options_json(lo.optim);
  const auto protocol = c.protocol;
  c.ranker_factory = [lo, protocol](const data::Dataset& d, llm::Backend& b, const rec::LlmRankerOptions& icl) {
    return optim::make_lrgd_ranker(d, b, icl, protocol, lo);
  };
  c.summary_extra = [cost] { return optim::cost_json(*cost); };
  return c;
}

std::string dump_memory(const std::filesystem::path& p) {
  std::string s;
  for (const auto& e : memory::Store(p).list()) s += memory::to_json(e) + "\n";
  return s;
}

TEST(Optim, CrashAndResumeLoseNothing) {
  const auto ds = test::tiny_dataset(30);
  test::TempDir dir("resume");
  eval::RunOptions ro;
  ro.batch_size = 2;
  ro.progress = false;
  // Uninterrupted.
  auto cost_a = std::make_shared<optim::Cost>();
  auto ba = test::rotating_backend();
  ro.out = dir / "a";
  eval::run_eval(lrgd_config(dir / "a" / "memory.sqlite", cost_a), ds, &ba, ro);
  const int calls_a = ba.n_calls();
  EXPECT_EQ(cost_a->n_rounds_computed, 6u * 9u);
  // Crash in the middle of the optimisation of the second batch.
  auto cost_b = std::make_shared<optim::Cost>();
  auto crash = test::rotating_backend(5);
  ro.out = dir / "b";
  EXPECT_THROW(eval::run_eval(lrgd_config(dir / "b" / "memory.sqlite", cost_b), ds, &crash, ro), std::runtime_error);
  const auto rows_before = memory::Store(dir / "b" / "memory.sqlite").count();
  EXPECT_GT(rows_before, 0u);
  // Resume with a healthy backend.
  auto cost_c = std::make_shared<optim::Cost>();
  auto bc = test::rotating_backend();
  ro.resume = true;
  eval::run_eval(lrgd_config(dir / "b" / "memory.sqlite", cost_c), ds, &bc, ro);
  EXPECT_EQ(test::slurp(dir / "a" / "results.jsonl"), test::slurp(dir / "b" / "results.jsonl"));
  EXPECT_EQ(dump_memory(dir / "a" / "memory.sqlite"), dump_memory(dir / "b" / "memory.sqlite"));
  // Nothing stored before the crash was computed again.
  EXPECT_EQ(cost_c->n_rounds_resumed, rows_before);
  EXPECT_EQ(cost_c->n_rounds_computed + rows_before, 6u * 9u);
  EXPECT_EQ(crash.n_calls() + bc.n_calls(), calls_a);  // the crashed call never completed
  // summary.json carries the cost section.
  EXPECT_NE(test::slurp(dir / "a" / "summary.json").find("\"tokens_per_user\""), std::string::npos);
}

// LRGD before any feedback is ICL: one path, tested with its round-1 demonstration only,
// answers every (user, trial) as ICL with the first-round demonstration does.
TEST(Optim, LrgdTestedOnRoundOneEqualsFirstRoundIcl) {
  const auto ds = test::tiny_dataset(30);
  test::TempDir dir("round-one");
  eval::RunOptions ro;
  ro.progress = false;
  auto b1 = test::rotating_backend();
  auto b2 = test::rotating_backend();
  ro.out = dir / "lrgd";
  eval::run_eval(lrgd_config(dir / "lrgd" / "memory.sqlite", std::make_shared<optim::Cost>(), 1, 1), ds, &b1, ro);
  eval::EvalConfig icl = lrgd_config(dir / "unused.sqlite", std::make_shared<optim::Cost>());
  icl.method = rec::Method::Icl;
  icl.summary_extra = nullptr;
  optim::FirstRoundIclOptions fo;
  fo.seed = icl.protocol.seed;
  const auto protocol = icl.protocol;
  icl.ranker_factory = [fo, protocol](const data::Dataset& d, llm::Backend& b, const rec::LlmRankerOptions& o) {
    return optim::make_first_round_icl_ranker(d, b, o, protocol, fo);
  };
  ro.out = dir / "icl";
  eval::run_eval(icl, ds, &b2, ro);
  const auto ranks = [](const std::filesystem::path& f) {
    std::map<std::pair<int, std::string>, std::string> out;
    std::istringstream in(test::slurp(f));
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line);
      out[{j["trial"].get<int>(), j["user"].get<std::string>()}] =
          j["prompt_hash"].get<std::string>() + " " + j["ranking"].dump();
    }
    return out;
  };
  const auto a = ranks(dir / "lrgd" / "results.jsonl");
  EXPECT_EQ(a.size(), 6u * 2u);
  EXPECT_EQ(a, ranks(dir / "icl" / "results.jsonl"));
  // With every round and path, users whose best demonstration came later get other prompts.
  auto b3 = test::rotating_backend();
  ro.out = dir / "lrgd-all";
  eval::run_eval(lrgd_config(dir / "lrgd" / "memory.sqlite", std::make_shared<optim::Cost>(), 3, 0), ds, &b3, ro);
  const auto all = ranks(dir / "lrgd-all" / "results.jsonl");
  std::map<std::string, std::vector<memory::Entry>> rows;
  for (auto& e : memory::Store(dir / "lrgd" / "memory.sqlite").list()) rows[e.user].push_back(std::move(e));
  std::size_t n_later = 0;
  for (const auto& [key, text] : all) {
    const auto* best = optim::best_entry(rows.at(key.second));
    const bool later = best->round > 0 || best->path > 0;
    n_later += later;
    if (later)
      EXPECT_NE(text, a.at(key)) << key.second;
    else
      EXPECT_EQ(text, a.at(key)) << key.second;
  }
  EXPECT_GT(n_later, 0u);
}

}  // namespace
