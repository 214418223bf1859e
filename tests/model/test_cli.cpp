// The lrgd binary: help, version, usage errors and exit codes.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "process.h"

namespace {

lrgd::test::CliResult run(const std::string& args) { return lrgd::test::run_cli(args); }

TEST(Cli, HelpAndVersion) {
  auto r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("model"), std::string::npos);
  r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("lrgd 0."), std::string::npos);
  EXPECT_NE(r.out.find("ggml CPU backend: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weight buffers: CPU"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("AMX"), std::string::npos) << r.out;
  r = run("model init --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--kv-heads"), std::string::npos);
}

TEST(Cli, UsageErrorsExitWithTwo) {
  auto r = run("--no-such-option");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("no-such-option"), std::string::npos);
  r = run("model init --out /tmp/x.gguf --bogus 3");
  EXPECT_EQ(r.code, 2);
  r = run("");
  EXPECT_EQ(r.code, 2);
  r = run("model init --out /tmp/lrgd_cli_x.gguf --width 32 --heads 5");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--heads"), std::string::npos);
}

TEST(Cli, MissingModelIsARuntimeError) {
  const auto r = run("generate --model /nonexistent.gguf");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("/nonexistent.gguf"), std::string::npos);
}

}  // namespace
