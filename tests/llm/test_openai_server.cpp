// OpenAI backend against a real llama-server on 127.0.0.1 serving a tiny random model:
// constrained generation (grammar, JSON schema, candidate list), failures of unconstrained
// output reported, teacher-forced scoring cross-checked with the server's own top logprobs,
// and the response cache in front of it. The server is killed by PID at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "lrgd/model_init.h"
#include "lrgd/openai_backend.h"
#include "lrgd/response_cache.h"
#include "process.h"
#include "tiny_model.h"

namespace fs = std::filesystem;
using namespace lrgd::llm;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string read_tail(const fs::path& p, std::size_t n = 3000) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return s.size() > n ? s.substr(s.size() - n) : s;
}

class LlamaServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("lrgd_test_openai_server_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    log_ = dir_ / "llama-server.log";
    const fs::path bin = fs::path(LRGD_LLAMA_BIN_DIR) / "llama-server";
    if (!fs::exists(bin)) {
      setup_error_ = "no llama-server at " + bin.string() + " (scripts/setup.sh builds it)";
      return;
    }
    auto o = lrgd::test::tiny_options("llama");
    o.n_embd = 32;
    o.n_ctx = 512;
    o.seed = 3;
    o.vocab = "llama-spm";  // 32k tokens: a 4x smaller file than llama-bpe, quicker to write and load
    fs::path model;
    try {
      model = model_ = lrgd::test::cached_model(o);
    } catch (const std::exception& e) {
      setup_error_ = std::string("cannot write the tiny model: ") + e.what();
      return;
    }
    port_ = free_port();
    const std::vector<std::string> args = {
        bin.string(), "-m", model.string(), "--host", "127.0.0.1", "--port", std::to_string(port_),
        "-t",         "1",  "-c",           "1024",   "-np",       "2",      "--no-warmup"};
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (pid_ < 0) {
      setup_error_ = "fork failed";
      return;
    }
    // Wait for /health (503 while loading) with a deadline.
    httplib::Client cli("127.0.0.1", port_);
    cli.set_connection_timeout(0, 200000);
    cli.set_read_timeout(1, 0);
    const auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < 20) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        setup_error_ = "llama-server exited early:\n" + read_tail(log_);
        return;
      }
      if (auto r = cli.Get("/health"); r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    setup_error_ = "llama-server not healthy after 20 s:\n" + read_tail(log_);
  }

  static void TearDownTestSuite() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      const auto t0 = Clock::now();
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::duration<double>(Clock::now() - t0).count() > 3) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      pid_ = -1;
    }
    if (!any_failed_) fs::remove_all(dir_);  // else kept, with the server log
  }

  void SetUp() override {
    if (!setup_error_.empty()) GTEST_FAIL() << setup_error_;
  }
  void TearDown() override {
    if (HasFailure()) {
      any_failed_ = true;
      std::cerr << "llama-server log " << log_ << ", tail:\n" << read_tail(log_, 1500) << "\n";
    }
  }

  static std::string url() { return "http://127.0.0.1:" + std::to_string(port_); }

  static OpenAiConfig config() {
    OpenAiConfig c;
    c.endpoints = {url()};
    c.api_key_env = "LRGD_TEST_UNSET_KEY_VARIABLE";
    c.max_in_flight = 4;
    c.timeout_s = 10;
    c.max_retries = 2;
    c.backoff_base_s = 0.02;
    c.backoff_cap_s = 0.1;
    return c;
  }

  // Direct call to the server, for cross-checks.
  static json post(const std::string& path, const json& body) {
    httplib::Client cli("127.0.0.1", port_);
    cli.set_read_timeout(10, 0);
    auto r = cli.Post(path, body.dump(), "application/json");
    if (!r || r->status != 200) return json();
    return json::parse(r->body, nullptr, false);
  }

  static inline fs::path dir_;
  static inline fs::path model_;  // the tiny model the server serves
  static inline fs::path log_;
  static inline int port_ = 0;
  static inline pid_t pid_ = -1;
  static inline std::string setup_error_;
  static inline bool any_failed_ = false;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

TEST_F(LlamaServer, CandidateListAnswersFollowTheGrammarAndAreDeterministic) {
  auto backend = make_openai_backend(config());  // model name discovered from /v1/models
  EXPECT_EQ(backend->model_id().rfind("openai:", 0), 0u);
  GenerationParams p;
  p.max_tokens = 64;
  p.constraint.kind = OutputConstraint::Kind::CandidateList;
  for (int i = 1; i <= 12; ++i) p.constraint.labels.push_back(std::to_string(i));
  p.constraint.list_length = 4;
  const std::vector<Prompt> prompts = {
      Prompt::chat({{"system", "Rank the candidates."}, {"user", "Candidates: 1..12. Answer with 4 lines."}}),
      Prompt::chat({{"user", "Another user, another history."}})};
  const auto a = backend->generate(prompts, p);
  const auto b = backend->generate(prompts, p);
  ASSERT_EQ(a.size(), 2u);
  const std::regex line_re(R"(\d+)");
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(a[i].ok()) << a[i].error;
    EXPECT_EQ(a[i].text, b[i].text) << "greedy decoding is deterministic";
    const auto lines = lines_of(a[i].text);
    ASSERT_EQ(lines.size(), 4u) << a[i].text;
    EXPECT_EQ(a[i].text.back(), '\n') << "one label per line, as the embedded backend writes";
    for (std::size_t k = 0; k < lines.size(); ++k) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(lines[k], m, line_re)) << lines[k];
      const int label = std::stoi(m[0].str());
      EXPECT_GE(label, 1);
      EXPECT_LE(label, 12);
    }
    EXPECT_GT(a[i].n_prompt_tokens, 5);
    EXPECT_GT(a[i].n_generated_tokens, 4);
    EXPECT_GT(a[i].generate_ms, 0.0);
  }
  const Usage u = backend->usage();
  EXPECT_EQ(u.n_requests, 4u);
  EXPECT_EQ(u.n_failed, 0u);
  EXPECT_GT(u.n_generated_tokens, 16u);
  EXPECT_GT(u.prompt_ms, 0.0);
}

TEST_F(LlamaServer, DistinctCandidatesNeverRepeatALabel) {
  auto cfg = config();
  cfg.distinct_candidates = true;
  auto backend = make_openai_backend(cfg);
  GenerationParams p;
  p.max_tokens = 64;
  p.constraint.kind = OutputConstraint::Kind::CandidateList;
  for (int i = 1; i <= 12; ++i) p.constraint.labels.push_back(std::to_string(i));
  p.constraint.list_length = 5;
  const std::vector<Prompt> prompts = {Prompt::chat({{"user", "Rank candidates 1..12."}}),
                                       Prompt::raw("Ranked candidates:\n")};
  const auto out = backend->generate(prompts, p);
  const std::regex line_re(R"(\d+)");
  for (const auto& g : out) {
    ASSERT_TRUE(g.ok()) << g.error;
    EXPECT_EQ(g.finish, FinishReason::Stop);
    const auto lines = lines_of(g.text);
    ASSERT_EQ(lines.size(), 5u) << nlohmann::json(g.text).dump();
    EXPECT_EQ(g.text.back(), '\n');
    std::set<std::string> seen;
    for (std::size_t k = 0; k < lines.size(); ++k) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(lines[k], m, line_re)) << lines[k];
      EXPECT_TRUE(seen.insert(m[0].str()).second) << "repeated label in " << g.text;
    }
  }
}

// `lrgd eval --constrain --endpoint` as a user runs it: distinct candidate numbers (one
// grammar per line), and the model recorded by its file name, not the server's path.
TEST_F(LlamaServer, EvalCliConstrainGivesDistinctNumbersAndNamesTheFile) {
  const fs::path out = dir_ / "cli-run";
  const auto r = lrgd::test::run_cli("eval --data " + (fs::path(LRGD_SOURCE_DIR) / "tests/fixtures/data/csv").string() +
                                     " --kcore 0 --method zsl --endpoint " + url() +
                                     " --constrain --users 3 --trials 1 --candidates 5 --list-length 3"
                                     " --max-history 2 --no-progress --overwrite --out " +
                                     out.string());
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(out / "results.jsonl");
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const auto j = json::parse(line);
    EXPECT_EQ(j.at("n_duplicates").get<int>(), 0) << line;
    const auto ranking = j.at("ranking").get<std::vector<int>>();
    EXPECT_EQ(ranking.size(), 3u) << line;
    EXPECT_EQ(std::set<int>(ranking.begin(), ranking.end()).size(), ranking.size()) << line;
  }
  EXPECT_EQ(n, 3);
  std::ifstream cfg(out / "config.json");
  const auto c = json::parse(cfg);
  EXPECT_EQ(c.at("model").at("id").get<std::string>(), "openai:" + model_.filename().string() + "+distinct")
      << c.dump(1);
}

// The server parses special tokens in what it is sent: a neutralised spelling stays text.
TEST_F(LlamaServer, NeutralisedSpellingsTokeniseAsText) {
  const auto tokens = [](const std::string& text) {
    return post("/tokenize", {{"content", text}, {"add_special", false}, {"parse_special", true}})
        .value("tokens", json::array())
        .get<std::vector<int>>();
  };
  const auto eos = tokens("</s>");
  ASSERT_EQ(eos.size(), 1u) << "the spelling alone is the control token";
  std::string text = "Halo </s> 3";
  ASSERT_EQ(lrgd::llm::neutralise_special_spellings(text), 1u);
  const auto t = tokens(text);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(std::count(t.begin(), t.end(), eos[0]), 0) << "no control token in neutralised text";
}

TEST_F(LlamaServer, GrammarAndJsonSchemaConstrainRawCompletions) {
  auto backend = make_openai_backend(config());
  GenerationParams g;
  g.max_tokens = 12;
  g.constraint.kind = OutputConstraint::Kind::Grammar;
  g.constraint.grammar = R"(root ::= [a-z]+ "!")";
  const auto out = backend->generate(std::vector<Prompt>{Prompt::raw("Say a word:")}, g);
  ASSERT_TRUE(out[0].ok()) << out[0].error;
  EXPECT_TRUE(std::regex_match(out[0].text, std::regex(out[0].finish == FinishReason::Stop ? "[a-z]+!" : "[a-z]*")))
      << out[0].text;

  GenerationParams js;
  js.max_tokens = 200;
  js.constraint.kind = OutputConstraint::Kind::JsonSchema;
  js.constraint.json_schema = R"({"type":"object","properties":{"item":{"type":"integer","minimum":1,"maximum":9}},)"
                              R"("required":["item"],"additionalProperties":false})";
  const auto j = backend->generate(std::vector<Prompt>{Prompt::raw("JSON:")}, js);
  ASSERT_TRUE(j[0].ok()) << j[0].error;
  if (j[0].finish == FinishReason::Stop) {
    const auto parsed = json::parse(j[0].text, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << j[0].text;
    ASSERT_TRUE(parsed.contains("item")) << j[0].text;
    EXPECT_GE(parsed.at("item").get<int>(), 1);
    EXPECT_LE(parsed.at("item").get<int>(), 9);
  }
}

TEST_F(LlamaServer, UnconstrainedOutputNeverLosesARequest) {
  auto cfg = config();
  cfg.max_retries = 1;
  auto backend = make_openai_backend(cfg);
  GenerationParams p;
  p.max_tokens = 8;
  std::vector<Prompt> prompts;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(i % 2 ? Prompt::raw("Item " + std::to_string(i) + " is")
                            : Prompt::chat({{"user", "Recommend item " + std::to_string(i)}}));
  }
  const auto out = backend->generate(prompts, p);
  ASSERT_EQ(out.size(), prompts.size());
  int n_failed = 0;
  for (const auto& g : out) {
    if (!g.ok()) {
      ++n_failed;
      EXPECT_FALSE(g.error.empty());
      EXPECT_NE(g.error.find("gave up after"), std::string::npos) << g.error;
    }
  }
  const Usage u = backend->usage();
  EXPECT_EQ(u.n_requests, 8u);
  EXPECT_EQ(u.n_failed, static_cast<std::uint64_t>(n_failed));
}

TEST_F(LlamaServer, ScoreMatchesTheServersOwnTopLogprobs) {
  auto backend = make_openai_backend(config());  // Auto: /props says llama-server
  const std::string ctx = "My favourite game is";
  const json top = post("/completion", {{"prompt", ctx}, {"n_predict", 1}, {"n_probs", 5}, {"temperature", 0}});
  ASSERT_TRUE(top.is_object() && top.contains("completion_probabilities")) << top.dump();
  const json& cands = top.at("completion_probabilities").at(0).at("top_logprobs");
  ASSERT_EQ(cands.size(), 5u);

  ScoreRequest req;
  req.context = Prompt::raw(ctx);
  for (const auto& c : cands) req.token_continuations.push_back({c.at("id").get<std::int32_t>()});
  const auto out = backend->score(std::vector<ScoreRequest>{req});
  ASSERT_TRUE(out[0].ok()) << out[0].error;
  ASSERT_EQ(out[0].logprobs.size(), 5u);
  for (std::size_t k = 0; k < 5; ++k) {
    EXPECT_NEAR(out[0].logprobs[k], cands.at(k).at("logprob").get<double>(), 1e-3) << k;
    EXPECT_EQ(out[0].n_tokens[k], 1);
  }

  // Text continuations equal their tokens; log-probabilities add up along the chain.
  const json tok = post("/tokenize", {{"content", " Zelda quest"}, {"add_special", false}, {"parse_special", false}});
  const auto ids = tok.at("tokens").get<std::vector<std::int32_t>>();
  ASSERT_GE(ids.size(), 2u);
  ScoreRequest chain;
  chain.context = Prompt::raw(ctx);
  chain.continuations = {" Zelda quest", ""};
  chain.token_continuations = {ids, {ids[0]}};
  const json ctx_tok = post("/tokenize", {{"content", ctx}, {"add_special", true}});
  std::vector<std::int32_t> ctx_ids = ctx_tok.at("tokens").get<std::vector<std::int32_t>>();
  ctx_ids.push_back(ids[0]);
  ScoreRequest rest;
  rest.context = Prompt::ids(ctx_ids);
  rest.token_continuations = {std::vector<std::int32_t>(ids.begin() + 1, ids.end())};
  const auto s = backend->score(std::vector<ScoreRequest>{chain, rest});
  ASSERT_TRUE(s[0].ok()) << s[0].error;
  ASSERT_TRUE(s[1].ok()) << s[1].error;
  EXPECT_NEAR(s[0].logprobs[0], s[0].logprobs[2], 1e-4);
  EXPECT_EQ(s[0].n_tokens[0], static_cast<int>(ids.size()));
  EXPECT_EQ(s[0].logprobs[1], 0.0);
  EXPECT_EQ(s[0].n_tokens[1], 0);
  EXPECT_NEAR(s[0].logprobs[2], s[0].logprobs[3] + s[1].logprobs[0], 1e-3);
  for (double lp : s[0].logprobs) EXPECT_LE(lp, 0.0);
  EXPECT_LT(s[0].logprobs[2], s[0].logprobs[3]);

  // A chat context goes through the model's template.
  ScoreRequest chat;
  chat.context = Prompt::chat({{"user", "Rank 1..3"}});
  chat.continuations = {"1. 2", "1. 3"};
  const auto c = backend->score(std::vector<ScoreRequest>{chat});
  ASSERT_TRUE(c[0].ok()) << c[0].error;
  for (double lp : c[0].logprobs) {
    EXPECT_TRUE(std::isfinite(lp));
    EXPECT_LT(lp, 0.0);
  }
}

TEST_F(LlamaServer, CacheInFrontOfTheServer) {
  const fs::path db = dir_ / "cache.sqlite";
  auto cached = make_cached_backend(make_openai_backend(config()), db);
  GenerationParams p;
  p.max_tokens = 16;
  p.constraint.kind = OutputConstraint::Kind::CandidateList;
  p.constraint.labels = {"A", "B", "C"};
  p.constraint.list_length = 3;
  const std::vector<Prompt> prompts = {Prompt::chat({{"user", "rank A B C"}}), Prompt::raw("Ranking:\n")};
  const auto first = cached->generate(prompts, p);
  const auto inner_before = cached->inner().usage().n_requests;
  const auto second = cached->generate(prompts, p);
  EXPECT_EQ(cached->inner().usage().n_requests, inner_before) << "all served from the cache";
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(first[i].ok()) << first[i].error;
    EXPECT_FALSE(first[i].from_cache);
    EXPECT_TRUE(second[i].from_cache);
    EXPECT_EQ(second[i].text, first[i].text);
  }
  EXPECT_EQ(cached->usage().n_cache_hits, 2u);
}

}  // namespace
