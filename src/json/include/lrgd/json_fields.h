// Checked reads of the fields of a JSON object read from outside (a file's line, a stored row,
// a server's answer). A missing field, a value of another type or out of range is an
// InputError naming the file, the line and the field; nlohmann's type_error and out_of_range
// never escape. Works for nlohmann::json and nlohmann::ordered_json alike.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lrgd/error.h"

namespace lrgd::json_fields {

// Where the JSON was read: a file (or another source's name) and its 1-based line, 0 if none.
struct Where {
  std::string_view file;
  std::uint64_t line = 0;
};

namespace detail {

[[noreturn]] inline void fail(Where at, std::string_view field, const std::string& what) {
  throw InputError(std::string(at.file), at.line, std::string(field), what);
}

template <class Json>
std::string found(const Json& v) {
  if (v.is_number()) return v.dump();  // a number is short: show it
  return std::string(v.type_name());
}

template <std::integral Int>
std::string integer_kind(Int lo, Int hi) {
  if (lo == 0 && hi == std::numeric_limits<Int>::max()) return "a non-negative integer";  // any unsigned type too
  if (lo == std::numeric_limits<Int>::min() && hi == std::numeric_limits<Int>::max()) return "an integer";
  return "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

}  // namespace detail

// ---- one value (a field's, or an element of an array field), reported as field `name` ----

template <class Json>
std::string as_string(const Json& v, std::string_view name, Where at) {
  if (!v.is_string()) detail::fail(at, name, "expected a string, found " + detail::found(v));
  return v.template get<std::string>();
}

template <class Json>
bool as_bool(const Json& v, std::string_view name, Where at) {
  if (!v.is_boolean()) detail::fail(at, name, "expected true or false, found " + detail::found(v));
  return v.template get<bool>();
}

// A finite number (integer or not).
template <class Json>
double as_number(const Json& v, std::string_view name, Where at) {
  if (!v.is_number()) detail::fail(at, name, "expected a number, found " + detail::found(v));
  const double d = v.template get<double>();
  if (!std::isfinite(d)) detail::fail(at, name, "expected a finite number, found " + v.dump());
  return d;
}

// An integer (no fraction, no exponent) in [lo, hi], by default Int's whole range.
template <std::integral Int, class Json>
Int as_integer(const Json& v, std::string_view name, Where at, Int lo = std::numeric_limits<Int>::min(),
               Int hi = std::numeric_limits<Int>::max()) {
  const auto kind = [&] { return detail::integer_kind(lo, hi); };
  if (!v.is_number_integer()) detail::fail(at, name, "expected " + kind() + ", found " + detail::found(v));
  if (v.is_number_unsigned()) {
    const auto u = v.template get<std::uint64_t>();
    if (std::cmp_less(u, lo) || std::cmp_greater(u, hi))
      detail::fail(at, name, "expected " + kind() + ", found " + v.dump());
    return static_cast<Int>(u);
  }
  const auto s = v.template get<std::int64_t>();
  if (std::cmp_less(s, lo) || std::cmp_greater(s, hi))
    detail::fail(at, name, "expected " + kind() + ", found " + v.dump());
  return static_cast<Int>(s);
}

// An array of integers in [lo, hi].
template <std::integral Int, class Json>
std::vector<Int> as_integer_list(const Json& v, std::string_view name, Where at,
                                 Int lo = std::numeric_limits<Int>::min(), Int hi = std::numeric_limits<Int>::max()) {
  if (!v.is_array()) detail::fail(at, name, "expected an array of integers, found " + detail::found(v));
  std::vector<Int> out;
  out.reserve(v.size());
  for (const auto& e : v) out.push_back(as_integer<Int>(e, name, at, lo, hi));
  return out;
}

// An array of finite numbers.
template <class Json>
std::vector<double> as_number_list(const Json& v, std::string_view name, Where at) {
  if (!v.is_array()) detail::fail(at, name, "expected an array of numbers, found " + detail::found(v));
  std::vector<double> out;
  out.reserve(v.size());
  for (const auto& e : v) out.push_back(as_number(e, name, at));
  return out;
}

// ---- fields of an object ----

// The object itself: anything else (an array, a number) is an error naming no field.
template <class Json>
const Json& as_object(const Json& v, Where at) {
  if (!v.is_object()) detail::fail(at, "", "expected a JSON object, found " + detail::found(v));
  return v;
}

// The field `name`, or nullptr where it is absent (or `obj` is no object).
template <class Json>
const Json* find(const Json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(typename Json::string_t(name));  // nlohmann 3.10 wants the key type
  return it == obj.end() ? nullptr : &*it;
}

// The field `name`; missing is an error.
template <class Json>
const Json& field(const Json& obj, std::string_view name, Where at) {
  as_object(obj, at);
  const Json* v = find(obj, name);
  if (v == nullptr) detail::fail(at, name, "missing");
  return *v;
}

template <class Json>
std::string get_string(const Json& obj, std::string_view name, Where at) {
  return as_string(field(obj, name, at), name, at);
}

template <class Json>
bool get_bool(const Json& obj, std::string_view name, Where at) {
  return as_bool(field(obj, name, at), name, at);
}

template <class Json>
double get_number(const Json& obj, std::string_view name, Where at) {
  return as_number(field(obj, name, at), name, at);
}

template <std::integral Int, class Json>
Int get_integer(const Json& obj, std::string_view name, Where at, Int lo = std::numeric_limits<Int>::min(),
                Int hi = std::numeric_limits<Int>::max()) {
  return as_integer<Int>(field(obj, name, at), name, at, lo, hi);
}

// An optional integer field: `fallback` where it is absent, checked where present.
template <std::integral Int, class Json>
Int get_integer_or(const Json& obj, std::string_view name, Where at, Int fallback,
                   Int lo = std::numeric_limits<Int>::min(), Int hi = std::numeric_limits<Int>::max()) {
  const Json* v = find(as_object(obj, at), name);
  return v == nullptr ? fallback : as_integer<Int>(*v, name, at, lo, hi);
}

// An optional number field: `fallback` where it is absent, checked (finite) where present.
template <class Json>
double get_number_or(const Json& obj, std::string_view name, Where at, double fallback) {
  const Json* v = find(as_object(obj, at), name);
  return v == nullptr ? fallback : as_number(*v, name, at);
}

template <class Json>
std::uint64_t get_uint(const Json& obj, std::string_view name, Where at) {
  return get_integer<std::uint64_t>(obj, name, at);
}

template <std::integral Int, class Json>
std::vector<Int> get_integer_list(const Json& obj, std::string_view name, Where at,
                                  Int lo = std::numeric_limits<Int>::min(), Int hi = std::numeric_limits<Int>::max()) {
  return as_integer_list<Int>(field(obj, name, at), name, at, lo, hi);
}

template <class Json>
std::vector<double> get_number_list(const Json& obj, std::string_view name, Where at) {
  return as_number_list(field(obj, name, at), name, at);
}

}  // namespace lrgd::json_fields
