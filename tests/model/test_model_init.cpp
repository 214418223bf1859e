// lrgd model init: shapes, all four architectures load in libllama, seeded determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "lrgd/error.h"
#include "lrgd/llama_model.h"
#include "lrgd/model_init.h"
#include "tiny_model.h"

namespace fs = std::filesystem;
using lrgd::model::ModelInitOptions;

namespace {

fs::path temp_model(const std::string& name) {
  const auto dir = lrgd::test::build_cache("model_init");
  fs::create_directories(dir);
  return dir / name;
}

ModelInitOptions tiny(const std::string& arch, std::uint64_t seed = 1) {
  ModelInitOptions o = lrgd::test::tiny_options(arch);
  o.n_embd = 32;
  o.n_ctx = 256;
  o.seed = seed;
  o.init_std = 0.5f;  // large enough that logits differ visibly between seeds
  return o;
}

std::string expected_gguf_arch(const std::string& arch) { return arch == "mistral" ? "llama" : arch; }

class EachArch : public ::testing::TestWithParam<std::string> {};

TEST_P(EachArch, LoadsQuicklyAndGeneratesDeterministically) {
  const std::string arch = GetParam();
  const auto path = temp_model(arch + "-s1.gguf");
  const auto report = lrgd::model::init_model(tiny(arch), path);
  EXPECT_GT(report.n_params, 1'000'000);
  EXPECT_LT(report.n_params, 12'000'000);

  // Load time is measured in bench/bench_llm.cpp (tiny_model_load_ms), not asserted here.
  const auto model = lrgd::llm::Model::open(path);
  const auto& info = model->info();
  EXPECT_EQ(info.arch, expected_gguf_arch(arch));
  EXPECT_EQ(info.n_layer, 2);
  EXPECT_EQ(info.n_embd, 32);
  EXPECT_EQ(info.n_vocab, report.n_vocab);
  EXPECT_EQ(static_cast<std::int64_t>(info.n_params), report.n_params);
  EXPECT_FALSE(info.chat_template.empty());

  const lrgd::llm::LoadOptions lo{.n_threads = 1};
  const auto a = lrgd::llm::generate_greedy(*model, "Recommend a game:", 8, lo);
  const auto b = lrgd::llm::generate_greedy(*model, "Recommend a game:", 8, lo);
  ASSERT_FALSE(a.tokens.empty());
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.first_logits, b.first_logits);
  for (float x : a.first_logits) ASSERT_TRUE(std::isfinite(x));

  // The same options and seed write the same model; another seed gives other logits.
  const auto same = temp_model(arch + "-s1b.gguf");
  lrgd::model::init_model(tiny(arch), same);
  EXPECT_EQ(lrgd::llm::generate_greedy(*lrgd::llm::Model::open(same), "Recommend a game:", 1, lo).first_logits,
            a.first_logits);
  const auto other = temp_model(arch + "-s2.gguf");
  lrgd::model::init_model(tiny(arch, 2), other);
  const auto c = lrgd::llm::generate_greedy(*lrgd::llm::Model::open(other), "Recommend a game:", 1, lo);
  ASSERT_EQ(c.first_logits.size(), a.first_logits.size());
  double diff = 0;
  for (std::size_t i = 0; i < a.first_logits.size(); ++i) diff += std::abs(a.first_logits[i] - c.first_logits[i]);
  EXPECT_GT(diff / static_cast<double>(a.first_logits.size()), 1e-3);
  for (const auto& p : {path, same, other}) fs::remove(p);
}

INSTANTIATE_TEST_SUITE_P(ModelInit, EachArch, ::testing::Values("llama", "qwen2", "phi3", "mistral"));

TEST(ModelInit, QuantisedTypesLoad) {
  for (const std::string type : {"f16", "q8_0"}) {
    auto o = tiny("llama");
    o.type = type;
    const auto path = temp_model("llama-" + type + ".gguf");
    const auto r = lrgd::model::init_model(o, path);
    const auto g = lrgd::llm::generate_greedy(*lrgd::llm::Model::open(path), "hello", 2, {.n_threads = 1});
    EXPECT_EQ(g.first_logits.size(), static_cast<std::size_t>(r.n_vocab));
    fs::remove(path);
  }
}

void expect_option_error(const ModelInitOptions& o, const std::string& option) {
  try {
    lrgd::model::init_model(o, temp_model("never.gguf"));
    FAIL() << "expected an error naming " << option;
  } catch (const lrgd::OptionError& e) {
    EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(temp_model("never.gguf")));
}

TEST(ModelInit, ImpossibleShapesNameTheOption) {
  auto o = tiny("llama");
  o.n_head = 5;  // does not divide 32
  expect_option_error(o, "--heads");
  o = tiny("llama");
  o.n_head_kv = 3;  // does not divide 4 heads
  expect_option_error(o, "--kv-heads");
  o = tiny("llama");
  o.vocab = "no-such-vocab";
  expect_option_error(o, "--vocab");
  o = tiny("llama");
  o.vocab = "/nonexistent/ggml-vocab-x.gguf";
  expect_option_error(o, "--vocab");
  o = tiny("gpt9");
  expect_option_error(o, "--arch");
  o = tiny("llama");
  o.type = "q8_0";
  o.n_embd = 40;
  o.n_head = 4;
  expect_option_error(o, "--type");
  o = tiny("llama");
  o.n_layer = 0;
  expect_option_error(o, "--layers");
}

TEST(ModelInit, MissingModelFileIsAnIoError) {
  EXPECT_THROW(lrgd::llm::Model::open("/nonexistent/model.gguf"), lrgd::IoError);
}

}  // namespace
