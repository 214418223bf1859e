#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "lrgd/parse.h"
#include "lrgd/rng.h"

namespace p = lrgd::parse;

namespace {

const std::vector<std::string> kTitles = {"Halo 3", "Halo 3: ODST", "Mario Kart 8 Deluxe - Nintendo Switch",
                                          "Dark Souls III", "Celeste"};

std::vector<int> ranking(std::string_view answer, const p::ParseOptions& o = {}) {
  return p::parse_ranking(answer, kTitles, o).ranking;
}

TEST(Normalize, FoldsCasePunctuationAccentsAndWidth) {
  EXPECT_EQ(p::normalize_title("  The Legend of Zelda: Breath-of-the-WILD!! "),
            "the legend of zelda breath of the wild");
  EXPECT_EQ(p::normalize_title("Pokémon Sword"), "pokemon sword");
  EXPECT_EQ(p::normalize_title("Ｃｅｌｅｓｔｅ　２"), "celeste 2");
  EXPECT_EQ(p::normalize_title("Final Fantasy VII"), "final fantasy 7");
  EXPECT_EQ(p::normalize_title("《塞尔达》Zelda"), "塞 尔 达 zelda");
  EXPECT_EQ(p::normalize_title("**Luigi's** Mansion"), "luigi s mansion");
}

// Folding beyond Latin-1 (utf8proc): case folding of every script, compatibility forms
// (ligatures, fullwidth), marks dropped, ß as "ss".
TEST(Normalize, FoldsUnicodeBeyondLatin1) {
  EXPECT_EQ(p::normalize_title("Straße"), "strasse");
  EXPECT_EQ(p::normalize_title("STRASSE"), "strasse");
  EXPECT_EQ(p::normalize_title("ΣΊΣΥΦΟΣ"), p::normalize_title("σίσυφος"));  // tonos and final sigma
  EXPECT_EQ(p::normalize_title("ΣΊΣΥΦΟΣ"), "σισυφοσ");
  EXPECT_EQ(p::normalize_title("ЁЖИК в ТУМАНЕ"), "ежик в тумане");
  EXPECT_EQ(p::normalize_title("\xef\xac\x81nal \xef\xac\x82ight"), "final flight");  // the ligatures fi, fl
  EXPECT_EQ(p::normalize_title("ＡＢＣ　ｄｅｆ"), "abc def");                         // fullwidth
  EXPECT_EQ(p::normalize_title("Poke\xcc\x81mon"), "pokemon");                        // a combining accent
  EXPECT_EQ(p::normalize_title("Ørsted Æon Łódź"), "orsted aeon lodz");               // letters with no decomposition
  EXPECT_EQ(p::normalize_title("İstanbul ǅemal"), "istanbul dzemal");
  EXPECT_EQ(p::normalize_title("한국어"), "한국어");  // Hangul stays composed
}

TEST(Parse, MatchesTitlesInOtherScriptsAndCase) {
  const std::vector<std::string> titles = {"Ωκεανός", "Straße der Helden", "Ёжик в тумане", "ﬁnal ﬁght"};
  const auto r = p::parse_ranking("1. ΩΚΕΑΝΟΣ\n2. ежик в тумане\n3. STRASSE DER HELDEN\n4. Final Fight", titles);
  EXPECT_EQ(r.ranking, (std::vector<int>{0, 2, 1, 3}));
  EXPECT_EQ(r.n_hallucinated, 0);
}

// Invalid UTF-8 (a lone lead byte, a stray continuation, a surrogate, a code point above
// U+10FFFF) separates words and is never folded: no crash, the rest still matches.
TEST(Normalize, InvalidUtf8SeparatesWords) {
  EXPECT_EQ(p::normalize_title("Pok\xc3mon"), "pok mon");
  EXPECT_EQ(p::normalize_title("a\x80\xbf"
                               "b"),
            "a b");
  EXPECT_EQ(p::normalize_title("\xc3\x89t\xed\xa0\x80\xc3\xa9"), "et e");
  EXPECT_EQ(p::normalize_title("x\xf4\x90\x80\x80y"), "x y");
  EXPECT_EQ(p::normalize_title("\xff\xfe"), "");
}

TEST(Similarity, ExactFuzzyPartialAndUnrelated) {
  EXPECT_DOUBLE_EQ(p::title_similarity("halo 3", "Halo 3"), 1.0);
  EXPECT_GE(p::title_similarity("Mario Kart 8", "Mario Kart 8 Deluxe - Nintendo Switch"), 0.75);  // partial prefix
  EXPECT_GE(p::title_similarity("Rocket Leauge", "Rocket League"), 0.75);                         // transposition
  EXPECT_LT(p::title_similarity("Super Mario Galaxy", "Super Mario Odyssey"), 0.75);
  EXPECT_LT(p::title_similarity("Halo 4", "Halo 3"), 0.75);  // numbers never fuzzy-match
  EXPECT_EQ(p::title_similarity("", "Halo 3"), 0.0);
}

TEST(Parse, OrdinalsVersusCandidateNumbers) {
  EXPECT_EQ(ranking("1. 5\n2. 1\n3. 4"), (std::vector<int>{4, 0, 3}));    // 1,2,3 are positions
  EXPECT_EQ(ranking("5. Celeste\n1. Halo 3"), (std::vector<int>{4, 0}));  // 5,1 are numbers
  EXPECT_EQ(ranking("1. Celeste"), (std::vector<int>{4}));                // lone "1." is a position
  // A list written twice (a real SmolLM2 answer's shape) is still positions: the unknown
  // titles are hallucinations, not candidates 1, 2, 3.
  const auto r = p::parse_ranking(
      "1. Star Wars Galaxy\n2. Celeste\n3. Zork\n\nYour top 3:\n1. Star Wars Galaxy\n2. Celeste", kTitles);
  EXPECT_EQ(r.ranking, (std::vector<int>{4}));
  EXPECT_EQ(r.n_hallucinated, 3);
  EXPECT_EQ(r.n_duplicates, 1);
  EXPECT_EQ(ranking("1. 5\n2. 1\n1. 2"), (std::vector<int>{4, 0, 1}));
  EXPECT_EQ(ranking("1. zz\n3. yy"), (std::vector<int>{0, 2}));  // a jump: candidate numbers
}

TEST(Parse, ConflictRule) {
  // 1: exact title beats a number whose title does not fit. 2: the number's title fits
  // fuzzily, so they agree although "Halo 3" is mentioned exactly. 3: a fuzzy title
  // loses to the number.
  auto r = p::parse_ranking("1. [2] Celeste\n2. [2] Halo 3 ODTS\n3. [1] Mario Kart 8 Delux", kTitles);
  EXPECT_EQ(r.ranking, (std::vector<int>{4, 1, 0}));
  ASSERT_EQ(r.notes.size(), 2u);
  EXPECT_NE(r.notes[0].find("line 1: number 2 disagrees"), std::string::npos);
  EXPECT_NE(r.notes[0].find("exact title used"), std::string::npos);
  EXPECT_NE(r.notes[1].find("line 3: number 1 disagrees"), std::string::npos);
  EXPECT_NE(r.notes[1].find("number used"), std::string::npos);
}

TEST(Parse, NumbersOnlyAndTitlesOnly) {
  p::ParseOptions numbers_only;
  numbers_only.match_titles = false;
  auto r = p::parse_ranking("1. [2] Celeste\n2. Halo 3", kTitles, numbers_only);
  EXPECT_EQ(r.ranking, (std::vector<int>{1}));
  EXPECT_EQ(r.n_hallucinated, 1);
  p::ParseOptions titles_only;
  titles_only.match_numbers = false;
  EXPECT_EQ(ranking("1. [2] Celeste\n2. 4", titles_only), (std::vector<int>{4}));
}

TEST(Parse, AmbiguousPartialTitleIsNotGuessed) {
  const std::vector<std::string> titles = {"Mario Kart Wii", "Mario Kart DS"};
  const auto r = p::parse_ranking("1. Mario Kart\n2. Mario Kart DS", titles);
  EXPECT_EQ(r.ranking, (std::vector<int>{1}));
  EXPECT_EQ(r.n_hallucinated, 1);
}

TEST(Parse, ValidityAndPadding) {
  const auto r = p::parse_ranking("1. Celeste\n2. Halo 3", kTitles);
  EXPECT_TRUE(r.valid);
  EXPECT_EQ(r.n_unranked, 8);
  EXPECT_EQ(r.n_entries, 2);
  const auto bad = p::parse_ranking("1. The Last of Us\n2. 77", kTitles);
  EXPECT_FALSE(bad.valid);
  EXPECT_EQ(bad.n_hallucinated, 2);
  EXPECT_EQ(bad.n_unranked, 10);
  EXPECT_FALSE(p::parse_ranking("   \n", kTitles).valid);
  EXPECT_THROW(p::parse_ranking("1", kTitles, p::ParseOptions{.list_length = 0}), std::invalid_argument);
}

TEST(Parse, UnclosedReasoningLeavesNoAnswer) {
  EXPECT_FALSE(p::parse_ranking("<think>maybe Celeste, or Halo 3", kTitles).valid);
}

TEST(Parse, CandidatesWithoutTitlesAreReachableByNumber) {
  const std::vector<std::string> titles = {"", "Celeste", ""};
  EXPECT_EQ(p::parse_ranking("[3], [2]", titles).ranking, (std::vector<int>{2, 1}));
}

// A long repetitive answer (400 lines naming one title) parses to that one candidate with
// the rest counted as duplicates; speed is measured in bench/, not here.
TEST(Parse, LongRepetitiveAnswerCountsDuplicates) {
  std::string answer;
  for (int i = 0; i < 400; ++i) answer += "- The user might also like Halo 3: ODST or something entirely different\n";
  const auto r = p::parse_ranking(answer, kTitles);
  EXPECT_EQ(r.ranking, (std::vector<int>{1}));
  EXPECT_EQ(r.n_duplicates, 399);
}

TEST(Parse, RandomGarbageKeepsInvariants) {
  // Fragments that stress every branch: markers, refs, JSON, UTF-8 (also broken), reasoning.
  const std::vector<std::string> pieces = {"1.",
                                           "2)",
                                           "[3]",
                                           "#4",
                                           "(5)",
                                           "- ",
                                           "* ",
                                           "**",
                                           "Candidate ",
                                           "12",
                                           "999",
                                           "0",
                                           " ",
                                           "\n",
                                           "\n  ",
                                           ", ",
                                           ":",
                                           "{",
                                           "}",
                                           "[",
                                           "]",
                                           "\"",
                                           "{\"recommendations\": [",
                                           "Halo 3",
                                           "Celeste",
                                           "ODST",
                                           "Mario Kart",
                                           "候选",
                                           "《",
                                           "》",
                                           "\xef\xbc\x91",
                                           "\xe3\x80\x81",
                                           "\xff",
                                           "\xc3",
                                           "<think>",
                                           "</think>",
                                           "Rank ",
                                           "第",
                                           "é",
                                           "e\xcc\x81",
                                           "ß",
                                           "ΣΊΣΥΦΟΣ",
                                           "Ёжик",
                                           "\xef\xac\x81",
                                           "\xed\xa0\x80",
                                           "\xf4\x90\x80\x80",
                                           "\xcc\x81",
                                           "and ",
                                           ".",
                                           "\t",
                                           "`",
                                           "```json\n"};
  lrgd::Rng rng(123);
  for (int round = 0; round < 3000; ++round) {
    std::string answer;
    const auto n = rng.uniform(30);
    for (std::uint64_t i = 0; i < n; ++i) answer += pieces[rng.uniform(pieces.size())];
    p::ParseOptions o;
    o.list_length = 1 + static_cast<int>(rng.uniform(10));
    const auto r = p::parse_ranking(answer, kTitles, o);
    ASSERT_LE(r.ranking.size(), static_cast<std::size_t>(o.list_length)) << answer;
    ASSERT_EQ(std::set<int>(r.ranking.begin(), r.ranking.end()).size(), r.ranking.size()) << answer;
    for (int c : r.ranking) ASSERT_TRUE(c >= 0 && c < static_cast<int>(kTitles.size())) << answer;
    ASSERT_EQ(r.valid, !r.ranking.empty());
    ASSERT_EQ(r.n_unranked, o.list_length - static_cast<int>(r.ranking.size()));
    ASSERT_GE(r.n_entries, r.n_hallucinated + r.n_duplicates);
  }
}

}  // namespace
