#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "lrgd/process.h"

namespace {

TEST(Process, CapturesStdoutAndStderrSeparately) {
  const auto r = lrgd::run_tool({"sh", "-c", "printf 'out'; printf 'err' >&2"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "out");
  EXPECT_EQ(r.err, "err");
}

TEST(Process, ArgumentsAreNotInterpretedByAShell) {
  const std::string tricky = "a b; echo injected 'q' $(echo no)";
  const auto r = lrgd::run_tool({"printf", "%s", tricky});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.out, tricky);
}

TEST(Process, ExitStatusIsReportedAndCheckedCallThrowsNamingTheTool) {
  const auto r = lrgd::run_tool({"sh", "-c", "echo boom >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.status_text(), "exit status 3");
  try {
    lrgd::run_tool_checked({"sh", "-c", "echo first >&2; echo boom >&2; exit 3"}, "making a plot");
    FAIL() << "expected ToolError";
  } catch (const lrgd::ToolError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sh (making a plot) failed: exit status 3"), std::string::npos) << what;
    EXPECT_NE(what.find("boom"), std::string::npos) << what;
  }
}

TEST(Process, ASignalIsNamed) {
  const auto r = lrgd::run_tool({"sh", "-c", "kill -SEGV $$"});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_NE(r.status_text().find("signal 11"), std::string::npos) << r.status_text();
}

TEST(Process, AMissingToolIsAFailureNotACrash) {
  EXPECT_FALSE(lrgd::tool_available("lrgd-no-such-tool-xyz"));
  EXPECT_TRUE(lrgd::tool_available("sh"));
  const auto r = lrgd::run_tool({"lrgd-no-such-tool-xyz", "--help"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_THROW(lrgd::run_tool_checked({"lrgd-no-such-tool-xyz"}), lrgd::ToolError);
}

TEST(Process, LargeOutputOnBothStreamsDoesNotDeadlock) {
  const auto r =
      lrgd::run_tool({"sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.out.size(), 300000u);
  EXPECT_EQ(r.err.size(), 300000u);
}

}  // namespace
