// Running the lrgd binary (or any program) from tests: capture output, spawn, kill, wait.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace lrgd::test {

struct CliResult {
  int code;         // exit status, -1 if killed by a signal
  std::string out;  // stdout and stderr together
};

// Runs `lrgd <args>` through the shell (args are not quoted).
inline CliResult run_cli(const std::string& args) {
  const std::string cmd = std::string(LRGD_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (p != nullptr && std::fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  const int status = p != nullptr ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Starts args[0] with args (no shell), output discarded; returns its pid.
inline pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Waits for pid; its exit status, -1 if it was killed by a signal.
inline int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace lrgd::test
