// Counting load problems: one LoadIssue per (kind, file), with the first line and detail.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lrgd/dataset.h"

namespace lrgd::data::detail {

class IssueLog {
 public:
  explicit IssueLog(bool strict) : strict_(strict) {}

  // A record was skipped. Strict: throws InputError(file, line, field, detail) instead.
  void skip(std::string_view kind, const std::string& file, std::uint64_t line, std::string_view field,
            const std::string& detail, std::uint64_t count = 1);
  // Data was kept but is incomplete (e.g. a missing title); never throws.
  void note(std::string_view kind, const std::string& file, std::uint64_t line, const std::string& detail,
            std::uint64_t count = 1);

  // Records removed on purpose (e.g. by the k-core filter); never throws.
  void filtered(std::string_view kind, const std::string& file, std::uint64_t count, const std::string& detail);

  bool strict() const { return strict_; }
  std::vector<LoadIssue> take() { return std::move(issues_); }

 private:
  void add(std::string_view kind, const std::string& file, std::uint64_t line, const std::string& detail,
           std::uint64_t count, bool dropped);

  bool strict_;
  std::vector<LoadIssue> issues_;
};

}  // namespace lrgd::data::detail
