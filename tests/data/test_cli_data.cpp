// `lrgd data stats` and `lrgd data prepare` through the binary: output, files, exit codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data_test_util.h"
#include "lrgd/data.h"
#include "lrgd/hash.h"
#include "lrgd/protocol.h"
#include "process.h"

namespace {

using lrgd::test::fixture;

lrgd::test::CliResult run(const std::string& args) { return lrgd::test::run_cli(args); }

TEST(CliData, StatsPrintsTableOneAndIssues) {
  const auto r = run("data stats --kcore 0 --repeats first --data " + fixture("bad_lcrec").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("users            3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("interactions     11"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("title coverage   66.67%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("unknown_item"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Bad.inter.json:3"), std::string::npos) << r.out;
}

TEST(CliData, StatsJson) {
  const auto r = run("data stats --json --kcore 0 --data " + fixture("csv").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_users"], 4);
  EXPECT_EQ(j["n_items"], 8);
  EXPECT_EQ(j["n_interactions"], 15);
  EXPECT_EQ(j["format"], "csv");
  EXPECT_EQ(j["content_hash"], "fd44cd448aad095f79694db6c33853f3585624fcb85bd12c6a9b93296a315b2d");
  EXPECT_EQ(j["issues"].size(), 1u);
}

TEST(CliData, PrepareWritesAReadableSplit) {
  lrgd::test::TempDir dir("cli");
  const auto out = dir / "split.jsonl";
  const auto r = run("data prepare --kcore 0 --data " + fixture("raw").string() + " --out " + out.string() +
                     " --users 2 --candidates 4 --seed 7 --max-history 1");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto split = lrgd::protocol::read_prepared_split(out);
  EXPECT_EQ(split.users.size(), 2u);
  EXPECT_EQ(split.options.seed, 7u);
  EXPECT_EQ(split.options.n_candidates, 4u);
  EXPECT_EQ(split.data_hash, "fd44cd448aad095f79694db6c33853f3585624fcb85bd12c6a9b93296a315b2d");
  for (const auto& u : split.users) EXPECT_EQ(u.valid_history.size(), 1u);
  const std::string first = lrgd::test::read_file(out);
  ASSERT_EQ(run("data prepare --kcore 0 --data " + fixture("lcrec").string() + " --out " + out.string() +
                " --users 2 --candidates 4 --seed 7 --max-history 1")
                .code,
            0);
  EXPECT_EQ(lrgd::test::read_file(out), first) << "same content, same seed: same bytes from another format";
  // Into a folder that does not exist yet: it is made, as eval, dual and model init do.
  const auto nested = dir / "new" / "folder" / "split.jsonl";
  ASSERT_EQ(run("data prepare --kcore 0 --data " + fixture("lcrec").string() + " --out " + nested.string() +
                " --users 2 --candidates 4 --seed 7 --max-history 1")
                .code,
            0);
  EXPECT_EQ(lrgd::test::read_file(nested), first);
  // A folder that cannot be made: the error names it and the system's reason.
  const auto blocked = run("data prepare --kcore 0 --data " + fixture("lcrec").string() + " --out " +
                           (dir / "split.jsonl" / "x.jsonl").string() + " --users 2 --candidates 4");
  EXPECT_EQ(blocked.code, 1) << blocked.out;
  EXPECT_NE(blocked.out.find("cannot create the folder " + out.string()), std::string::npos) << blocked.out;
}

TEST(CliData, ExitCodes) {
  const std::string data = " --data " + fixture("lcrec").string();
  EXPECT_EQ(run("data stats --format parquet" + data).code, 2);
  EXPECT_EQ(run("data prepare --out /tmp/x.jsonl --negatives zipf --kcore 0" + data).code, 2);
  EXPECT_EQ(run("data prepare --out /tmp/x.jsonl --candidates 1 --kcore 0" + data).code, 2);
  EXPECT_EQ(run("data stats").code, 2);
  const auto missing = run("data stats --data /nonexistent/dir");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("/nonexistent/dir"), std::string::npos);
  const auto bad = run("data stats --data " + fixture("bad_lcrec_malformed").string());
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("M.inter.json:3: field '1'"), std::string::npos) << bad.out;
  EXPECT_EQ(run("data stats --strict --kcore 0 --data " + fixture("bad_raw").string()).code, 1);
}

TEST(CliData, RepeatsAreCountedInStats) {
  const std::string data = " --kcore 0 --data " + fixture("bad_lcrec").string();
  const auto keep = run("data stats" + data);
  ASSERT_EQ(keep.code, 0) << keep.out;
  EXPECT_NE(keep.out.find("repeats          keep (1 repeated interaction(s) kept)"), std::string::npos) << keep.out;
  EXPECT_NE(keep.out.find("interactions     12"), std::string::npos) << keep.out;
  EXPECT_NE(keep.out.find("repeat_interaction"), std::string::npos) << keep.out;
  const auto first = run("data stats --repeats first" + data);
  ASSERT_EQ(first.code, 0) << first.out;
  EXPECT_NE(first.out.find("repeats          first (1 repeated interaction(s) dropped)"), std::string::npos)
      << first.out;
  EXPECT_NE(first.out.find("interactions     11"), std::string::npos) << first.out;
  const auto json = run("data stats --json --repeats last" + data);
  ASSERT_EQ(json.code, 0) << json.out;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["repeats"], "last");
  EXPECT_EQ(j["n_repeats"], 1);
  EXPECT_EQ(run("data stats --repeats all" + data).code, 2);
}

// The files of an export folder, by name.
std::map<std::string, std::string> folder_bytes(const std::filesystem::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out[e.path().filename().string()] = lrgd::test::read_file(e.path());
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while (p < text.size()) {
    const auto nl = text.find('\n', p);
    out.push_back(text.substr(p, nl - p));
    p = nl + 1;
  }
  return out;
}

TEST(CliData, ExportUniSRecRoundTrip) {
  lrgd::test::TempDir dir("export");
  const std::string args =
      "data export --format unisrec --kcore 0 --users 0 --max-history 0 --candidates 3 "
      "--trials 2 --seed 5 --data " +
      fixture("lcrec").string();
  const auto r = run(args + " --out " + (dir / "a").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto files = folder_bytes(dir / "a");
  for (const std::string f : {"Tiny.train.inter", "Tiny.valid.inter", "Tiny.test.inter", "Tiny.text", "Tiny.item2index",
                              "Tiny.user2index", "candidates.jsonl", "manifest.json"})
    EXPECT_EQ(files.count(f), 1u) << f;
  EXPECT_EQ(files.at("Tiny.train.inter"),
            "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0\t1\n2\t5\t2\n2\t5 2\t6\n");
  // Loaded back: the same users, sequences and titles (the same content hash).
  lrgd::data::LoadOptions o;
  o.kcore = 0;
  const auto original = lrgd::data::load_dataset(fixture("lcrec"), o);
  const auto back = lrgd::data::load_dataset(dir / "a", o);
  EXPECT_EQ(back.user_ids, original.user_ids);
  EXPECT_EQ(back.sequences, original.sequences);
  ASSERT_EQ(back.n_items(), original.n_items());
  for (std::size_t i = 0; i < back.n_items(); ++i) {
    EXPECT_EQ(back.items[i].id, original.items[i].id);
    EXPECT_EQ(back.items[i].title, original.items[i].title);
  }
  EXPECT_EQ(back.content_hash, original.content_hash);
  // Candidates: per trial every user once, the target (the last item) among them, no seen item.
  const auto cand = lines_of(files.at("candidates.jsonl"));
  ASSERT_EQ(cand.size(), 2 * original.n_users());
  for (std::size_t k = 0; k < cand.size(); ++k) {
    const auto j = nlohmann::json::parse(cand[k]);
    const std::size_t u = k % original.n_users();
    EXPECT_EQ(j["user"], original.user_ids[u]);
    EXPECT_EQ(j["trial"], k / original.n_users());
    EXPECT_EQ(j["target"], original.items[static_cast<std::size_t>(original.sequences[u].back())].id);
    ASSERT_EQ(j["candidates"].size(), 3u);
    std::size_t n_target = 0;
    for (const auto& c : j["candidates"]) {
      if (c == j["target"]) {
        ++n_target;
        continue;
      }
      for (const auto i : original.sequences[u])
        EXPECT_NE(c, original.items[static_cast<std::size_t>(i)].id) << cand[k];
    }
    EXPECT_EQ(n_target, 1u) << cand[k];
  }
  // The manifest names the data, the options and every file with its sha256.
  const auto m = nlohmann::json::parse(files.at("manifest.json"));
  EXPECT_EQ(m["data_hash"], original.content_hash);
  EXPECT_EQ(m["seed"], 5);
  EXPECT_EQ(m["options"]["trials"], 2);
  EXPECT_EQ(m["files"].size(), 7u);
  for (const auto& f : m["files"])
    EXPECT_EQ(f["sha256"], lrgd::sha256_hex(files.at(f["name"].get<std::string>()))) << f["name"];
  // Deterministic: the same options give the same bytes.
  ASSERT_EQ(run(args + " --out " + (dir / "b").string()).code, 0);
  EXPECT_EQ(folder_bytes(dir / "b"), files);
}

TEST(CliData, ExportRecBoleLayout) {
  lrgd::test::TempDir dir("export");
  const auto r = run("data export --format recbole --kcore 0 --users 2 --max-history 2 --candidates 3 --data " +
                     fixture("raw").string() + " --out " + dir.path().string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto files = folder_bytes(dir.path());
  // One training row per prefix of the sequence without its last two items (u3: a6 a3 a7).
  EXPECT_EQ(files.at("Tiny.train.inter"),
            "user_id:token\titem_id_list:token_seq\titem_id:token\nu1\ta1\ta2\nu3\ta6\ta3\nu3\ta6 a3\ta7\n");
  EXPECT_EQ(lines_of(files.at("Tiny.item"))[1], "a1\tAlpha & Omega, the Game");
  const auto valid = lines_of(files.at("Tiny.valid.inter"));
  const auto test = lines_of(files.at("Tiny.test.inter"));
  ASSERT_EQ(valid.size(), 3u);  // header + 2 users
  ASSERT_EQ(test.size(), 3u);
  EXPECT_EQ(lines_of(files.at("candidates.jsonl")).size(), 2u);
  // Read back: each user's last (at most) 4 items, histories cut to 2.
  lrgd::data::LoadOptions o;
  o.kcore = 0;
  const auto original = lrgd::data::load_dataset(fixture("raw"), o);
  const auto back = lrgd::data::load_dataset(dir.path(), o);
  ASSERT_EQ(back.n_users(), 2u);
  for (std::size_t u = 0; u < back.n_users(); ++u) {
    const auto full =
        lrgd::test::seq_ids(original, static_cast<std::size_t>(lrgd::data::find_user(original, back.user_ids[u])));
    const auto cut = lrgd::test::seq_ids(back, u);
    EXPECT_TRUE(full.ends_with(cut)) << full << " / " << cut;
    EXPECT_EQ(back.sequences[u].size(), std::min<std::size_t>(4, std::count(full.begin(), full.end(), ' ') + 1));
  }
  EXPECT_EQ(back.items[0].title, "Alpha & Omega, the Game");
  EXPECT_EQ(
      run("data export --format parquet --data " + fixture("raw").string() + " --out " + dir.path().string()).code, 2);
}

}  // namespace
