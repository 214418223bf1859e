// Enum <-> name from one table per enum: the names users type in options and files record.
// A table lists each value's canonical name first; later rows for the same value are aliases
// that parse but are never written.
#pragma once

#include <array>
#include <cctype>
#include <string>
#include <string_view>

#include "lrgd/error.h"

namespace lrgd {

template <class E>
struct Named {
  E value;
  std::string_view name;
};

// The canonical name of `value` ("?" for a value the table lacks, e.g. a cast integer).
template <class E, std::size_t N>
constexpr std::string_view name_of(const std::array<Named<E>, N>& table, E value) {
  for (const auto& row : table)
    if (row.value == value) return row.name;
  return "?";
}

enum class Case { Exact, Fold };

// The value named `name`, or false.
template <class E, std::size_t N>
bool find_named(const std::array<Named<E>, N>& table, std::string_view name, E& out, Case match = Case::Exact) {
  const auto same = [&](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
      if (match == Case::Fold ? std::tolower(x) != std::tolower(y) : x != y) return false;
    }
    return true;
  };
  for (const auto& row : table) {
    if (same(row.name, name)) {
      out = row.value;
      return true;
    }
  }
  return false;
}

// The value named `name`; else OptionError(option, "unknown <what> '<name>' (<every name>)").
template <class E, std::size_t N>
E parse_named(const std::array<Named<E>, N>& table, std::string_view name, const std::string& option,
              std::string_view what, Case match = Case::Exact) {
  E value{};
  if (find_named(table, name, value, match)) return value;
  std::string names;
  for (const auto& row : table) names += (names.empty() ? "" : ", ") + std::string(row.name);
  throw OptionError(option, "unknown " + std::string(what) + " '" + std::string(name) + "' (" + names + ")");
}

}  // namespace lrgd
