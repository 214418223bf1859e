// The evaluation protocol: split, sampling, candidate sets, the prepared split file.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "data_test_util.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/protocol.h"

namespace lrgd::protocol {
namespace {

using data::Dataset;
using test::fixture;
using test::TempDir;

Dataset tiny() {
  data::LoadOptions o;
  o.kcore = 0;
  return data::load_dataset(fixture("lcrec"), o);
}

// n_users users over n_items items; user u has items (u*7 + 3k) mod n_items, k < 3 + u % 5.
Dataset synthetic(std::size_t n_users, std::size_t n_items) {
  Dataset ds;
  ds.name = "synthetic";
  for (std::size_t i = 0; i < n_items; ++i)
    ds.items.push_back(data::Item{std::to_string(i), "t" + std::to_string(i), "", "", ""});
  for (std::size_t u = 0; u < n_users; ++u) {
    ds.user_ids.push_back("u" + std::to_string(u));
    std::vector<ItemIndex> seq;
    for (std::size_t k = 0; k < 3 + u % 5; ++k) {
      const auto item = static_cast<ItemIndex>((u * 7 + 3 * k) % n_items);
      if (std::find(seq.begin(), seq.end(), item) == seq.end()) seq.push_back(item);
    }
    ds.sequences.push_back(seq);
  }
  ds.content_hash = data::compute_content_hash(ds);
  return ds;
}

TEST(Split, LeaveOneOut) {
  const std::vector<ItemIndex> seq{10, 11, 12, 13, 14, 15};
  auto s = split_leave_one_out(seq, 20);
  EXPECT_EQ(s.valid_history, (std::vector<ItemIndex>{10, 11, 12, 13}));
  EXPECT_EQ(s.valid_target, 14);
  EXPECT_EQ(s.test_history, (std::vector<ItemIndex>{10, 11, 12, 13, 14}));
  EXPECT_EQ(s.test_target, 15);
  s = split_leave_one_out(seq, 2);
  EXPECT_EQ(s.valid_history, (std::vector<ItemIndex>{12, 13}));
  EXPECT_EQ(s.test_history, (std::vector<ItemIndex>{13, 14}));
  s = split_leave_one_out(seq, 0);
  EXPECT_EQ(s.test_history.size(), 5u);
  const std::vector<ItemIndex> three{1, 2, 3};
  s = split_leave_one_out(three, 20);
  EXPECT_EQ(s.valid_history, (std::vector<ItemIndex>{1}));
  const std::vector<ItemIndex> two{1, 2};
  EXPECT_THROW(split_leave_one_out(two, 20), std::invalid_argument);
  EXPECT_EQ(truncate_history(seq, 3).size(), 3u);
  EXPECT_EQ(truncate_history(seq, 3)[0], 13);
}

TEST(Sampling, UsersAreADeterministicUniformDraw) {
  std::vector<UserIndex> eligible(500);
  for (std::size_t i = 0; i < eligible.size(); ++i) eligible[i] = static_cast<UserIndex>(2 * i);
  const auto a = sample_users(eligible, 100, 42);
  EXPECT_EQ(a, sample_users(eligible, 100, 42));
  EXPECT_NE(a, sample_users(eligible, 100, 43));
  EXPECT_EQ(std::set<UserIndex>(a.begin(), a.end()).size(), 100u);
  for (const auto u : a) EXPECT_EQ(u % 2, 0);
  // Prefix property: the first 30 of a draw of 100 are the draw of 30.
  const auto b = sample_users(eligible, 30, 42);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), a.begin()));
  EXPECT_EQ(sample_users(eligible, 0, 1).size(), 500u);
  EXPECT_EQ(sample_users(eligible, 9999, 1).size(), 500u);
  // Roughly uniform: over many seeds every user is drawn about 100/500 of the time.
  std::map<UserIndex, int> hits;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    for (const auto u : sample_users(eligible, 100, seed)) ++hits[u];
  }
  for (const auto& [u, n] : hits) {
    EXPECT_GT(n, 40) << u;  // expected 80
    EXPECT_LT(n, 130) << u;
  }
  // Fixed values: the draw must not change across machines or library versions.
  const std::vector<UserIndex> ten{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(sample_users(ten, 4, 42), (std::vector<UserIndex>{5, 2, 1, 9}));
}

void expect_valid_candidates(const Dataset& ds, UserIndex user, ItemIndex target, const std::vector<ItemIndex>& c,
                             std::size_t n) {
  ASSERT_EQ(c.size(), n);
  EXPECT_EQ(std::set<ItemIndex>(c.begin(), c.end()).size(), n) << "duplicates";
  EXPECT_EQ(std::count(c.begin(), c.end(), target), 1);
  const auto& seq = ds.sequences[static_cast<std::size_t>(user)];
  for (const ItemIndex i : c) {
    if (i == target) continue;
    EXPECT_EQ(std::find(seq.begin(), seq.end(), i), seq.end()) << "negative " << i << " was interacted with";
    EXPECT_GE(i, 0);
    EXPECT_LT(static_cast<std::size_t>(i), ds.n_items());
  }
}

TEST(Sampling, UniformCandidates) {
  const Dataset ds = synthetic(300, 120);
  CandidateSampler sampler(ds, NegativeSampling::UniformUnseen);
  std::map<ItemIndex, int> position_of_target;
  for (UserIndex u = 0; u < 300; ++u) {
    const auto& seq = ds.sequences[static_cast<std::size_t>(u)];
    Rng rng = candidate_rng(1, Phase::Test, u, 0);
    const auto c = sampler.sample(u, seq.back(), 50, rng);
    expect_valid_candidates(ds, u, seq.back(), c, 50);
    ++position_of_target[static_cast<ItemIndex>(std::find(c.begin(), c.end(), seq.back()) - c.begin())];
    Rng again = candidate_rng(1, Phase::Test, u, 0);
    EXPECT_EQ(c, sampler.sample(u, seq.back(), 50, again));
    Rng other = candidate_rng(1, Phase::Test, u, 1);
    EXPECT_NE(c, sampler.sample(u, seq.back(), 50, other));
  }
  EXPECT_GT(position_of_target.size(), 30u);  // shuffled: the target is not at a fixed place
  // All but the user's items are needed: exact.
  Rng rng(3);
  const auto all = sampler.sample(0, ds.sequences[0].back(), 120 - ds.sequences[0].size() + 1, rng);
  EXPECT_EQ(all.size(), 120 - ds.sequences[0].size() + 1);
  Rng rng2(3);
  EXPECT_THROW(sampler.sample(0, ds.sequences[0].back(), 120, rng2), std::invalid_argument);
}

TEST(Sampling, PopularityCandidatesFollowCounts) {
  // Items 0..9 are in every sequence of users 1..; user 0 never saw them.
  Dataset ds;
  for (int i = 0; i < 200; ++i) ds.items.push_back(data::Item{std::to_string(i), "", "", "", ""});
  ds.user_ids.push_back("probe");
  ds.sequences.push_back({100, 101, 102});
  for (int u = 0; u < 50; ++u) {
    ds.user_ids.push_back("u" + std::to_string(u));
    std::vector<ItemIndex> seq;
    for (int i = 0; i < 10; ++i) seq.push_back(i);
    seq.push_back(static_cast<ItemIndex>(103 + u));
    ds.sequences.push_back(seq);
  }
  CandidateSampler pop(ds, NegativeSampling::Popularity);
  CandidateSampler uni(ds, NegativeSampling::UniformUnseen);
  int pop_hits = 0, uni_hits = 0;
  for (std::uint32_t t = 0; t < 200; ++t) {
    Rng r1 = candidate_rng(5, Phase::Valid, 0, t);
    Rng r2 = candidate_rng(5, Phase::Valid, 0, t);
    for (const ItemIndex i : pop.sample(0, 102, 11, r1)) pop_hits += i < 10 ? 1 : 0;
    for (const ItemIndex i : uni.sample(0, 102, 11, r2)) uni_hits += i < 10 ? 1 : 0;
  }
  // Popular items hold 500 of 553 interactions: about 8 of every 10 negatives are popular
  // (draws are without replacement), against 10/197 of them under uniform sampling.
  EXPECT_GT(pop_hits, 1500);
  EXPECT_LT(uni_hits, 200);
  // A user who saw every popular item: rejections pile up and the exact fallback draws.
  for (UserIndex u = 1; u < 5; ++u) {
    Rng r = candidate_rng(5, Phase::Test, u, 0);
    const auto c = pop.sample(u, ds.sequences[static_cast<std::size_t>(u)].back(), 50, r);
    expect_valid_candidates(ds, u, ds.sequences[static_cast<std::size_t>(u)].back(), c, 50);
  }
}

TEST(Sampling, FixedCandidates) {
  const Dataset ds = tiny();  // u1 has a1..a4 (indices 0..3)
  CandidateSampler sampler(ds, NegativeSampling::UniformUnseen);
  const std::vector<ItemIndex> fixed{0, 5, 5, 2, 6, 7, 4};
  std::size_t skipped = 0;
  Rng rng(1);
  auto c = sampler.from_fixed(0, 3, fixed, 4, rng, skipped);
  std::sort(c.begin(), c.end());
  EXPECT_EQ(c, (std::vector<ItemIndex>{3, 5, 6, 7}));
  EXPECT_EQ(skipped, 3u);  // 0 (seen), 5 again, 2 (seen)
  EXPECT_TRUE(sampler.from_fixed(0, 3, fixed, 6, rng, skipped).empty());
}

TEST(Prepare, TinyDatasetEndToEnd) {
  const Dataset ds = tiny();
  ProtocolOptions o;
  o.n_candidates = 4;
  o.n_users = 3;
  o.max_history = 2;
  const PreparedSplit split = prepare_split(ds, o);
  EXPECT_EQ(split.data_hash, ds.content_hash);
  EXPECT_EQ(split.n_eligible, 4u);
  ASSERT_EQ(split.users.size(), 3u);
  for (const auto& u : split.users) {
    const auto& seq = ds.sequences[static_cast<std::size_t>(u.user)];
    EXPECT_EQ(u.user_id, ds.user_ids[static_cast<std::size_t>(u.user)]);
    EXPECT_EQ(u.test_target, seq.back());
    EXPECT_EQ(u.valid_target, seq[seq.size() - 2]);
    EXPECT_LE(u.valid_history.size(), 2u);
    EXPECT_EQ(u.test_history.back(), u.valid_target);
    expect_valid_candidates(ds, u.user, u.valid_target, u.valid_candidates, 4);
    expect_valid_candidates(ds, u.user, u.test_target, u.test_candidates, 4);
  }
  // u3 has 5 of the 8 items: 3 negatives at most.
  o.n_candidates = 5;
  EXPECT_EQ(prepare_split(ds, o).n_eligible, 3u);
  EXPECT_EQ(test::find_issue(prepare_split(ds, o).issues, "too_few_negatives")->count, 1u);
  o.n_candidates = 1;
  EXPECT_THROW(prepare_split(ds, o), OptionError);
  o.n_candidates = 9;
  EXPECT_THROW(prepare_split(ds, o), OptionError);
  EXPECT_THROW(parse_negatives("zipf"), OptionError);
}

std::string serialise(const PreparedSplit& s) {
  std::ostringstream os;
  write_prepared_split(s, os);
  return os.str();
}

TEST(Prepare, ByteIdenticalAndGolden) {
  const Dataset ds = synthetic(2000, 300);
  ProtocolOptions o;
  o.n_users = 100;
  const std::string a = serialise(prepare_split(ds, o));
  EXPECT_EQ(a, serialise(prepare_split(ds, o)));
  // The digest of this output is fixed: any change of Rng, of the sampling order or of the
  // file format shows here (and would break reproducibility across machines).
  // The scheme's name changed from "uniform" to "uniform-unseen" (issue 14); nothing else did.
  EXPECT_EQ(sha256_hex(test::replace_first(a, "\"negatives\":\"uniform-unseen\"", "\"negatives\":\"uniform\"")),
            "b938036a334d37306fcc189020e67d9ef504ba07cd48379d1b37fe8be45b2bc0");
  o.trial = 1;
  const std::string b = serialise(prepare_split(ds, o));
  EXPECT_NE(a, b);
  // Same users for another trial; only candidates differ.
  const auto sa = prepare_split(ds, ProtocolOptions{});
  o.n_users = 1000;
  const auto sb = prepare_split(ds, o);
  ASSERT_EQ(sa.users.size(), sb.users.size());
  for (std::size_t k = 0; k < sa.users.size(); ++k) {
    EXPECT_EQ(sa.users[k].user, sb.users[k].user);
    EXPECT_EQ(sa.users[k].test_history, sb.users[k].test_history);
  }
  o.negatives = NegativeSampling::Popularity;
  EXPECT_NE(serialise(prepare_split(ds, o)), b);
}

TEST(Prepare, WriteReadRoundTrip) {
  const Dataset ds = synthetic(400, 200);
  ProtocolOptions o;
  o.n_users = 50;
  o.seed = 18446744073709551615ull;
  o.trial = 3;
  o.negatives = NegativeSampling::Popularity;
  const PreparedSplit split = prepare_split(ds, o);
  TempDir dir("prepared");
  write_prepared_split(split, dir / "split.jsonl");
  const PreparedSplit back = read_prepared_split(dir / "split.jsonl");
  EXPECT_EQ(back.data_hash, split.data_hash);
  EXPECT_EQ(back.options.seed, o.seed);
  EXPECT_EQ(back.options.trial, 3u);
  EXPECT_EQ(back.options.negatives, NegativeSampling::Popularity);
  EXPECT_EQ(back.n_eligible, split.n_eligible);
  ASSERT_EQ(back.users.size(), 50u);
  for (std::size_t k = 0; k < 50; ++k) {
    EXPECT_EQ(back.users[k].user, split.users[k].user);
    EXPECT_EQ(back.users[k].valid_candidates, split.users[k].valid_candidates);
    EXPECT_EQ(back.users[k].test_history, split.users[k].test_history);
  }
  EXPECT_EQ(serialise(back), serialise(split));
  check_prepared_split(back, ds, "split.jsonl");
  const Dataset other = synthetic(401, 200);
  EXPECT_THROW(check_prepared_split(back, other, "split.jsonl"), InputError);
}

TEST(Prepare, ReadErrorsNameLineAndField) {
  TempDir dir("badsplit");
  auto expect_error = [&](const std::string& text, std::uint64_t line, const std::string& field) {
    test::write_file(dir / "s.jsonl", text);
    try {
      read_prepared_split(dir / "s.jsonl");
      FAIL() << "expected InputError for " << text;
    } catch (const InputError& e) {
      EXPECT_EQ(e.line(), line) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
    }
  };
  const std::string good = serialise(prepare_split(synthetic(10, 60), ProtocolOptions{}));
  const std::string first_line = good.substr(0, good.find('\n') + 1);
  expect_error("", 0, "");
  expect_error("{\"format\":\"other\"}\n", 1, "format");
  expect_error("not json\n", 1, "");
  std::string v2 = first_line;
  v2.replace(v2.find("\"version\":1"), 11, "\"version\":2");
  expect_error(v2, 1, "version");
  expect_error(first_line + "{\"user\":1}\n", 2, "user_id");
  expect_error(first_line + "{\"user\":1,\"user_id\":\"u1\",\"valid_history\":[1,\"x\"]}\n", 2, "valid_history");
  EXPECT_THROW(read_prepared_split(dir / "missing.jsonl"), IoError);
}

// The message itself names file:line and the field, for a missing field, a value of another
// type and one out of range (lrgd_json's checked reads), never a JSON library exception.
TEST(Prepare, ReadErrorMessagesNameFileLineAndField) {
  TempDir dir("badsplit-text");
  const auto path = dir / "s.jsonl";
  const std::string good = serialise(prepare_split(synthetic(10, 60), ProtocolOptions{}));
  const std::string first_line = good.substr(0, good.find('\n') + 1);
  auto expect_message = [&](const std::string& text, const std::string& want) {
    test::write_file(path, text);
    try {
      read_prepared_split(path);
      ADD_FAILURE() << "expected InputError for " << text;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(path.string() + want), std::string::npos) << e.what();
    }
  };
  expect_message(first_line + "{\"user\":1}\n", ":2: field 'user_id': missing");
  expect_message(first_line + "{\"user\":\"one\",\"user_id\":\"u1\"}\n", ":2: field 'user': expected");
  expect_message(first_line + "{\"user\":1,\"user_id\":7}\n", ":2: field 'user_id': expected a string, found 7");
  expect_message(first_line + "{\"user\":3000000000,\"user_id\":\"u1\"}\n", ":2: field 'user': expected");
  std::string bad_seed = first_line;
  const auto seed = bad_seed.find("\"seed\":");
  bad_seed.replace(seed, bad_seed.find(',', seed) - seed, "\"seed\":-1");
  expect_message(bad_seed, ":1: field 'seed': expected a non-negative integer, found -1");
  std::string no_trial = first_line;
  no_trial.replace(no_trial.find("\"trial\""), 7, "\"trail\"");
  expect_message(no_trial, ":1: field 'trial': missing");
}

// A candidate file in the dataset's second id space (LC-Rec: reviewer ids, ASINs) reads
// to the same candidates as one in its own ids.
TEST(Prepare, CandidateFileInEitherIdSpace) {
  const Dataset ds = tiny();
  ASSERT_EQ(ds.user_alt_ids.at(0), "AREV0");
  TempDir dir("candfile-alt");
  test::write_file(dir / "own.random", "u1\ta5 a6 a1 a7 a8\nu2\ta3 a4 a6 a7\n");
  test::write_file(dir / "alt.random",
                   "AREV0\tB0000004 B0000005 B0000000 B0000006 B0000007\nAREV1\tB0000002 B0000003 "
                   "B0000005 B0000006\n");
  const auto own = load_candidate_file(dir / "own.random", ds, true);
  const auto alt = load_candidate_file(dir / "alt.random", ds, true);
  EXPECT_EQ(own.by_user, alt.by_user);
  EXPECT_EQ(own.by_user.at(0).size(), 5u);
}

TEST(Prepare, CandidateFile) {
  const Dataset ds = tiny();
  TempDir dir("candfile");
  test::write_file(dir / "c.random",
                   "u1\ta5 a6 a1 a7 a8\n"
                   "u2\ta3 a4 a6 a7\n"
                   "u3\ta3 a6\n");
  ProtocolOptions o;
  o.n_candidates = 3;
  o.candidate_file = dir / "c.random";
  const PreparedSplit split = prepare_split(ds, o);
  EXPECT_EQ(split.n_eligible, 2u);  // u3's line has only seen items; u4 has no line
  EXPECT_EQ(split.candidate_file_hash, sha256_file(dir / "c.random"));
  EXPECT_EQ(test::find_issue(split.issues, "too_few_candidates")->count, 1u);
  EXPECT_EQ(test::find_issue(split.issues, "not_in_candidate_file")->count, 1u);
  for (const auto& u : split.users) {
    std::vector<ItemIndex> c = u.test_candidates;
    std::sort(c.begin(), c.end());
    if (u.user_id == "u1") {
      EXPECT_EQ(c, (std::vector<ItemIndex>{3, 4, 5}));  // a4 (target), a5, a6
    } else {
      EXPECT_EQ(u.user_id, "u2");
      EXPECT_EQ(c, (std::vector<ItemIndex>{0, 2, 3}));  // a1 (target), a3, a4
    }
  }
  o.strict = true;
  EXPECT_THROW(prepare_split(ds, o), InputError);
  // A user or item the dataset lacks is an error naming the file and line, never a skip.
  const auto message = [&](const std::string& name, const std::string& text) {
    test::write_file(dir / name, text);
    o.strict = false;
    o.candidate_file = dir / name;
    return test::input_error_of([&] { prepare_split(ds, o); });
  };
  EXPECT_NE(message("item.random", "u1\ta5 a6\nu2\ta3 zz\n").find("item.random:2: field 'item'"), std::string::npos);
  EXPECT_NE(message("user.random", "u1\ta5 a6\n\nnobody\ta1\n").find("user.random:3: field 'user'"), std::string::npos);
  EXPECT_NE(message("empty.random", "").find("empty candidate file"), std::string::npos);
}

// uniform-all (MoRE): the target once, negatives from every other item with replacement, so
// history items and repeated negatives occur; uniform-unseen never shows either.
TEST(Schemes, UniformAllAllowsHistoryItemsAndRepeats) {
  const Dataset ds = synthetic(400, 60);
  ProtocolOptions o;
  o.n_users = 0;
  o.n_candidates = 30;
  o.negatives = NegativeSampling::UniformAll;
  const auto all = prepare_split(ds, o);
  EXPECT_EQ(all.n_eligible, ds.n_users());
  std::size_t n_history = 0, n_repeats = 0;
  for (const auto& u : all.users) {
    ASSERT_EQ(u.test_candidates.size(), 30u);
    EXPECT_EQ(std::count(u.test_candidates.begin(), u.test_candidates.end(), u.test_target), 1);
    const auto& seq = ds.sequences[static_cast<std::size_t>(u.user)];
    for (const ItemIndex c : u.test_candidates)
      n_history += c != u.test_target && std::find(seq.begin(), seq.end(), c) != seq.end();
    std::vector<ItemIndex> sorted = u.test_candidates;
    std::sort(sorted.begin(), sorted.end());
    n_repeats += std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end();
  }
  EXPECT_GT(n_history, 0u);
  EXPECT_GT(n_repeats, 0u);
  o.negatives = NegativeSampling::UniformUnseen;
  o.n_candidates = 20;
  for (const auto& u : prepare_split(ds, o).users) {
    const auto& seq = ds.sequences[static_cast<std::size_t>(u.user)];
    std::vector<ItemIndex> sorted = u.test_candidates;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
    for (const ItemIndex c : u.test_candidates)
      if (c != u.test_target) {
        EXPECT_EQ(std::find(seq.begin(), seq.end(), c), seq.end());
      }
  }
}

// popularity: weights are training frequencies, so an item that is only ever a validation or
// test target is never a negative, and frequent training items are drawn more often.
TEST(Schemes, PopularityFollowsTrainingFrequency) {
  Dataset ds;
  ds.name = "pop";
  for (int i = 0; i < 30; ++i) ds.items.push_back(data::Item{"i" + std::to_string(i), "t", "", "", ""});
  // Item 29 is every user's test target, item 28 every user's validation target; items 0..2
  // open every history, items 3..27 once each in some user's history.
  for (int u = 0; u < 200; ++u) {
    ds.user_ids.push_back("u" + std::to_string(u));
    ds.sequences.push_back({0, 1, 2, static_cast<ItemIndex>(3 + u % 25), 28, 29});
  }
  ds.content_hash = data::compute_content_hash(ds);
  ProtocolOptions o;
  o.n_users = 0;
  o.n_candidates = 5;
  o.negatives = NegativeSampling::Popularity;
  std::vector<int> drawn(30, 0);
  for (std::uint32_t t = 0; t < 5; ++t) {
    o.trial = t;
    for (const auto& u : prepare_split(ds, o).users)
      for (const ItemIndex c : u.test_candidates)
        if (c != u.test_target) ++drawn[static_cast<std::size_t>(c)];
  }
  EXPECT_EQ(drawn[28], 0);  // a validation target only: no training frequency
  int n_drawn = 0;
  for (int i = 3; i < 28; ++i) n_drawn += drawn[static_cast<std::size_t>(i)];
  EXPECT_EQ(n_drawn, 200 * 5 * 4);  // every negative is a training item the user has not seen
}

// A retriever's top n-1 items of the user's unseen pool, plus the target: checked against a
// plain computation of the pool.
class FirstOfPool final : public Retriever {
 public:
  std::string name() const override { return "first-of-pool"; }
  std::vector<ItemIndex> top(UserIndex, std::span<const ItemIndex> history, std::span<const ItemIndex> pool,
                             std::size_t k) override {
    histories.emplace_back(history.begin(), history.end());
    return {pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(k)};
  }
  std::vector<std::vector<ItemIndex>> histories;
};

TEST(Schemes, RetrievedAreTheRetrieversTopUnseenItems) {
  const Dataset ds = synthetic(100, 50);
  ProtocolOptions o;
  o.n_users = 20;
  o.n_candidates = 6;
  o.negatives = NegativeSampling::Retrieved;
  EXPECT_THROW(prepare_split(ds, o), OptionError);  // no retriever
  auto retriever = std::make_shared<FirstOfPool>();
  o.retriever = retriever;
  const auto split = prepare_split(ds, o);
  EXPECT_EQ(split.retriever_name, "first-of-pool");
  ASSERT_EQ(retriever->histories.size(), 40u);  // validation and test of 20 users
  for (std::size_t k = 0; k < split.users.size(); ++k) {
    const auto& u = split.users[k];
    const auto& seq = ds.sequences[static_cast<std::size_t>(u.user)];
    std::vector<ItemIndex> expected;
    for (ItemIndex i = 0; expected.size() < 5; ++i)
      if (std::find(seq.begin(), seq.end(), i) == seq.end()) expected.push_back(i);
    expected.push_back(u.test_target);
    std::sort(expected.begin(), expected.end());
    std::vector<ItemIndex> got = u.test_candidates;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected) << u.user_id;
    EXPECT_EQ(retriever->histories[2 * k + 1], u.test_history);
  }
  std::ostringstream os;
  write_prepared_split(split, os);
  EXPECT_NE(os.str().find("\"negatives\":\"retrieved\",\"candidate_file\":\"\",\"candidate_file_hash\":\"\","
                          "\"retriever\":\"first-of-pool\""),
            std::string::npos);
}

TEST(Schemes, FixedAcrossTrialsRepeatsTrialZero) {
  const Dataset ds = synthetic(300, 120);
  ProtocolOptions o;
  o.n_users = 50;
  const auto t0 = prepare_split(ds, o);
  o.trial = 3;
  const auto redrawn = prepare_split(ds, o);
  o.fixed_across_trials = true;
  const auto fixed = prepare_split(ds, o);
  std::size_t n_same_redrawn = 0;
  for (std::size_t k = 0; k < t0.users.size(); ++k) {
    EXPECT_EQ(fixed.users[k].test_candidates, t0.users[k].test_candidates);
    EXPECT_EQ(fixed.users[k].valid_candidates, t0.users[k].valid_candidates);
    n_same_redrawn += redrawn.users[k].test_candidates == t0.users[k].test_candidates;
  }
  EXPECT_EQ(n_same_redrawn, 0u);
  // Recorded in the split's header and read back.
  TempDir dir("fixed");
  write_prepared_split(fixed, dir / "s.jsonl");
  EXPECT_TRUE(read_prepared_split(dir / "s.jsonl").options.fixed_across_trials);
  EXPECT_EQ(parse_candidates_per_trial("fixed"), true);
  EXPECT_THROW(parse_candidates_per_trial("sometimes"), OptionError);
  EXPECT_EQ(parse_negatives("uniform"), NegativeSampling::UniformUnseen);
  for (const auto n : {NegativeSampling::UniformUnseen, NegativeSampling::UniformAll, NegativeSampling::Popularity,
                       NegativeSampling::Retrieved})
    EXPECT_EQ(parse_negatives(negatives_name(n)), n);
}

TEST(Schemes, UserListInFileOrder) {
  const Dataset ds = synthetic(100, 50);
  TempDir dir("users");
  test::write_file(dir / "users.json", "[\"u7\", \"u3\",\n \"u42\"]");
  test::write_file(dir / "users.txt", "# three users\nu7\n\nu3\r\nu42\n");
  ProtocolOptions o;
  o.n_candidates = 10;
  o.n_users = 1;  // ignored with a list
  for (const char* name : {"users.json", "users.txt"}) {
    o.users_file = dir / name;
    const auto split = prepare_split(ds, o);
    ASSERT_EQ(split.users.size(), 3u) << name;
    EXPECT_EQ(split.users[0].user_id, "u7");
    EXPECT_EQ(split.users[1].user_id, "u3");
    EXPECT_EQ(split.users[2].user_id, "u42");
    EXPECT_EQ(split.users_file_hash, sha256_file(dir / name));
  }
  const auto message = [&](const std::string& text) {
    test::write_file(dir / "bad.txt", text);
    return test::input_error_of([&] { load_user_list(dir / "bad.txt", ds); });
  };
  EXPECT_NE(message("u1\nu2\nnobody\n").find("bad.txt:3: field 'user'"), std::string::npos);
  EXPECT_NE(message("u1\nu1\n").find("bad.txt:2"), std::string::npos);
  EXPECT_NE(message("[\"u1\",\n \"nobody\"]").find("bad.txt:2"), std::string::npos);
  EXPECT_NE(message("[\"u1\", ").find("malformed JSON"), std::string::npos);
}

// Written candidate files read back to the same sets: MoRE's JSON verbatim (order too),
// LLMRank's negatives-only layout and lrgd's TSV as sets.
TEST(Schemes, CandidateFilesRoundTrip) {
  const Dataset ds = synthetic(200, 80);
  ProtocolOptions o;
  o.n_users = 30;
  o.n_candidates = 8;
  o.negatives = NegativeSampling::UniformAll;
  const auto split = prepare_split(ds, o);
  TempDir dir("roundtrip");
  {
    write_candidate_file(split, ds, "more", dir / "c.more");
    ProtocolOptions r;
    r.n_users = 0;
    r.n_candidates = 8;
    r.candidate_file = dir / "c.more";
    std::map<std::string, std::vector<ItemIndex>> back;
    for (const auto& u : prepare_split(ds, r).users) back[u.user_id] = u.test_candidates;
    ASSERT_EQ(back.size(), split.users.size());
    for (const auto& u : split.users) EXPECT_EQ(back[u.user_id], u.test_candidates) << u.user_id;
  }
  o.negatives = NegativeSampling::UniformUnseen;
  const auto unseen = prepare_split(ds, o);
  for (const char* format : {"tsv", "llmrank"}) {
    const auto file = dir / (std::string("u.") + format);
    write_candidate_file(unseen, ds, format, file);
    ProtocolOptions r;
    r.n_users = 0;
    r.n_candidates = 8;
    r.candidate_file = file;
    std::map<std::string, std::vector<ItemIndex>> back;
    for (auto u : prepare_split(ds, r).users) {
      std::sort(u.test_candidates.begin(), u.test_candidates.end());
      back[u.user_id] = u.test_candidates;
    }
    ASSERT_EQ(back.size(), unseen.users.size()) << format;
    for (auto u : unseen.users) {
      std::sort(u.test_candidates.begin(), u.test_candidates.end());
      EXPECT_EQ(back[u.user_id], u.test_candidates) << format << " " << u.user_id;
    }
  }
  // MoRE: a target that is not the dataset's, or a set without it, is an error with the line.
  test::write_file(dir / "bad.json",
                   "{\n\"u1\": {\"-1\": {\"target_item\": \"0\", \"candidate_set\": [\"1\", \"2\"]}}\n}");
  ProtocolOptions r;
  r.n_candidates = 2;
  r.candidate_file = dir / "bad.json";
  const std::string error = test::input_error_of([&] { prepare_split(ds, r); });
  EXPECT_NE(error.find("bad.json:2"), std::string::npos) << error;
  EXPECT_THROW(write_candidate_file(split, ds, "csv", dir / "x"), OptionError);
  // A number too large for a double (found by fuzz_candidates) and a syntax error are input
  // errors that name their line, never an escaped parser exception.
  for (const auto& [text, line] :
       {std::pair<std::string, std::string>{"{\n\"u1\": [6666666E646]}", ":2"}, {"{\n\n\"u1\": {\"-1\": [}", ":3"}}) {
    test::write_file(dir / "overflow.json", text);
    const std::string overflow = test::input_error_of([&] { load_candidate_file(dir / "overflow.json", ds); });
    EXPECT_NE(overflow.find("overflow.json" + line), std::string::npos) << overflow;
    EXPECT_NE(overflow.find("malformed JSON"), std::string::npos) << overflow;
  }
}

}  // namespace
}  // namespace lrgd::protocol
