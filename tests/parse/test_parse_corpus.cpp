// Runs the parser over tests/fixtures/parse/*.txt (format in that folder's README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lrgd/parse.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(LRGD_SOURCE_DIR) / "tests" / "fixtures" / "parse";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> out;
  std::istringstream in(read_all(p));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

struct Fixture {
  std::string name;
  std::map<std::string, std::string> header;
  std::string answer;
};

Fixture load(const fs::path& p) {
  Fixture f;
  f.name = p.stem().string();
  const std::string text = read_all(p);
  const auto sep = text.find("\n----\n");
  if (sep == std::string::npos) throw std::runtime_error(p.string() + ": no '----' line");
  std::istringstream head(text.substr(0, sep));
  for (std::string line; std::getline(head, line);) {
    const auto colon = line.find(':');
    if (line.rfind("# ", 0) != 0 || colon == std::string::npos) continue;
    f.header[line.substr(2, colon - 2)] = line.substr(colon + 2);
  }
  f.answer = text.substr(sep + 6);
  return f;
}

std::string to_text(const std::vector<int>& ranking) {
  if (ranking.empty()) return "-";
  std::string s;
  for (int c : ranking) s += (s.empty() ? "" : " ") + std::to_string(c + 1);
  return s;
}

TEST(ParseCorpus, EveryFixtureParsesAsExpected) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kDir)) {
    if (e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 30u) << "fixture corpus missing under " << kDir;
  int n_valid = 0;
  for (const auto& path : files) {
    const Fixture f = load(path);
    SCOPED_TRACE(f.name);
    const auto titles = read_lines(kDir / "candidates" / f.header.at("candidates"));
    lrgd::parse::ParseOptions options;
    if (f.header.count("list_length")) options.list_length = std::stoi(f.header.at("list_length"));
    const auto r = lrgd::parse::parse_ranking(f.answer, titles, options);
    std::string notes;
    for (const auto& n : r.notes) notes += "\n  note: " + n;
    EXPECT_EQ(to_text(r.ranking), f.header.at("expect")) << notes;
    EXPECT_EQ(r.valid, f.header.at("valid") == "true");
    EXPECT_EQ(r.n_hallucinated, std::stoi(f.header.at("hallucinated"))) << notes;
    EXPECT_EQ(r.n_duplicates, std::stoi(f.header.at("duplicates"))) << notes;
    EXPECT_EQ(r.n_unranked, options.list_length - static_cast<int>(r.ranking.size()));
    if (f.header.count("format")) {
      EXPECT_EQ(lrgd::parse::format_name(r.format), f.header.at("format"));
    }
    n_valid += r.valid ? 1 : 0;
  }
  // Invalid answers stay in the denominator of the valid-output rate.
  EXPECT_EQ(static_cast<std::size_t>(n_valid), files.size() - 2);  // empty.txt, refusal.txt
}

}  // namespace
