#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lrgd/error.h"
#include "lrgd/prompt.h"

namespace pr = lrgd::prompt;
namespace fs = std::filesystem;

namespace {

const fs::path kRoot = LRGD_SOURCE_DIR;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pr::PromptInputs inputs() {
  pr::PromptInputs in;
  in.history = {"Halo 3", "Halo 3: ODST", "Dark Souls III"};
  in.candidates = {"Celeste", "Elden Ring", "Bloodborne"};
  in.list_length = 2;
  in.demonstration = pr::Demonstration{{"Halo 3", "Halo 3: ODST"}, "Dark Souls III", "", ""};
  return in;
}

std::size_t begin_of(const pr::RenderedPrompt& r, pr::SpanKind kind) { return r.find(kind).at(0).begin; }

TEST(Prompt, BuiltinsAreTheShippedFiles) {
  const auto names = pr::Template::builtin_names();
  for (const char* n : {"zsl", "icl", "icl_swap"}) {
    ASSERT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  for (const auto& n : names) EXPECT_EQ(pr::Template::builtin_text(n), read_file(kRoot / "prompts" / (n + ".txt")));
  EXPECT_THROW(pr::Template::builtin("nope"), lrgd::OptionError);
}

TEST(Prompt, ZeroShotHasInstructionAndQuery) {
  auto in = inputs();
  in.demonstration.reset();
  const auto r = pr::Template::builtin("zsl").render(in);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_TRUE(r.find(pr::SpanKind::Demonstration).empty());
  EXPECT_LT(begin_of(r, pr::SpanKind::Instruction), begin_of(r, pr::SpanKind::Query));
  const std::string& user = r.messages[1].content;
  EXPECT_NE(user.find("[1] Celeste\n[2] Elden Ring\n[3] Bloodborne"), std::string::npos);
  EXPECT_NE(user.find("1. Halo 3\n2. Halo 3: ODST\n3. Dark Souls III"), std::string::npos);
  EXPECT_NE(user.find("Your top 2:"), std::string::npos);
  EXPECT_EQ(user.find("{"), std::string::npos);
  EXPECT_EQ(user.find("\n\n\n"), std::string::npos);  // the empty {regularisation} line is dropped
  const auto cands = r.find(pr::SpanKind::CandidateItem);
  ASSERT_EQ(cands.size(), 3u);
  for (std::size_t i = 0; i < cands.size(); ++i) {
    EXPECT_EQ(cands[i].index, static_cast<int>(i));
    EXPECT_EQ(r.text_of(cands[i]), in.candidates[i]);
    EXPECT_EQ(cands[i].message, 1u);
  }
  const auto hist = r.find(pr::SpanKind::HistoryItem);
  ASSERT_EQ(hist.size(), 3u);
  EXPECT_EQ(r.text_of(hist[2]), "Dark Souls III");
  // Every item lies inside Q, Q ends the message.
  const auto q = r.find(pr::SpanKind::Query).at(0);
  EXPECT_TRUE(hist[0].begin >= q.begin && cands[2].end <= q.end);
  EXPECT_EQ(q.end, user.size());
}

TEST(Prompt, IclPutsDemonstrationBetweenInstructionAndQuery) {
  const auto r = pr::Template::builtin("icl").render(inputs());
  EXPECT_LT(begin_of(r, pr::SpanKind::Instruction), begin_of(r, pr::SpanKind::Demonstration));
  EXPECT_LT(begin_of(r, pr::SpanKind::Demonstration), begin_of(r, pr::SpanKind::Query));
  EXPECT_TRUE(r.find(pr::SpanKind::Perturbation).empty());
  const auto target = r.find(pr::SpanKind::DemoTarget);
  ASSERT_EQ(target.size(), 1u);
  EXPECT_EQ(r.text_of(target[0]), "Dark Souls III");
  EXPECT_EQ(r.find(pr::SpanKind::DemoHistoryItem).size(), 2u);
  EXPECT_EQ(r.messages[1].content.find("Reason:"), std::string::npos);  // no explanation: line dropped
  auto in = inputs();
  in.demonstration->explanation = "likes hard games";
  EXPECT_NE(pr::Template::builtin("icl").render(in).messages[1].content.find("Reason: likes hard games"),
            std::string::npos);
}

TEST(Prompt, SwapPlacesDemonstrationFirst) {
  const auto r = pr::Template::builtin("icl_swap").render(inputs());
  EXPECT_LT(begin_of(r, pr::SpanKind::Demonstration), begin_of(r, pr::SpanKind::Instruction));
  EXPECT_LT(begin_of(r, pr::SpanKind::Instruction), begin_of(r, pr::SpanKind::Query));
}

TEST(Prompt, RegularisationAndPerturbation) {
  auto in = inputs();
  in.regularisation = pr::default_regularisation(2);
  in.perturbation = pr::Demonstration{{"Celeste"}, "Hollow Knight", "", ""};
  const auto r = pr::Template::builtin("icl").render(in);
  const auto t = r.find(pr::SpanKind::Instruction).at(0);
  const auto reg = r.find(pr::SpanKind::Regularisation).at(0);
  EXPECT_TRUE(reg.begin >= t.begin && reg.end <= t.end);
  EXPECT_EQ(r.text_of(reg), in.regularisation);
  const auto p = r.find(pr::SpanKind::Perturbation).at(0);
  EXPECT_LT(begin_of(r, pr::SpanKind::Demonstration), p.begin);
  EXPECT_LT(p.end, begin_of(r, pr::SpanKind::Query));
  EXPECT_EQ(r.text_of(r.find(pr::SpanKind::PerturbationTarget).at(0)), "Hollow Knight");
  EXPECT_EQ(r.text_of(r.find(pr::SpanKind::PerturbationHistoryItem).at(0)), "Celeste");
}

TEST(Prompt, GoldenIclRendering) {
  auto in = inputs();
  in.regularisation = pr::default_regularisation(2);
  const auto r = pr::Template::builtin("icl").render(in);
  const std::string got = "<system>\n" + r.messages[0].content + "\n<user>\n" + r.messages[1].content + "\n";
  EXPECT_EQ(got, read_file(kRoot / "tests" / "fixtures" / "prompt" / "icl_golden.txt"));
}

TEST(Prompt, SystemInUserAndVerbatimDemonstration) {
  auto in = inputs();
  in.demonstration->text = "A user who liked Halo 3 went on to Dark Souls III.";
  const auto r = pr::Template::builtin("icl").render(in, {.system_in_user = true});
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(begin_of(r, pr::SpanKind::System), 0u);
  EXPECT_TRUE(r.find(pr::SpanKind::DemoTarget).empty());
  EXPECT_NE(r.messages[0].content.find(in.demonstration->text), std::string::npos);
}

TEST(Prompt, UnknownSlotNamesFileLineAndSlot) {
  try {
    pr::Template::parse("# c\n@@ Q\nHistory:\n{histroy}\n", "my.txt");
    FAIL() << "no error";
  } catch (const lrgd::InputError& e) {
    EXPECT_EQ(e.file(), "my.txt");
    EXPECT_EQ(e.line(), 4u);
    EXPECT_EQ(e.field(), "histroy");
    EXPECT_NE(std::string(e.what()).find("unknown slot {histroy}"), std::string::npos);
  }
  EXPECT_THROW(pr::Template::parse("@@ Q\n{title}\n", "x"), lrgd::InputError);     // item slot outside *_item
  EXPECT_THROW(pr::Template::parse("@@ X\nhi\n", "x"), lrgd::InputError);          // unknown section
  EXPECT_THROW(pr::Template::parse("@@ T\nhi\n", "x"), lrgd::InputError);          // no Q
  EXPECT_THROW(pr::Template::parse("@@ Q\n{\"a\": 1}\n", "x"), lrgd::InputError);  // unescaped brace
  EXPECT_THROW(pr::Template::parse("@@ Q\na\n@@ Q\nb\n", "x"), lrgd::InputError);  // section twice
}

TEST(Prompt, MissingValuesAreErrors) {
  auto in = inputs();
  in.demonstration.reset();
  try {
    pr::Template::builtin("icl").render(in);
    FAIL() << "no error";
  } catch (const lrgd::InputError& e) {
    EXPECT_EQ(e.field(), "demonstration");
    EXPECT_EQ(e.file(), "<builtin>/prompts/icl.txt");
  }
  in = inputs();
  in.history.clear();
  EXPECT_THROW(pr::Template::builtin("icl").render(in), lrgd::InputError);
  in = inputs();
  in.candidates.clear();
  EXPECT_THROW(pr::Template::builtin("zsl").render(in), lrgd::InputError);
  in = inputs();
  in.demonstration->target.clear();
  EXPECT_THROW(pr::Template::builtin("icl").render(in), lrgd::InputError);
}

TEST(Prompt, EscapesCustomItemsAndFiles) {
  const auto t = pr::Template::parse(
      "@@ Q\nAnswer as {{\"recommendations\": [...]}} from {n_candidates}:\n{candidates}\n@@ candidate_item\n"
      "({i}) {title}\n",
      "custom.txt");
  auto in = inputs();
  in.candidates[1] = "Elden\nRing";
  const auto r = t.render(in);
  ASSERT_EQ(r.messages.size(), 1u);  // no system section
  EXPECT_EQ(r.messages[0].content,
            "Answer as {\"recommendations\": [...]} from 3:\n(1) Celeste\n(2) Elden Ring\n(3) Bloodborne");
  EXPECT_THROW(pr::Template::load(kRoot / "no" / "such.txt"), lrgd::IoError);
  const auto from_file = pr::Template::resolve((kRoot / "prompts" / "zsl.txt").string());
  auto zin = inputs();
  zin.demonstration.reset();
  EXPECT_EQ(from_file.render(zin).messages.at(1).content,
            pr::Template::resolve("zsl").render(zin).messages.at(1).content);
}

}  // namespace
