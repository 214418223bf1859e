// run_eval / report_runs in-process: run directory, determinism, resume, refusal, report,
// and the baselines on the Games data.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <tuple>

#include "eval_test_util.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/eval.h"

namespace {

using namespace lrgd;
using nlohmann::json;

eval::EvalConfig small_config(rec::Method method, std::size_t n_users = 10, std::uint32_t n_trials = 2) {
  eval::EvalConfig c;
  c.method = method;
  c.protocol.n_users = n_users;
  c.protocol.n_candidates = 20;
  c.n_trials = n_trials;
  c.llm.constrain = true;
  return c;
}

eval::RunOptions quiet(const std::filesystem::path& out, std::size_t batch = 4) {
  eval::RunOptions o;
  o.out = out;
  o.batch_size = batch;
  o.progress = false;
  o.fsync_interval_s = 0;
  return o;
}

std::size_t count_lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

// Answers that name no candidate.
test::FakeBackend garbage_backend() {
  test::FakeBehaviour b;
  b.id = "garbage";
  b.answer = [](const test::Ask&) {
    llm::Generation g;
    g.text = "I would rather not say. Try [99] Unknown Game.";
    return g;
  };
  return test::FakeBackend(std::move(b));
}

TEST(EvalRun, WritesTheRunDirectory) {
  const auto ds = test::tiny_dataset();
  test::TempDir dir("files");
  auto backend = test::hashed_answers_backend();
  const auto r = eval::run_eval(small_config(rec::Method::Zsl), ds, &backend, quiet(dir.path()));
  EXPECT_EQ(r.n_records, 20u);
  EXPECT_EQ(r.n_computed, 20u);
  const auto results = test::slurp(dir / "results.jsonl");
  EXPECT_EQ(count_lines(results), 20u);
  const auto first = json::parse(results.substr(0, results.find('\n')));
  for (const char* k : {"trial", "draw", "user", "target", "prompt_hash", "raw_answer", "ranking", "target_rank",
                        "metrics", "n_prompt_tokens", "n_generated_tokens", "valid", "n_hallucinated"})
    EXPECT_TRUE(first.contains(k)) << k;
  EXPECT_TRUE(first["metrics"].contains("ndcg@10"));
  EXPECT_FALSE(results.find("_ms") != std::string::npos || results.find("time") != std::string::npos);

  const auto config = json::parse(test::slurp(dir / "config.json"));
  EXPECT_EQ(config["model"]["id"], "scripted:v1");
  EXPECT_EQ(config["dataset"]["hash"], "tiny");
  EXPECT_EQ(config["config_hash"].get<std::string>().size(), 64u);
  EXPECT_EQ(config["seeds"]["generation_per_trial"].size(), 2u);
  EXPECT_FALSE(config["lrgd_version"].get<std::string>().empty());

  const auto summary = json::parse(test::slurp(dir / "summary.json"));
  for (const char* k : {"ndcg@1", "ndcg@5", "ndcg@10", "recall@1", "recall@5", "recall@10", "mrr@10"}) {
    ASSERT_TRUE(summary["metrics"].contains(k)) << k;
    EXPECT_EQ(summary["metrics"][k]["per_trial"].size(), 2u);
    EXPECT_TRUE(summary["metrics"][k].contains("ci_low"));
  }
  EXPECT_EQ(summary["valid_output_rate"], 1.0);
  EXPECT_TRUE(summary.contains("time_in_model_s"));
  EXPECT_TRUE(summary.contains("time_outside_model_s"));
  EXPECT_EQ(summary["backend"]["n_requests"], 20);
  const auto table = test::slurp(dir / "table.md");
  EXPECT_NE(table.find("| Method | nDCG@1 | nDCG@5 | nDCG@10 | Recall@1 | Recall@5 | Recall@10 | MRR@10 |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| ZSL |"), std::string::npos) << table;
}

// summary.json recomputed from results.jsonl by plain code: per-trial means of each record's
// metric, the mean and sample standard deviation over trials, the 95% t interval, and
// nDCG@10 / Recall@10 of each record from its target rank alone.
TEST(EvalRun, SummaryIsRecomputedFromResults) {
  const auto ds = test::tiny_dataset();
  test::TempDir dir("recompute");
  eval::run_eval(small_config(rec::Method::Markov, 30, 3), ds, nullptr, quiet(dir.path()));
  std::map<std::string, std::vector<std::vector<double>>> values;  // metric -> trial -> record values
  std::istringstream in(test::slurp(dir / "results.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const auto rec = json::parse(line);
    const auto trial = rec["trial"].get<std::size_t>();
    for (const auto& [k, v] : rec["metrics"].items()) {
      auto& per_trial = values[k];
      if (per_trial.size() <= trial) per_trial.resize(trial + 1);
      per_trial[trial].push_back(v.get<double>());
    }
    const double rank = rec["target_rank"].is_null() ? 1e9 : rec["target_rank"].get<double>();
    EXPECT_DOUBLE_EQ(rec["metrics"]["ndcg@10"].get<double>(), rank <= 10 ? 1.0 / std::log2(rank + 1) : 0.0);
    EXPECT_DOUBLE_EQ(rec["metrics"]["recall@10"].get<double>(), rank <= 10 ? 1.0 : 0.0);
  }
  const auto summary = json::parse(test::slurp(dir / "summary.json"));
  ASSERT_EQ(values.size(), summary["metrics"].size());
  for (const auto& [k, per_trial] : values) {
    const auto& m = summary["metrics"][k];
    ASSERT_EQ(per_trial.size(), 3u) << k;
    std::vector<double> means;
    for (const auto& v : per_trial) {
      EXPECT_EQ(v.size(), 30u);
      means.push_back(std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()));
    }
    const double mean = std::accumulate(means.begin(), means.end(), 0.0) / static_cast<double>(means.size());
    double ss = 0;
    for (const double x : means) ss += (x - mean) * (x - mean);
    const double sd = std::sqrt(ss / 2);
    for (std::size_t t = 0; t < 3; ++t) EXPECT_NEAR(m["per_trial"][t].get<double>(), means[t], 1e-12) << k;
    EXPECT_NEAR(m["mean"].get<double>(), mean, 1e-12) << k;
    EXPECT_NEAR(m["std"].get<double>(), sd, 1e-12) << k;
    const double half = 4.302652729911275 * sd / std::sqrt(3.0);  // t(0.975, 2 df)
    EXPECT_NEAR(m["ci_low"].get<double>(), mean - half, 1e-9) << k;
    EXPECT_NEAR(m["ci_high"].get<double>(), mean + half, 1e-9) << k;
  }
}

TEST(EvalRun, SameSeedGivesByteIdenticalResults) {
  const auto ds = test::tiny_dataset();
  test::TempDir a("same-a"), b("same-b"), c("same-c");
  for (auto method : {rec::Method::Icl, rec::Method::Random}) {
    auto b1 = test::hashed_answers_backend();
    auto b2 = test::hashed_answers_backend();
    eval::run_eval(small_config(method), ds, &b1, quiet(a.path(), 4));
    eval::run_eval(small_config(method), ds, &b2, quiet(b.path(), 7));  // other batching, same bytes
    EXPECT_EQ(test::slurp(a / "results.jsonl"), test::slurp(b / "results.jsonl"));
    EXPECT_EQ(test::slurp(a / "config.json"), test::slurp(b / "config.json"));
    // Another seed draws other users/candidates.
    auto other = small_config(method);
    other.protocol.seed = 7;
    auto b3 = test::hashed_answers_backend();
    eval::run_eval(other, ds, &b3, quiet(c.path()));
    EXPECT_NE(test::slurp(a / "results.jsonl"), test::slurp(c / "results.jsonl"));
    for (const auto* d : {&a, &b, &c}) std::filesystem::remove_all(d->path());
  }
}

TEST(EvalRun, ResumeAfterTornLastLineGivesTheSameFile) {
  const auto ds = test::tiny_dataset();
  test::TempDir full("full"), cut("cut");
  auto b1 = test::hashed_answers_backend();
  eval::run_eval(small_config(rec::Method::Zsl), ds, &b1, quiet(full.path()));
  const std::string want = test::slurp(full / "results.jsonl");

  // An interrupted run: config.json, 7 complete lines, half of the 8th.
  std::filesystem::create_directories(cut.path());
  std::filesystem::copy_file(full / "config.json", cut / "config.json");
  std::size_t pos = 0;
  for (int i = 0; i < 7; ++i) pos = want.find('\n', pos) + 1;
  const std::size_t half = pos + (want.find('\n', pos) - pos) / 2;
  std::ofstream(cut / "results.jsonl", std::ios::binary) << want.substr(0, half);

  auto b2 = test::hashed_answers_backend();
  auto opts = quiet(cut.path());
  EXPECT_THROW(eval::run_eval(small_config(rec::Method::Zsl), ds, &b2, opts), OptionError);  // no --resume
  opts.resume = true;
  const auto r = eval::run_eval(small_config(rec::Method::Zsl), ds, &b2, opts);
  EXPECT_EQ(r.n_resumed, 7u);
  EXPECT_EQ(r.n_computed, 13u);
  EXPECT_EQ(b2.usage().n_requests, 13u);  // nothing done is asked again
  EXPECT_EQ(test::slurp(cut / "results.jsonl"), want);
  const auto summary = json::parse(test::slurp(cut / "summary.json"));
  EXPECT_EQ(summary["torn_line_dropped"], true);
  EXPECT_EQ(summary["n_resumed"], 7);

  // Resuming a finished run computes nothing and keeps the bytes.
  auto b3 = test::hashed_answers_backend();
  const auto again = eval::run_eval(small_config(rec::Method::Zsl), ds, &b3, opts);
  EXPECT_EQ(again.n_computed, 0u);
  EXPECT_EQ(b3.usage().n_requests, 0u);
  EXPECT_EQ(test::slurp(cut / "results.jsonl"), want);
}

// A damaged record inside results.jsonl (a field of the wrong type or out of range) is an
// InputError naming the line and field, never a JSON library exception.
TEST(EvalRun, DamagedRecordFieldsAreNamedOnResume) {
  const auto ds = test::tiny_dataset();
  test::TempDir dir("damaged");
  auto b1 = test::hashed_answers_backend();
  eval::run_eval(small_config(rec::Method::Zsl), ds, &b1, quiet(dir.path()));
  const std::string good = test::slurp(dir / "results.jsonl");
  for (const auto& [from, to, field, what] :
       {std::tuple<std::string, std::string, std::string, std::string>{
            "\"target_rank\":", "\"target_rank\":\"x\",\"was\":", "target_rank", "expected an integer, found string"},
        {"\"n_duplicates\":", "\"n_duplicates\":9999999999,\"was\":", "n_duplicates",
         "expected an integer, found 9999999999"},
        {"\"n_hallucinated\":", "\"was_n_hallucinated\":", "n_hallucinated", "missing"},
        {"\"user\":", "\"user\":12,\"was\":", "user", "expected a string, found 12"}}) {
    // Damage the third line (not the last: that one may be a torn write).
    std::size_t pos = good.find('\n', good.find('\n') + 1) + 1;
    std::string bad = good;
    bad.replace(bad.find(from, pos), from.size(), to);
    std::ofstream(dir / "results.jsonl", std::ios::binary) << bad;
    auto b2 = test::hashed_answers_backend();
    auto opts = quiet(dir.path());
    opts.resume = true;
    try {
      eval::run_eval(small_config(rec::Method::Zsl), ds, &b2, opts);
      ADD_FAILURE() << "no error for " << field;
    } catch (const InputError& e) {
      EXPECT_EQ(e.line(), 3u);
      EXPECT_EQ(e.field(), field);
      // The message names file:line and the field too (what a user reads).
      const std::string text = e.what();
      EXPECT_NE(text.find("results.jsonl:3: field '" + field + "': " + what), std::string::npos) << text;
    }
  }
}

TEST(EvalRun, RefusesToResumeAnotherConfiguration) {
  const auto ds = test::tiny_dataset();
  test::TempDir dir("refuse");
  auto b = test::hashed_answers_backend();
  eval::run_eval(small_config(rec::Method::Zsl), ds, &b, quiet(dir.path()));
  auto opts = quiet(dir.path());
  opts.resume = true;
  auto changed = small_config(rec::Method::Zsl, 12);
  try {
    eval::run_eval(changed, ds, &b, opts);
    FAIL() << "resumed a different configuration";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("protocol"), std::string::npos) << e.what();
  }
  // Runtime knobs are not part of the configuration.
  auto knobs = small_config(rec::Method::Zsl);
  knobs.runtime["threads"] = "3";
  EXPECT_NO_THROW(eval::run_eval(knobs, ds, &b, opts));
  // --overwrite starts over.
  opts.resume = false;
  opts.overwrite = true;
  const auto r = eval::run_eval(changed, ds, &b, opts);
  EXPECT_EQ(r.n_records, 24u);
  // LLM methods need a backend.
  EXPECT_THROW(eval::run_eval(changed, ds, nullptr, opts), OptionError);
}

// --repeats keep: a user may have an item several times, the test target among them. Every
// method ranks such users; the candidates never hold an item the user had.
TEST(EvalRun, RepeatedItemsInSequences) {
  auto ds = test::tiny_dataset();
  for (auto& seq : ds.sequences) {
    seq.push_back(seq[1]);  // the validation target repeats an earlier item
    seq.push_back(seq[0]);  // so does the test target
    seq.insert(seq.begin() + 3, seq[2]);
  }
  for (const auto m :
       {rec::Method::Zsl, rec::Method::Icl, rec::Method::Pop, rec::Method::Markov, rec::Method::Random}) {
    SCOPED_TRACE(rec::method_name(m));
    test::TempDir dir("repeats");
    auto backend = test::hashed_answers_backend();
    const bool llm = rec::needs_llm(m);
    const auto r = eval::run_eval(small_config(m), ds, llm ? &backend : nullptr, quiet(dir.path()));
    EXPECT_EQ(r.n_records, 20u);
    const auto results = test::slurp(dir / "results.jsonl");
    for (std::size_t p = 0; p < results.size();) {
      const auto nl = results.find('\n', p);
      const auto j = json::parse(results.substr(p, nl - p));
      p = nl + 1;
      const auto u = static_cast<std::size_t>(data::find_user(ds, j["user"].get<std::string>()));
      EXPECT_EQ(j["target"], ds.items[static_cast<std::size_t>(ds.sequences[u].back())].id);
    }
  }
}

TEST(EvalRun, InvalidAnswersAreMissesNotDropped) {
  const auto ds = test::tiny_dataset();
  test::TempDir dir("invalid");
  auto b = garbage_backend();
  const auto r = eval::run_eval(small_config(rec::Method::Zsl), ds, &b, quiet(dir.path()));
  EXPECT_EQ(r.n_records, 20u);
  EXPECT_EQ(r.valid_output_rate, 0.0);
  EXPECT_EQ(r.summaries.at(2).mean, 0.0);  // ndcg@10
  const auto summary = json::parse(test::slurp(dir / "summary.json"));
  EXPECT_EQ(summary["n_invalid"], 20);
  EXPECT_EQ(summary["hallucinations"]["n_records"], 20);
}

// eval::evaluate is run_eval's loop in memory: the same rankers on the same protocol give
// each record's target rank and the summary's per-trial means, whatever the batching.
TEST(EvalMemory, MatchesRunEvalForEachRanker) {
  const auto ds = test::tiny_dataset();
  for (auto method : {rec::Method::Markov, rec::Method::Zsl, rec::Method::Icl}) {
    test::TempDir dir("memory");
    auto run_backend = test::hashed_answers_backend();
    auto config = small_config(method, 20, 1);
    config.protocol.n_candidates = 20;
    eval::run_eval(config, ds, rec::needs_llm(method) ? &run_backend : nullptr, quiet(dir.path(), 4));
    std::vector<int> run_ranks;
    std::vector<std::string> run_users;
    std::istringstream in(test::slurp(dir / "results.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const auto r = json::parse(line);
      run_ranks.push_back(r["target_rank"].is_null() ? metrics::kNotRanked : r["target_rank"].get<int>());
      run_users.push_back(r["user"].get<std::string>());
    }
    const auto summary = json::parse(test::slurp(dir / "summary.json"));

    auto backend = test::hashed_answers_backend();
    std::unique_ptr<rec::Ranker> ranker;
    if (rec::needs_llm(method)) {
      rec::LlmRankerOptions lo;
      lo.method = method;
      lo.constrain = true;
      ranker = rec::make_llm_ranker(ds, backend, lo);
    } else {
      baselines::BaselineOptions bo;
      bo.seed = config.protocol.seed;
      ranker = rec::make_baseline_ranker(ds, method, bo, config.list_length);
    }
    eval::MemoryEvalOptions mo;
    mo.protocol = config.protocol;
    mo.protocol.trial = 0;
    mo.demonstration = method == rec::Method::Icl ? eval::DemoSource::ValidWindow : eval::DemoSource::None;
    mo.batch_size = 7;
    const std::vector<eval::NamedRanker> rankers{{"it", ranker.get()}};
    const auto r = eval::evaluate(ds, rankers, mo);
    ASSERT_EQ(r.rankers.size(), 1u);
    EXPECT_EQ(r.users, run_users) << rec::method_name(method);
    EXPECT_EQ(r.rankers[0].target_ranks, run_ranks) << rec::method_name(method);
    EXPECT_EQ(r.rankers[0].n_failed, 0u);
    ASSERT_EQ(r.rankers[0].means.size(), mo.metrics.size());
    for (std::size_t m = 0; m < mo.metrics.size(); ++m)
      EXPECT_EQ(r.rankers[0].means[m], summary["metrics"][mo.metrics[m].key()]["per_trial"][0].get<double>())
          << rec::method_name(method) << " " << mo.metrics[m].key();
  }
}

// The queries of the validation phase and the last-step demonstration.
TEST(EvalMemory, QueriesOfEachPhaseAndDemonstration) {
  protocol::PreparedUser u;
  u.user = 3;
  u.valid_history = {1, 2};
  u.valid_target = 5;
  u.valid_candidates = {5, 9};
  u.test_history = {1, 2, 5};
  u.test_target = 6;
  u.test_candidates = {7, 6};
  const auto t = eval::make_query(u, 2, eval::Phase::Test, eval::DemoSource::ValidWindow);
  EXPECT_EQ(t.trial, 2u);
  EXPECT_EQ(t.history, u.test_history);
  EXPECT_EQ(t.target, 6);
  EXPECT_EQ(t.demo_history, u.valid_history);
  EXPECT_EQ(t.demo_target, 5);
  const auto v = eval::make_query(u, 0, eval::Phase::Valid, eval::DemoSource::LastStep);
  EXPECT_EQ(v.history, u.valid_history);
  EXPECT_EQ(v.candidates, u.valid_candidates);
  EXPECT_EQ(v.target, 5);
  EXPECT_EQ(v.demo_history, std::vector<data::ItemIndex>{1});
  EXPECT_EQ(v.demo_target, 2);
  u.valid_history = {1};
  const auto one = eval::make_query(u, 0, eval::Phase::Valid, eval::DemoSource::LastStep);
  EXPECT_TRUE(one.demo_history.empty());
  EXPECT_EQ(one.demo_target, data::kNoItem);
  rec::Ranked ranked;
  ranked.ranking = {1, 0};
  EXPECT_EQ(eval::target_rank(t, ranked), 1);
  ranked.ranking = {0};
  EXPECT_EQ(eval::target_rank(t, ranked), metrics::kNotRanked);
}

TEST(EvalReport, ComparesRunsWithSignificance) {
  const auto ds = test::tiny_dataset(60);
  test::TempDir root("report");
  for (auto m : {rec::Method::Random, rec::Method::Markov}) {
    eval::run_eval(small_config(m, 50, 3), ds, nullptr, quiet(root / std::string(rec::method_name(m))));
  }
  const std::vector<std::filesystem::path> runs{root / "random", root / "markov"};
  const auto rep = eval::report_runs(runs);
  EXPECT_NE(rep.markdown.find("| Random |"), std::string::npos) << rep.markdown;
  EXPECT_NE(rep.markdown.find("| Markov |"), std::string::npos) << rep.markdown;
  const auto j = json::parse(rep.json);
  ASSERT_EQ(j["runs"].size(), 2u);
  EXPECT_EQ(j["runs"][1]["n_pairs"], 150);
  EXPECT_TRUE(j["runs"][1]["metrics"]["ndcg@10"].contains("t_p"));
  EXPECT_TRUE(j["runs"][1]["metrics"]["ndcg@10"].contains("wilcoxon_p"));
  EXPECT_FALSE(j["runs"][0]["metrics"]["ndcg@10"].contains("t_p"));
  EXPECT_THROW(eval::report_runs(std::vector<std::filesystem::path>{root / "none"}), IoError);
}

TEST(EvalGames, PopAndMarkovBeatRandom) {
  const auto path = std::filesystem::path(LRGD_SHARED_DATA_DIR) / "amazon18-games";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no Games data at " << path;
  const auto ds = data::load_dataset(path);
  test::TempDir root("games");
  std::map<std::string, double> ndcg;
  for (auto m : {rec::Method::Random, rec::Method::Pop, rec::Method::Markov}) {
    eval::EvalConfig c;
    c.method = m;
    c.protocol.n_users = 300;
    c.n_trials = 3;
    const auto r = eval::run_eval(c, ds, nullptr, quiet(root / std::string(rec::method_name(m)), 64));
    ASSERT_EQ(r.n_records, 900u);
    ndcg[std::string(rec::method_name(m))] = r.summaries.at(2).mean;
  }
  EXPECT_NEAR(ndcg["random"], 0.0909, 0.03);  // E[nDCG@10] of a random order of 50
  EXPECT_GT(ndcg["pop"], ndcg["random"] + 0.1);
  EXPECT_GT(ndcg["markov"], ndcg["random"] + 0.1);
  const std::vector<std::filesystem::path> runs{root / "random", root / "pop", root / "markov"};
  const auto j = json::parse(eval::report_runs(runs).json);
  EXPECT_EQ(j["runs"][1]["metrics"]["ndcg@10"]["marker"], "*");
  EXPECT_EQ(j["runs"][2]["metrics"]["ndcg@10"]["marker"], "*");
}

}  // namespace
