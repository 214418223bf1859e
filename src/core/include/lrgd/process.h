// Running an external tool (gnuplot, llama-bench, pip, ...) without a shell: arguments are
// passed as they are (no quoting, no injection), output is captured, and a failure names the
// tool, its exit status or signal, and the end of what it wrote to stderr.
#pragma once

#include <string>
#include <vector>

#include "lrgd/error.h"

namespace lrgd {

struct ToolResult {
  int exit_code = -1;  // the tool's exit status; -1 if it was killed by a signal or never ran
  int signal = 0;      // the signal that ended it, 0 if none
  std::string out;     // what it wrote to stdout
  std::string err;     // what it wrote to stderr
  bool ok() const { return exit_code == 0; }
  // "exit status 3" / "killed by signal 11 (Segmentation fault)" / "not found".
  std::string status_text() const;
};

// A tool that could not be run or did not succeed; what() names the tool and its status.
class ToolError : public Error {
 public:
  ToolError(const std::string& tool, const ToolResult& result, const std::string& context = {});
  const ToolResult& result() const { return result_; }

 private:
  ToolResult result_;
};

// Runs argv[0] (looked up in PATH when it has no '/') with the other arguments; stdin is
// /dev/null. Never throws for the tool's own failure: check ToolResult.
ToolResult run_tool(const std::vector<std::string>& argv);

// Like run_tool, but throws ToolError unless the tool exits with status 0.
ToolResult run_tool_checked(const std::vector<std::string>& argv, const std::string& context = {});

// A string as a gnuplot double-quoted literal (paths and titles in generated scripts).
std::string gnuplot_quote(const std::string& s);

// Whether `name` is an executable file (a path) or found in PATH.
bool tool_available(const std::string& name);

}  // namespace lrgd
