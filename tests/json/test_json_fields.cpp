// lrgd_json: checked reads of JSON fields. A missing field, a value of another type or out of
// range is an InputError naming the file, the line and the field; no nlohmann exception escapes.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "lrgd/error.h"
#include "lrgd/json_fields.h"

namespace lrgd::json_fields {
namespace {

using nlohmann::json;

const Where kAt{"data/runs.jsonl", 7};

// Runs f, which must throw InputError; returns it for inspection.
template <class F>
InputError error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an InputError: " << e.what();
    return InputError("", 0, "", "");
  }
  ADD_FAILURE() << "no error";
  return InputError("", 0, "", "");
}

void expect_names(const InputError& e, const std::string& field, const std::string& what) {
  EXPECT_EQ(e.file(), "data/runs.jsonl");
  EXPECT_EQ(e.line(), 7u);
  EXPECT_EQ(e.field(), field);
  const std::string text = e.what();
  EXPECT_NE(text.find("data/runs.jsonl:7"), std::string::npos) << text;
  EXPECT_NE(text.find("field '" + field + "'"), std::string::npos) << text;
  EXPECT_NE(text.find(what), std::string::npos) << text;
}

TEST(JsonFields, ReadsGoodFields) {
  const auto j = json::parse(
      R"({"user":"u1","n":17,"neg":-3,"ok":true,"x":0.25,"list":[1,2,3],"xs":[0.5,-1],"big":18446744073709551615})");
  EXPECT_EQ(get_string(j, "user", kAt), "u1");
  EXPECT_EQ(get_integer<int>(j, "n", kAt), 17);
  EXPECT_EQ(get_integer<int>(j, "neg", kAt), -3);
  EXPECT_EQ(get_uint(j, "big", kAt), 18446744073709551615ull);
  EXPECT_TRUE(get_bool(j, "ok", kAt));
  EXPECT_DOUBLE_EQ(get_number(j, "x", kAt), 0.25);
  EXPECT_DOUBLE_EQ(get_number(j, "n", kAt), 17.0);  // an integer is a number
  EXPECT_EQ(get_integer_list<std::int32_t>(j, "list", kAt, 0), (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(get_number_list(j, "xs", kAt), (std::vector<double>{0.5, -1}));
  EXPECT_EQ(get_integer_or<int>(j, "absent", kAt, 4), 4);
  EXPECT_EQ(get_integer_or<int>(j, "n", kAt, 4), 17);
  EXPECT_DOUBLE_EQ(get_number_or(j, "absent", kAt, 1.5), 1.5);
  EXPECT_EQ(find(j, "absent"), nullptr);
  ASSERT_NE(find(j, "user"), nullptr);
  EXPECT_EQ(find(json::array(), "user"), nullptr);
  // ordered_json (files read in their own key order) works the same.
  const auto o = nlohmann::ordered_json::parse(R"({"trial":3})");
  EXPECT_EQ(get_integer<std::uint32_t>(o, "trial", kAt), 3u);
}

TEST(JsonFields, MissingFieldNamesFileLineAndField) {
  const auto j = json::parse(R"({"user":"u1"})");
  expect_names(error_of([&] { get_string(j, "user_id", kAt); }), "user_id", "missing");
  expect_names(error_of([&] { get_uint(j, "trial", kAt); }), "trial", "missing");
  expect_names(error_of([&] { get_integer_list<int>(j, "history", kAt); }), "history", "missing");
  expect_names(error_of([&] { field(j, "x", kAt); }), "x", "missing");
}

TEST(JsonFields, WrongTypeNamesFileLineAndField) {
  const auto j = json::parse(
      R"({"user":17,"n":"seven","f":2.5,"ok":1,"list":[1,"x"],"notlist":{},"x":"1.0","xs":[1,null],"o":null})");
  expect_names(error_of([&] { get_string(j, "user", kAt); }), "user", "expected a string, found 17");
  expect_names(error_of([&] { get_integer<int>(j, "n", kAt); }), "n", "expected an integer, found string");
  expect_names(error_of([&] { get_integer<int>(j, "f", kAt); }), "f", "found 2.5");
  expect_names(error_of([&] { get_bool(j, "ok", kAt); }), "ok", "expected true or false");
  expect_names(error_of([&] { get_integer_list<int>(j, "list", kAt); }), "list", "found string");
  expect_names(error_of([&] { get_integer_list<int>(j, "notlist", kAt); }), "notlist", "expected an array");
  expect_names(error_of([&] { get_number(j, "x", kAt); }), "x", "expected a number, found string");
  expect_names(error_of([&] { get_number_list(j, "xs", kAt); }), "xs", "found null");
  expect_names(error_of([&] { get_integer_or<int>(j, "o", kAt, 0); }), "o", "found null");
  // Not an object at all: the error names no field.
  const auto e = error_of([&] { get_string(json::array({1}), "user", kAt); });
  EXPECT_EQ(e.field(), "");
  EXPECT_NE(std::string(e.what()).find("data/runs.jsonl:7: expected a JSON object, found array"), std::string::npos)
      << e.what();
}

TEST(JsonFields, OutOfRangeNamesTheBounds) {
  const auto j = json::parse(R"({"big":9999999999,"neg":-1,"huge":18446744073709551615,"idx":[0,-2]})");
  expect_names(error_of([&] { get_integer<int>(j, "big", kAt); }), "big", "found 9999999999");
  expect_names(error_of([&] { get_uint(j, "neg", kAt); }), "neg", "expected a non-negative integer, found -1");
  expect_names(error_of([&] { get_integer<std::int64_t>(j, "huge", kAt); }), "huge", "found 18446744073709551615");
  expect_names(error_of([&] { get_integer<int>(j, "big", kAt, 0, 100); }), "big", "an integer from 0 to 100");
  expect_names(error_of([&] { get_integer_list<std::int32_t>(j, "idx", kAt, 0); }), "idx", "found -2");
}

TEST(JsonFields, NoLineMeansFileOnly) {
  const auto j = json::parse(R"({})");
  const auto e = error_of([&] { get_string(j, "name", Where{"config.json", 0}); });
  EXPECT_EQ(std::string(e.what()), "config.json: field 'name': missing");
}

}  // namespace
}  // namespace lrgd::json_fields
