#include "lrgd/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

namespace lrgd {

std::string format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto s = static_cast<long>(seconds);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string count_of(std::uint64_t n, const std::string& noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

Progress::Progress(std::string label, std::uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_(start_),
      terminal_(::isatty(::fileno(stderr)) != 0),
      interval_s_(terminal_ ? 0.5 : 10.0) {}

Progress::~Progress() {
  if (line_open_) std::fputc('\n', stderr);
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(std::uint64_t done, const std::string& extra) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < interval_s_ && done < total_) return;
  last_ = now;
  const double t = elapsed_s();
  const double rate = t > 0 ? static_cast<double>(done) / t : 0.0;
  std::string line;
  if (total_ > 0) {
    const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done, total_)) / rate : 0.0;
    line = fmt::format("{} {}/{} ({:.0f}%) {:.1f}/s elapsed {} ETA {}", label_, done, total_,
                       100.0 * static_cast<double>(done) / static_cast<double>(total_), rate, format_duration(t),
                       format_duration(eta));
  } else {
    line = fmt::format("{} {} {:.1f}/s elapsed {}", label_, done, rate, format_duration(t));
  }
  if (!extra.empty()) line += " " + extra;
  if (terminal_) {
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());  // rewrite the line, clear what is left of the last
    line_open_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void Progress::finish(const std::string& extra) {
  if (!enabled_) return;
  interval_s_ = 0;
  update(total_, extra);
  if (line_open_) std::fputc('\n', stderr);
  line_open_ = false;
}

}  // namespace lrgd
