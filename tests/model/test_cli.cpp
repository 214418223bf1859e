// The lrgd binary: help, version, usage errors and exit codes.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

struct Result {
  int code;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(LRGD_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (p != nullptr && std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  const int status = p != nullptr ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(Cli, HelpAndVersion) {
  auto r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("model"), std::string::npos);
  r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("lrgd 0."), std::string::npos);
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
