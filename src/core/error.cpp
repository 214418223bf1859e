#include "lrgd/error.h"

#include <fmt/core.h>

namespace lrgd {

namespace {
std::string input_message(const std::string& file, std::uint64_t line, const std::string& field,
                          const std::string& what) {
  const std::string at = line > 0 ? fmt::format("{}:{}", file, line) : file;
  return field.empty() ? fmt::format("{}: {}", at, what) : fmt::format("{}: field '{}': {}", at, field, what);
}
}  // namespace

InputError::InputError(std::string file, std::uint64_t line, std::string field, const std::string& what)
    : Error(input_message(file, line, field, what)), file_(std::move(file)), line_(line), field_(std::move(field)) {}

OptionError::OptionError(const std::string& option, const std::string& what) : Error(option + ": " + what) {}

}  // namespace lrgd
