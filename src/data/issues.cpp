#include "issues.h"

#include "lrgd/error.h"

namespace lrgd::data::detail {

void IssueLog::skip(std::string_view kind, const std::string& file, std::uint64_t line, std::string_view field,
                    const std::string& detail, std::uint64_t count) {
  if (strict_) throw InputError(file, line, std::string(field), detail + " (" + std::string(kind) + ")");
  add(kind, file, line, std::string(field.empty() ? "" : "field '" + std::string(field) + "': ") + detail, count, true);
}

void IssueLog::note(std::string_view kind, const std::string& file, std::uint64_t line, const std::string& detail,
                    std::uint64_t count) {
  add(kind, file, line, detail, count, false);
}

void IssueLog::filtered(std::string_view kind, const std::string& file, std::uint64_t count,
                        const std::string& detail) {
  add(kind, file, 0, detail, count, true);
}

void IssueLog::add(std::string_view kind, const std::string& file, std::uint64_t line, const std::string& detail,
                   std::uint64_t count, bool dropped) {
  if (count == 0) return;
  for (auto& issue : issues_) {
    if (issue.kind == kind && issue.file == file) {
      issue.count += count;
      return;
    }
  }
  issues_.push_back(LoadIssue{std::string(kind), file, line, detail, count, dropped});
}

}  // namespace lrgd::data::detail
