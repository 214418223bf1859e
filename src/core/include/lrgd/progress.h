// Progress of long work: done/total, rate, ETA, on stderr. On a terminal one line updates in
// place; into a file or pipe (a log) a plain line every 10 seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lrgd {

class Progress {
 public:
  // label: what is counted ("users", "tokens"); total may be 0 if unknown.
  Progress(std::string label, std::uint64_t total, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  // Reports at most twice a second on a terminal, every 10 s in a log, and always at the
  // end; extra is appended.
  void update(std::uint64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double elapsed_s() const;

 private:
  std::string label_;
  std::uint64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  bool terminal_ = false;
  bool line_open_ = false;  // a terminal line without its newline yet
  double interval_s_ = 10.0;
};

// "1m23s", "4.2s" style durations.
std::string format_duration(double seconds);

// "1 trial", "10 trials": a count and its noun (plural by an added "s").
std::string count_of(std::uint64_t n, const std::string& noun);

}  // namespace lrgd
