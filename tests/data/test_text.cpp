// Item text cleaning and the JSON pull parser.
#include <gtest/gtest.h>

#include "json_cursor.h"
#include "lrgd/data.h"

namespace lrgd::data {
namespace {

using detail::JsonCursor;
using detail::JsonSyntaxError;

TEST(CleanText, DecodesHtmlEntities) {
  EXPECT_EQ(clean_text("Tom &amp; Jerry"), "Tom & Jerry");
  EXPECT_EQ(clean_text("Pok&eacute;mon Moon"), "Pok\xC3\xA9mon Moon");
  EXPECT_EQ(clean_text("Marvel&rsquo;s &quot;X&quot; &#39;Y&#39;"), "Marvel\xE2\x80\x99s \"X\" 'Y'");
  EXPECT_EQ(clean_text("Logitech G602 &ndash; Mouse &reg; &trade;"),
            "Logitech G602 \xE2\x80\x93 Mouse \xC2\xAE \xE2\x84\xA2");
  EXPECT_EQ(clean_text("&#x2122;&#X41;&#65;"),
            "\xE2\x84\xA2"
            "AA");
  EXPECT_EQ(clean_text("&Acirc;&Otilde;&sup1;&middot;&hellip;&deg;&copy;"),
            "\xC3\x82\xC3\x95\xC2\xB9\xC2\xB7\xE2\x80\xA6\xC2\xB0\xC2\xA9");
}

TEST(CleanText, LeavesNonReferencesAlone) {
  EXPECT_EQ(clean_text("AT&T"), "AT&T");
  EXPECT_EQ(clean_text("a & b"), "a & b");
  EXPECT_EQ(clean_text("&unknownentity; &;"), "&unknownentity; &;");
  EXPECT_EQ(clean_text("&#xZZ; &#;"), "&#xZZ; &#;");
  EXPECT_EQ(clean_text("&amp;amp;"), "&amp;");  // one pass, as browsers do
  EXPECT_EQ(clean_text("&#0;&#xD800;&#x110000;"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(CleanText, CollapsesWhitespace) {
  EXPECT_EQ(clean_text("  Beta \t\n Game\r\n(PS4)  "), "Beta Game (PS4)");
  EXPECT_EQ(clean_text("Foxtrot&nbsp;&nbsp;Kit"), "Foxtrot Kit");
  EXPECT_EQ(clean_text("A\xC2\xA0"
                       "B"),
            "A B");  // literal U+00A0
  EXPECT_EQ(clean_text("&#10;x&#32;"), "x");
  EXPECT_EQ(clean_text(" \t "), "");
  EXPECT_EQ(clean_text(""), "");
}

TEST(CleanText, TruncatesByCodePoints) {
  EXPECT_EQ(clean_text("Hello world", 5), "Hello");
  EXPECT_EQ(clean_text("Hello world", 6), "Hello");  // never ends in a space
  EXPECT_EQ(clean_text("Hello world", 7), "Hello w");
  EXPECT_EQ(clean_text("Caf&eacute; au lait", 4), "Caf\xC3\xA9");
  EXPECT_EQ(clean_text("\xE2\x84\xA2\xE2\x84\xA2\xE2\x84\xA2", 2), "\xE2\x84\xA2\xE2\x84\xA2");
  EXPECT_EQ(clean_text("Hello world", 0), "Hello world");
  EXPECT_EQ(clean_text("Hello world", 100), "Hello world");
}

TEST(JsonCursor, ReadsNestedValues) {
  const std::string text =
      R"( {"a": [1, -2, 30], "b": {"c": "x\"y\\z\u00e9\ud83d\ude00", "d": [true, false, null, 1.5e3]}, "e": ""} )";
  JsonCursor c(text);
  c.begin_object();
  bool first = true;
  std::string_view key;
  ASSERT_TRUE(c.next_member(first, key));
  EXPECT_EQ(key, "a");
  c.begin_array();
  bool f2 = true;
  std::vector<std::int64_t> ints;
  while (c.next_element(f2)) ints.push_back(c.integer());
  EXPECT_EQ(ints, (std::vector<std::int64_t>{1, -2, 30}));
  ASSERT_TRUE(c.next_member(first, key));
  EXPECT_EQ(key, "b");
  c.begin_object();
  bool f3 = true;
  ASSERT_TRUE(c.next_member(f3, key));
  EXPECT_EQ(c.string(), "x\"y\\z\xC3\xA9\xF0\x9F\x98\x80");
  ASSERT_TRUE(c.next_member(f3, key));
  c.skip_value();
  EXPECT_FALSE(c.next_member(f3, key));
  ASSERT_TRUE(c.next_member(first, key));
  EXPECT_EQ(key, "e");
  EXPECT_EQ(c.string(), "");
  EXPECT_FALSE(c.next_member(first, key));
  EXPECT_TRUE(c.at_end());
}

// The byte offset at which parsing `text` (skip_value) fails, or -1.
long fail_offset(const std::string& text) {
  try {
    JsonCursor c(text);
    c.skip_value();
    if (!c.at_end()) c.fail("trailing text");
    return -1;
  } catch (const JsonSyntaxError& e) {
    return static_cast<long>(e.offset);
  }
}

TEST(JsonCursor, RejectsBadSyntaxWithOffsets) {
  EXPECT_EQ(fail_offset(R"({"a": [1, 2 3]})"), 12);
  EXPECT_EQ(fail_offset(R"({"a": 1,})"), 8);
  EXPECT_EQ(fail_offset(R"([1, 2,])"), 6);
  EXPECT_EQ(fail_offset(R"({"a": tru})"), 6);
  EXPECT_EQ(fail_offset(R"({"a": "x)"), 8);
  EXPECT_EQ(fail_offset(R"({"a": 01})"), 7);
  EXPECT_EQ(fail_offset(R"({"a": 1} x)"), 9);
  EXPECT_EQ(fail_offset(""), 0);
  EXPECT_EQ(fail_offset(R"({"a": [1, {"b": [}]})"), 17);
  EXPECT_EQ(fail_offset(R"({"a": {"b": [1, 2, {"c": null}]}, "d": -0.5e-3})"), -1);
}

TEST(JsonCursor, StringsThatAreReadAreStrictSkippedOnesLenient) {
  JsonCursor a("\"x\ny\"");
  EXPECT_THROW(a.string(), JsonSyntaxError);  // raw control character
  JsonCursor b(R"("\q")");
  EXPECT_THROW(b.string(), JsonSyntaxError);
  JsonCursor c(R"("\ud800x")");
  EXPECT_EQ(c.string(), "\xEF\xBF\xBDx");  // lone surrogate
  // Values that are skipped (fields lrgd does not use) only need their end found.
  EXPECT_EQ(fail_offset(R"({"a": "\q \" \\", "b": 1})"), -1);
  EXPECT_EQ(fail_offset("{\"a\": \"x\ty\"}"), -1);
  EXPECT_EQ(fail_offset(R"({"a": "x\\"} )"), -1);
  EXPECT_EQ(fail_offset(R"({"a": "x\"})"), 11);  // the escaped quote does not end the string
}

TEST(JsonCursor, IntegerRejectsFractionsAndOverflow) {
  JsonCursor a("1.5");
  EXPECT_THROW(a.integer(), JsonSyntaxError);
  JsonCursor b("99999999999999999999");
  EXPECT_THROW(b.integer(), JsonSyntaxError);
  JsonCursor c("\"7\"");
  EXPECT_THROW(c.integer(), JsonSyntaxError);
  JsonCursor d("123");
  EXPECT_EQ(d.scalar_text(), "123");
}

TEST(JsonCursor, DeepNestingFailsCleanly) { EXPECT_GE(fail_offset(std::string(100000, '[')), 0); }

TEST(JsonCursor, LinePositions) {
  const std::string text = "ab\ncd\n\nef";
  EXPECT_EQ(detail::text_position(text, 0).line, 1u);
  EXPECT_EQ(detail::text_position(text, 4).line, 2u);
  EXPECT_EQ(detail::text_position(text, 4).column, 2u);
  EXPECT_EQ(detail::text_position(text, 8).line, 4u);
  detail::LineCounter lc(text);
  EXPECT_EQ(lc.line_at(1), 1u);
  EXPECT_EQ(lc.line_at(3), 2u);
  EXPECT_EQ(lc.line_at(8), 4u);
  EXPECT_EQ(lc.line_at(2), 1u);  // going back restarts
}

}  // namespace
}  // namespace lrgd::data
