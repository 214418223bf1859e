// `lrgd data stats` and `lrgd data prepare` through the binary: output, files, exit codes.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "data_test_util.h"
#include "lrgd/protocol.h"
#include "process.h"

namespace {

using lrgd::test::fixture;

lrgd::test::CliResult run(const std::string& args) { return lrgd::test::run_cli(args); }

TEST(CliData, StatsPrintsTableOneAndIssues) {
  const auto r = run("data stats --kcore 0 --data " + fixture("bad_lcrec").string());
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

}  // namespace
