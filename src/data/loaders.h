// The per-format loaders behind load_dataset. Each returns the dataset with sequences,
// items and user ids filled and filtered; load_dataset names it and calls finish_dataset.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "issues.h"
#include "json_cursor.h"
#include "lrgd/data.h"

namespace lrgd::data::detail {

Dataset load_lcrec(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log);
Dataset load_recbole(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log);
Dataset load_amazon_raw(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log);
Dataset load_csv(const DetectedFiles& files, const LoadOptions& opts, int kcore, IssueLog& log);

// Converts a syntax error in `text` (the contents of `file`, whose first line is
// `first_line`) into InputError naming the line, the column and `field`.
[[noreturn]] void throw_json_error(const JsonSyntaxError& e, std::string_view text, const std::string& file,
                                   std::uint64_t first_line, const std::string& field);

// A line of a JSON Lines file as the kind of `e` ("malformed_json") for IssueLog::skip.
std::string describe_json_error(const JsonSyntaxError& e, std::string_view line);

// A text field of item metadata: a string, or an array of strings joined with `sep` (empty
// parts left out), cleaned (clean_text) to at most `max_chars`. Any other value (null, a
// number, an object) is skipped and gives nullopt.
std::optional<std::string> read_text_value(JsonCursor& c, std::string_view sep, std::size_t max_chars);

}  // namespace lrgd::data::detail
