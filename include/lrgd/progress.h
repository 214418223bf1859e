// Progress lines for long work: done/total, rate, ETA, on stderr.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lrgd {

class Progress {
 public:
  // label: what is counted ("users", "tokens"); total may be 0 if unknown.
  Progress(std::string label, std::uint64_t total, bool enabled = true);
  // Reports at most every `interval` seconds (and always at the end); extra is appended.
  void update(std::uint64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");
  double elapsed_s() const;

 private:
  std::string label_;
  std::uint64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  double interval_s_ = 1.0;
};

// "1m23s", "4.2s" style durations.
std::string format_duration(double seconds);

}  // namespace lrgd
